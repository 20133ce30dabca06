/**
 * The Xen tunnel: xl's migration stream (`xl migrate -s`) through hakobu's
 * channels and codecs, rebuilt byte for byte for `xl migrate-receive`, with
 * the receiving xl's answers carried back. It is the stream tunnel
 * (`engine/stream/`) with the xl format; these two functions name it.
 * Command line: `scripts/tunnel.ts xen send|receive` (`docs/xen.md`).
 *
 * @module
 */

import { xenFormat } from "../stream/xen_format.ts";
import { receiveStream } from "../stream/receive.ts";
import {
  sendStream,
  type StreamSendOptions,
  type StreamStats,
} from "../stream/send.ts";
import type { WireConn } from "../wire/duplex.ts";

/** What a Xen tunnel side measured. */
export interface XenTunnelStats extends StreamStats {
  /** Whether libxc PAGE_DATA records were found in xl's stream. */
  readonly sawImage: boolean;
}

/** Options of {@link sendXenStream}. */
export interface XenTunnelSendOptions
  extends Omit<StreamSendOptions, "format" | "back"> {
  /** Bound on pfns (HELLO's memory size / 4096); a data pfn at or above it fails. */
  readonly maxPages?: number;
}

/**
 * Tunnels xl's migration stream: reads `source` (xl's data) to its end,
 * relays the receiving side's answers to `back`, and checks the receiver's
 * verdict against its own digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodeRecord,
 *   memoryDuplex,
 *   receiveXenStream,
 *   RecType,
 *   sendXenStream,
 *   xlStreamPrefix,
 *   xlStreamSuffix,
 * } from "@hakobu/hakobu";
 *
 * // On a host: `Deno.stdin.readable` is xl's stream, `Deno.stdout.writable`
 * // goes back to xl. Here, an xl stream of an image without pages:
 * const xl = new Uint8Array([
 *   ...xlStreamPrefix("{}"),
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
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 *   ...xlStreamSuffix(),
 * ]);
 * const [conn, destination] = memoryDuplex();
 * const receiving = receiveXenStream(destination, {
 *   writable: new WritableStream(),
 *   readable: ReadableStream.from([]),
 * });
 * const stats = await sendXenStream(
 *   ReadableStream.from([xl]),
 *   new WritableStream(),
 *   conn,
 *   { codecs: [{ name: "zero" }, { name: "lz4" }], channels: 1 },
 * );
 * await receiving;
 * assert.equal(stats.verified, true);
 * assert.equal(stats.streamBytes, xl.length);
 * ```
 *
 * @throws {XenStreamError} when the libxc image is malformed or truncated (the receiver is sent ABORT).
 * @throws {MigrationError} when the receiver fails, refuses or reports another digest.
 */
export async function sendXenStream(
  source: ReadableStream<Uint8Array>,
  back: WritableStream<Uint8Array>,
  conn: WireConn,
  options: XenTunnelSendOptions = {},
): Promise<XenTunnelStats> {
  const { maxPages, ...rest } = options;
  const stats = await sendStream(source, conn, {
    ...rest,
    format: xenFormat(maxPages),
    back,
  });
  return { ...stats, sawImage: stats.pageRecords > 0 };
}

/** The receiving `xl migrate-receive`: its stdin, its stdout, its exit. */
export interface XenPeer {
  /** Where the rebuilt stream goes (xl's stdin). */
  readonly writable: WritableStream<Uint8Array>;
  /** What the receiving xl says (its stdout), relayed to the source. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Resolves to the peer's exit code once it ended (optional). */
  readonly exited?: Promise<number>;
}

/**
 * Receives one tunnelled xl stream from `conn` and writes it to the
 * receiving xl as it comes (xl answers between its messages), relaying its
 * answers back.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodeRecord,
 *   memoryDuplex,
 *   receiveXenStream,
 *   RecType,
 *   sendXenStream,
 *   xlStreamPrefix,
 *   xlStreamSuffix,
 * } from "@hakobu/hakobu";
 *
 * const xl = new Uint8Array([
 *   ...xlStreamPrefix("{}"),
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
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 *   ...xlStreamSuffix(),
 * ]);
 * const [conn, destination] = memoryDuplex();
 * const sending = sendXenStream(
 *   ReadableStream.from([xl]),
 *   new WritableStream(),
 *   conn,
 *   { channels: 1 },
 * );
 * // On a host, the peer is `xl migrate-receive`:
 * //   const child = new Deno.Command("xl", {
 * //     args: ["migrate-receive"], stdin: "piped", stdout: "piped",
 * //   }).spawn();
 * //   const peer = { writable: child.stdin, readable: child.stdout };
 * //   await receiveXenStream(conn, peer);
 * const chunks: Uint8Array[] = [];
 * const stats = await receiveXenStream(destination, {
 *   writable: new WritableStream({
 *     write: (c) => void chunks.push(c.slice()),
 *   }),
 *   readable: ReadableStream.from([]),
 * });
 * await sending;
 * assert.equal(stats.verified, true);
 * assert.deepEqual(new Uint8Array(chunks.flatMap((c) => [...c])), xl);
 * ```
 *
 * @throws {WireError} on a malformed, truncated or out-of-order frame.
 * @throws {MigrationError} when the source aborts or the rebuilt stream does not match.
 */
export async function receiveXenStream(
  conn: WireConn,
  peer: XenPeer,
): Promise<XenTunnelStats> {
  const stats = await receiveStream(conn, {
    format: "xen",
    out: peer.writable,
    back: peer.readable,
    holdLast: false,
    exited: peer.exited,
  });
  return { ...stats, sawImage: stats.pageRecords > 0 };
}
