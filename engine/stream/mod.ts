/**
 * The stream tunnel: a hypervisor's own migration stream (QEMU's `exec:`,
 * xl's `migrate -s`) parsed by a {@link StreamFormat}, its pages sent through
 * hakobu's channels and codecs, rebuilt byte for byte on the receiving side
 * and checked by SHA-256 (`docs/qemu-stream.md`, `docs/xen.md`).
 *
 * @example
 * ```ts ignore
 * import { qemuFormat, receiveStream, sendStream } from "./mod.ts";
 * // source: QEMU's stream on stdin, to the receiver
 * const stats = await sendStream(Deno.stdin.readable, conn, { format: qemuFormat, codecs: [{ name: "zero" }, { name: "zstd" }] });
 * // destination: the rebuilt stream to QEMU's -incoming stdin
 * await receiveStream(conn, { format: "qemu", out: Deno.stdout.writable });
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
export type { StreamModeOptions } from "./receive_mode.ts";
export type {
  ReceiveEvent,
  ReceiveSessionOptions,
} from "../session/receive_core.ts";
