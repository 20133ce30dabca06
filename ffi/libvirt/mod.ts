/**
 * libvirt binding (`libvirt.so.0`, Debian `libvirt0`; checked against
 * libvirt 9.0's headers from `libvirt-dev`), one concept per file:
 *
 * | file | what |
 * |---|---|
 * | `libvirt.ts` | symbol table, lazy loader (`HAKOBU_LIBVIRT`), struct layouts |
 * | `constants.ts` | enum values: domain states, job types, migrate flags, stats groups, error codes |
 * | `errors.ts` | {@link LibvirtError} (libvirt's code, domain and message; the call, URI and domain) |
 * | `typed_params.ts` | `virTypedParameter` arrays: decode, encode |
 * | `connection.ts` | {@link LibvirtConnection}: open, hostname, versions, node info, domains, stats |
 * | `domain.ts` | {@link LibvirtDomain}: info, state, XML, stats, job stats, migrate and its knobs |
 * | `domain_stats.ts` | {@link DomainStats}: a domain's stats record |
 * | `job_stats.ts` | {@link JobStats}: a job's stats, as a migration steerer reads them |
 * | `migrate_params.ts` | {@link MigrateParams}: `virDomainMigrateToURI3`'s typed parameters |
 *
 * `LibvirtDomain.migrate` runs `virDomainMigrateToURI3` on a Worker (libvirt's
 * last error is per thread, so the Worker reads it where the call failed);
 * the main thread polls job stats and moves the knobs meanwhile. Every
 * call that fails throws a {@link LibvirtError}; without libvirt an
 * `FfiError` says `apt-get install libvirt0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DomainState, LibvirtConnection, LibvirtError } from "./mod.ts";
 *
 * using conn = LibvirtConnection.open("test:///default"); // no daemon needed
 * using dom = conn.lookupDomain("test");
 * assert.equal(dom.stats().state, DomainState.running);
 * // The test driver has no job stats: libvirt says so, and the error says where.
 * assert.throws(() => dom.jobStats(), (e: unknown) =>
 *   e instanceof LibvirtError && e.call === "virDomainGetJobStats" &&
 *   /not supported/.test(e.message));
 * ```
 *
 * @module
 */

// The loader's error (libvirt missing) and spec type, for callers of this folder alone.
export { FfiError, type LibrarySpec } from "../_library.ts";
export * from "./constants.ts";
export * from "./errors.ts";
export * from "./libvirt.ts";
export * from "./typed_params.ts";
export * from "./connection.ts";
export * from "./domain.ts";
export * from "./domain_stats.ts";
export * from "./job_stats.ts";
export * from "./migrate_params.ts";
