/**
 * The QEMU tunnel: QEMU's migration stream through hakobu's channels and
 * codecs, rebuilt byte for byte for the destination QEMU. It is the stream
 * tunnel (`engine/stream/`) with the QEMU format; these two functions name
 * it. Frames and limits: `docs/qemu-stream.md`; command line:
 * `scripts/tunnel.ts qemu send|receive`.
 *
 * @module
 */

import { qemuFormat } from "../stream/qemu_format.ts";
import { receiveStream } from "../stream/receive.ts";
import {
  sendStream,
  type StreamSendOptions,
  type StreamStats,
} from "../stream/send.ts";
import type { WireConn } from "../wire/duplex.ts";

/** Options of {@link sendQemuStream}: the stream tunnel's, but the format and the back channel. */
export type TunnelSendOptions = Omit<StreamSendOptions, "format" | "back">;

/**
 * Tunnels one QEMU migration stream: reads `source` to its end, sends it
 * over `conn` and checks the receiver's verdict against its own digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   receiveQemuStream,
 *   sendQemuStream,
 * } from "@hakobu/hakobu";
 *
 * // On a host: `Deno.stdin.readable` (QEMU's `exec:` stream) and a TCP conn.
 * const gz = await Deno.open(
 *   new URL("./stream/testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const [conn, destination] = memoryDuplex();
 * const receiving = receiveQemuStream(destination, new WritableStream());
 * const stats = await sendQemuStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   conn,
 *   { codecs: [{ name: "zero" }, { name: "zstd" }], channels: 1 },
 * );
 * await receiving;
 * assert.equal(stats.verified, true);
 * ```
 *
 * @throws {QemuStreamError} when the QEMU stream is not one or is truncated (the receiver is sent ABORT).
 * @throws {MigrationError} when the receiver fails, refuses or reports another digest.
 */
export function sendQemuStream(
  source: ReadableStream<Uint8Array>,
  conn: WireConn,
  options: TunnelSendOptions = {},
): Promise<StreamStats> {
  return sendStream(source, conn, { ...options, format: qemuFormat });
}

/** Options of {@link receiveQemuStream}. */
export interface TunnelReceiveOptions {
  /** Largest guest RAM a HELLO may announce (default 1 TiB). */
  readonly maxMemoryBytes?: number;
}

/**
 * Receives one tunnelled QEMU stream from `conn` and writes it to `sink`,
 * holding back its newest piece until the stream is verified: closes `sink`
 * after a verified end; aborts it on any failure. A chunk is `sink`'s only
 * until its write resolved (its buffer is then reused): a sink that keeps
 * chunks copies them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   receiveQemuStream,
 *   sendQemuStream,
 * } from "@hakobu/hakobu";
 *
 * // On a host: `conn` from a listener, the sink QEMU's stdin.
 * const gz = await Deno.open(
 *   new URL("./stream/testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const [conn, destination] = memoryDuplex();
 * const sending = sendQemuStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   conn,
 *   { channels: 1 },
 * );
 * let bytes = 0;
 * const stats = await receiveQemuStream(
 *   destination,
 *   new WritableStream({ write: (c) => void (bytes += c.length) }),
 * );
 * await sending;
 * assert.equal(stats.verified, true);
 * assert.equal(bytes, stats.streamBytes);
 * ```
 *
 * @throws {WireError} on a malformed, truncated or out-of-order frame.
 * @throws {MigrationError} when the source aborts or the rebuilt stream does not match.
 */
export function receiveQemuStream(
  conn: WireConn,
  sink: WritableStream<Uint8Array>,
  options: TunnelReceiveOptions = {},
): Promise<StreamStats> {
  return receiveStream(conn, {
    format: "qemu",
    out: sink,
    maxMemoryBytes: options.maxMemoryBytes,
  });
}
