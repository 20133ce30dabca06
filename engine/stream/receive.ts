/**
 * One call for the stream tunnel's receiving side: the receive core with
 * the stream mode.
 *
 * @module
 */

import { MigrationError } from "../errors.ts";
import {
  receiveSession,
  type ReceiveSessionOptions,
} from "../session/receive_core.ts";
import type { WireConn } from "../wire/duplex.ts";
import { streamMode, type StreamModeOptions } from "./receive_mode.ts";
import type { StreamStats } from "./send.ts";

/**
 * Receives one tunnelled stream from `conn` and writes it to `options.out`.
 * Closes `out` after a verified end; aborts it on any failure. A chunk is
 * `out`'s only until its write resolved (its buffer is then reused): a sink
 * that keeps chunks copies them.
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
 * const gz = await Deno.open(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const [conn, destination] = memoryDuplex();
 * const sending = sendStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   conn,
 *   { format: qemuFormat, channels: 1 },
 * );
 * // On a host: `conn` from a listener, `out` the stdin of QEMU -incoming.
 * const chunks: Uint8Array[] = [];
 * const stats = await receiveStream(destination, {
 *   format: "qemu",
 *   out: new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
 * });
 * await sending;
 * assert.equal(stats.verified, true);
 * assert.equal(stats.digest, stats.peerDigest); // XXH3-128 of the whole stream
 * ```
 *
 * @throws {WireError} on a malformed, truncated or out-of-order frame.
 * @throws {MigrationError} when the source aborts or the rebuilt stream does not match.
 */
export async function receiveStream(
  conn: WireConn,
  options: StreamModeOptions & ReceiveSessionOptions,
): Promise<StreamStats> {
  const outcome = await receiveSession(conn, streamMode(options), {
    // A stream's pfn space is its hypervisor's: allow up to 1 TiB.
    maxMemoryBytes: options.maxMemoryBytes ?? 2 ** 40,
    maxChannels: options.maxChannels,
    codecs: options.codecs,
    onEvent: options.onEvent,
    pools: options.pools,
    frameTimeoutMs: options.frameTimeoutMs,
  });
  if (outcome.aborted) {
    throw new MigrationError(`Source aborted the tunnel: ${outcome.reason}`);
  }
  if (outcome.joined) {
    // Not reachable: no resume registry is passed, so RESUME is refused.
    throw new MigrationError("A stream session cannot be resumed");
  }
  return outcome.result;
}
