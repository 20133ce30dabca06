/**
 * Nagle's algorithm off on hakobu's TCP connections.
 *
 * @module
 */

/**
 * Turns Nagle's algorithm off on a TCP connection (a unix socket has none).
 * hakobu's frames that a migration waits on are small — STREAM_END, RESULT,
 * PROGRESS, a last RECORDS, a stream's held end — and Nagle holds a small
 * segment back while an earlier one is unacknowledged, which against the
 * peer's delayed ACK is up to 40 ms on Linux, inside a guest's downtime
 * (traced: STREAM_END written at 10 ms after the source's STOP, read at 51
 * ms). The frames are already written in large pieces where there is much
 * to send.
 *
 * @example
 * ```ts
 * import { noDelay } from "./no_delay.ts";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * noDelay(conn);
 * conn.close();
 * listener.close();
 * ```
 */
export function noDelay(conn: Deno.Conn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  if (typeof tcp.setNoDelay === "function") {
    try {
      tcp.setNoDelay(true);
    } catch { /* closed already: the next read or write says so */ }
  }
}
