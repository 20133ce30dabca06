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
 * ```ts ignore
 * const stats = await sendXenStream(Deno.stdin.readable, Deno.stdout.writable, conn, {
 *   codecs: [{ name: "zero" }, { name: "lz4" }],
 * });
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
 * ```ts ignore
 * const child = new Deno.Command("xl", { args: ["migrate-receive"], stdin: "piped", stdout: "piped" }).spawn();
 * await receiveXenStream(conn, { writable: child.stdin, readable: child.stdout });
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
