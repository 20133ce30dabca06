/**
 * Xen support: the libxc stream (`stream/`), the `xl migrate -s` tunnel
 * (`tunnel.ts`: the stream tunnel of `engine/stream/` with the xl format;
 * command line `scripts/tunnel.ts xen send|receive`),
 * rounds by pfn repetition (`rounds.ts`), libxenguest's save loop driven by
 * a TS plan in a Worker (`save.ts`) and its round table (`save_rounds.ts`), a whole migration with hakobu in
 * `xl migrate`'s place (`migrate_domain.ts`, xl's handshake in
 * `xl_protocol.ts`, `resume.ts` after a failure), dirty-rate measurement
 * (`dirty_rate.ts`) and a same-host downtime probe (`downtime_probe.ts`).
 * Bindings live in `ffi/xen/`. Guide: `docs/xen.md`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodePageData,
 *   encodeRecord,
 *   memoryDuplex,
 *   receiveXenStream,
 *   RecType,
 *   sendXenStream,
 *   xlStreamPrefix,
 *   xlStreamSuffix,
 * } from "@hakobu/hakobu";
 *
 * // What `xl migrate -s` writes: xl's header, then a (tiny) libxc image.
 * const xl = new Uint8Array([
 *   ...xlStreamPrefix(JSON.stringify({ c_info: { name: "vm" } })),
 *   ...encodeImageHeader({
 *     version: 3,
 *     options: 0,
 *     ihdrReserved: [0, 0],
 *     domainType: DomainType.X86_PVH,
 *     pageShift: 12,
 *     dhdrReserved: 0,
 *     xenMajor: 4,
 *     xenMinor: 17,
 *   }),
 *   ...encodePageData({
 *     kind: "page_data",
 *     reserved: 0,
 *     entries: [{ pfn: 5, type: 0 }],
 *     pages: [new Uint8Array(4096).fill(1)],
 *   }),
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 *   ...xlStreamSuffix(),
 * ]);
 * const [conn, destination] = memoryDuplex();
 * // The receiving side: `xl migrate-receive`'s stdin and stdout (here: fakes).
 * let rebuilt = 0;
 * const receiving = receiveXenStream(destination, {
 *   writable: new WritableStream({ write: (c) => void (rebuilt += c.length) }),
 *   readable: ReadableStream.from([new TextEncoder().encode("ready\n")]),
 * });
 * // The sending side: xl's stream in, xl's answers back out.
 * const answers: string[] = [];
 * const stats = await sendXenStream(
 *   ReadableStream.from([xl]),
 *   new WritableStream({
 *     write: (c) => void answers.push(new TextDecoder().decode(c)),
 *   }),
 *   conn,
 *   { codecs: [{ name: "zero" }], channels: 1 },
 * );
 * await receiving;
 * assert.equal(stats.sawImage, true);
 * assert.equal(stats.verified, true);
 * assert.equal(rebuilt, xl.length);
 * assert.deepEqual(answers, ["ready\n"]);
 * ```
 *
 * @module
 */

export * from "./stream/mod.ts";
export * from "./rounds.ts";
export * from "./tunnel.ts";
export * from "./save.ts";
export * from "./save_rounds.ts";
export * from "./xl_protocol.ts";
export * from "./resume.ts";
export * from "./migrate_domain.ts";
export * from "./downtime_probe.ts";
export * from "./dirty_rate.ts";
// Types from the Xen bindings that this module's public signatures use.
export type { DirtyBitmap, DomainInfo } from "../../ffi/xen/xenctrl.ts";
export type { PrecopyStats } from "../../ffi/xen/xenguest.ts";
