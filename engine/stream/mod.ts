/**
 * The stream tunnel: a hypervisor's own migration stream (QEMU's `exec:`,
 * xl's `migrate -s`) parsed by a {@link StreamFormat}, its pages sent through
 * hakobu's channels and codecs, rebuilt byte for byte on the receiving side
 * and checked by XXH3-128 (`docs/qemu-stream.md`, `docs/xen.md`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   qemuFormat,
 *   receiveStream,
 *   sendStream,
 * } from "@hakobu/hakobu";
 *
 * // A real QEMU stream (QEMU 7.2, pc, 64 MiB, paused at reset), kept for tests;
 * // a tunnel reads QEMU's `exec:` stream from its stdin instead.
 * const gz = await Deno.open(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const source = gz.readable.pipeThrough(new DecompressionStream("gzip"));
 * const [conn, destination] = memoryDuplex();
 * let rebuiltBytes = 0;
 * // The destination: the rebuilt stream, for QEMU's -incoming (here: counted).
 * const received = receiveStream(destination, {
 *   format: "qemu",
 *   out: new WritableStream({ write: (c) => void (rebuiltBytes += c.length) }),
 * });
 * // The source: the stream through the channels and codecs.
 * const stats = await sendStream(source, conn, {
 *   format: qemuFormat,
 *   codecs: [{ name: "zero" }, { name: "zstd" }],
 *   channels: 1,
 * });
 * assert.equal((await received).verified, true);
 * assert.equal(rebuiltBytes, stats.streamBytes); // byte for byte
 * ```
 *
 * @module
 */

export type { StreamEvent, StreamFormat, StreamParser } from "./format.ts";
export { qemuFormat } from "./qemu_format.ts";
export { DEFAULT_MAX_PAGES, xenFormat } from "./xen_format.ts";
export {
  emptyStreamStats,
  sendStream,
  type StreamSendOptions,
  type StreamStats,
} from "./send.ts";
export { receiveStream } from "./receive.ts";
export {
  ChannelPools,
  type ChannelPoolsOptions,
  type WarmPoolsOptions,
} from "../pipeline/channel_pools.ts";
export type { StreamModeOptions } from "./receive_mode.ts";
export type {
  ReceiveEvent,
  ReceiveSessionOptions,
} from "../session/receive_core.ts";
export {
  type Reconnected,
  resumableSource,
  type ResumableStreamConn,
  type StreamResumeOptions,
  type StreamResumeReport,
} from "./resume_source.ts";
export {
  type Admitted,
  type StreamResumeEvent,
  StreamResumeServer,
  type StreamResumeServerOptions,
} from "./resume_receiver.ts";
