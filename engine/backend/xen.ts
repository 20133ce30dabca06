/**
 * The `xen` backend: a PV or PVH domain on this dom0, named `xen:DOMAIN`
 * (its name or id, as `xl` takes it). libxenguest's save loop runs under
 * the plan (`../xen/migrate_domain.ts`), its stream goes to an
 * `xl migrate-receive` as `xl migrate` sends it; the target says where:
 *
 * - `HOST` (or `USER@HOST`): `ssh HOST xl migrate-receive`, as
 *   `xl migrate DOMU HOST` does; `localhost`: `xl migrate-receive` on this host;
 * - `HOST:PORT`: through hakobu's stream tunnel (`hakobu tunnel xen send`)
 *   to a `hakobu tunnel xen receive --listen HOST:PORT` that feeds the
 *   destination's `xl migrate-receive`: the plan's codecs on the link, and
 *   the stream verified end to end;
 * - `exec:COMMAND`: any shell command that speaks `xl migrate-receive` on
 *   its stdin and stdout.
 *
 * @module
 */

import type { Plan } from "../plan.ts";
import {
  migrateXenDomain,
  type XenMigrationReport,
} from "../xen/migrate_domain.ts";
import type { StreamStats } from "../stream/send.ts";
import { requireSecurity, streamTunnel, tunnelNote } from "./_common.ts";
import {
  type Backend,
  BackendError,
  type BackendFactory,
  type BackendMigrateOptions,
  type BackendOpenOptions,
} from "./backend.ts";
import { parseAddress } from "../transport/address.ts";

const TARGET_FORM =
  "HOST (ssh HOST xl migrate-receive; localhost: this host), HOST:PORT (hakobu's Xen tunnel receiver) or exec:COMMAND (a command speaking xl migrate-receive)";

/** What the `xen` backend reports: Xen's report, and what its tunnel counted when it used one. */
export interface XenBackendReport extends XenMigrationReport {
  /** The tunnel sender's statistics (null when no tunnel ran, or it did not finish). */
  readonly tunnel: StreamStats | null;
}

/** Where a `xen` target sends the stream. */
export type XenTarget =
  | { readonly kind: "command"; readonly receiver: string }
  | {
    readonly kind: "tunnel";
    readonly hostname: string;
    readonly port: number;
  };

/**
 * Reads a `xen` backend's target (see the module doc for its forms).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseXenTarget } from "@hakobu/hakobu";
 *
 * assert.deepEqual(parseXenTarget("host2"), {
 *   kind: "command",
 *   receiver: "ssh host2 xl migrate-receive",
 * });
 * assert.deepEqual(parseXenTarget("localhost"), {
 *   kind: "command",
 *   receiver: "xl migrate-receive",
 * });
 * assert.deepEqual(parseXenTarget("10.0.0.2:4445"), {
 *   kind: "tunnel",
 *   hostname: "10.0.0.2",
 *   port: 4445,
 * });
 * assert.throws(() => parseXenTarget("two words"), /expected HOST/);
 * ```
 *
 * @throws {BackendError} naming the target and the forms accepted.
 */
export function parseXenTarget(target: string): XenTarget {
  const exec = /^exec:([\s\S]+)$/.exec(target);
  if (exec && exec[1].trim() !== "") {
    return { kind: "command", receiver: exec[1] };
  }
  if (target === "localhost") {
    return { kind: "command", receiver: "xl migrate-receive" };
  }
  if (/^([A-Za-z0-9._-]+@)?[A-Za-z0-9][A-Za-z0-9.-]*$/.test(target)) {
    return { kind: "command", receiver: `ssh ${target} xl migrate-receive` };
  }
  try {
    return { kind: "tunnel", ...parseAddress(target, "destination") };
  } catch {
    throw new BackendError(
      `Cannot parse destination "${target}" of a xen source: expected ${TARGET_FORM}`,
      { field: "target" },
    );
  }
}

class XenBackend implements Backend {
  readonly scheme = "xen";
  readonly targetForm = TARGET_FORM;
  readonly source: string;
  readonly #domain: string;
  readonly #live: boolean;

  constructor(domain: string, options: BackendOpenOptions) {
    this.source = `xen:${domain}`;
    this.#domain = domain;
    this.#live = options.live ?? true;
  }

  async migrate(
    plan: Plan,
    target: string,
    options: BackendMigrateOptions = {},
  ): Promise<XenBackendReport> {
    const where = parseXenTarget(target);
    const tunnel = where.kind === "tunnel"
      ? await streamTunnel(
        "xen",
        plan,
        where,
        requireSecurity(options, this.source, target),
      )
      : null;
    // The tunnel's uri is for QEMU ("exec:..."); xl's receiver is the command.
    const receiver = where.kind === "command"
      ? where.receiver
      : tunnel!.uri.slice("exec:".length);
    try {
      const report = await migrateXenDomain({
        domain: this.#domain,
        plan,
        receiver,
        live: this.#live,
        log: options.log,
        signal: options.signal,
        onRound: options.onRound,
        onProgress: options.onProgress,
        ...(tunnel ? { verify: () => tunnel.verdict() } : {}),
      });
      if (!tunnel) return { ...report, tunnel: null };
      const stats = tunnel.stats;
      return {
        ...report,
        receiver: `hakobu's Xen tunnel to ${target}`,
        bandwidth: plan.bandwidth,
        gpu: {
          ...report.gpu,
          note:
            "libxc wrote the stream; hakobu's tunnel re-encoded its pages on the CPU",
        },
        notes: { ...report.notes, tunnel: tunnelNote(stats, "libxc") },
        tunnel: stats,
      };
    } finally {
      if (tunnel) await Deno.remove(tunnel.statsFile).catch(() => {});
    }
  }
}

/**
 * Opens `xen:DOMAIN` sources: a PV or PVH domain on this dom0, by name or
 * id, migrated with libxenguest's save loop under the plan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xenBackend } from "@hakobu/hakobu";
 *
 * const vm = xenBackend.open("vm1"); // parses only: xl is not run yet
 * assert.equal(vm.source, "xen:vm1");
 * assert.throws(() => xenBackend.open(""), /expected xen:DOMAIN/);
 * ```
 */
export const xenBackend: BackendFactory = Object.freeze({
  scheme: "xen",
  sourceForm: "xen:DOMAIN",
  targetForm: TARGET_FORM,
  description:
    "a PV/PVH Xen domain on this dom0 (name or id); libxenguest's save loop runs under the plan, its stream goes to xl migrate-receive",
  open(rest: string, options: BackendOpenOptions = {}): Backend {
    if (!/^[^\s/'"]+$/.test(rest)) {
      throw new BackendError(
        `Cannot parse source "xen:${rest}": expected xen:DOMAIN, a domain's name or id as xl takes it (no spaces, quotes or slashes)`,
        { field: "source" },
      );
    }
    return new XenBackend(rest, options);
  },
});
