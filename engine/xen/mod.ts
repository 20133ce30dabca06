/**
 * Xen support: the libxc stream (`stream/`), the `xl migrate -s` tunnel
 * (`tunnel.ts`: the stream tunnel of `engine/stream/` with the xl format;
 * command line `scripts/tunnel.ts xen send|receive`),
 * rounds by pfn repetition (`rounds.ts`), libxenguest's save loop driven by
 * a TS plan in a Worker (`save.ts`), a whole migration with hakobu in
 * `xl migrate`'s place (`migrate_domain.ts`, xl's handshake in
 * `xl_protocol.ts`, `resume.ts` after a failure), dirty-rate measurement
 * (`dirty_rate.ts`) and a same-host downtime probe (`downtime_probe.ts`).
 * Bindings live in `ffi/xen/`. Guide: `docs/xen.md`.
 *
 * @example
 * ```ts
 * import { sendXenStream } from "./engine/xen/mod.ts";
 * await sendXenStream(Deno.stdin.readable, Deno.stdout.writable, conn, { codecs: [{ name: "zero" }] });
 * ```
 *
 * @module
 */

export * from "./stream/mod.ts";
export * from "./rounds.ts";
export * from "./tunnel.ts";
export * from "./save.ts";
export * from "./xl_protocol.ts";
export * from "./resume.ts";
export * from "./migrate_domain.ts";
export * from "./downtime_probe.ts";
export * from "./dirty_rate.ts";
// Types from the Xen bindings that this module's public signatures use.
export type { DirtyBitmap, DomainInfo } from "../../ffi/xen/xenctrl.ts";
export type { PrecopyStats } from "../../ffi/xen/xenguest.ts";
