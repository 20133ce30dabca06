/**
 * A connection that passed its security handshake (or was asked to run
 * plain): the byte streams the session core reads and writes, who the peer
 * is, and a way to close it.
 *
 * @module
 */

import type { TLSSocket } from "node:tls";
import type { WireConn } from "../../wire/duplex.ts";

/** An accepted or connected hakobu connection. */
export interface ChannelConn extends WireConn {
  /** The peer's address, `host:port`. */
  readonly remote: string;
  /**
   * Who the peer proved to be: a source's certificate common name or PSK
   * identity on the receiver, the receiver's certificate name on the source;
   * `null` over plain TCP.
   */
  readonly identity: string | null;
  /** Closes both directions now. */
  close(): void;
}

/**
 * Byte streams over a node `TLSSocket`; writes wait for `drain`.
 *
 * Writes are copied before they are queued, so a writer may reuse its
 * buffer as soon as a write resolves (as with `Deno.Conn`); a write waits
 * for `drain` once the socket's buffer is full.
 *
 * Reads are never paused. Under Deno's `node:tls` (2.x), `socket.pause()`
 * stops only the delivery of `data`: the TLS layer reads on from the TCP
 * socket into memory of its own (a probe grew 210 MB in a second while
 * paused), so pausing bounds nothing; and a socket paused when its peer
 * dies never reports it, neither `end`, `close` nor `error`, not even once
 * resumed and drained (the same probe). A receiver whose source was killed
 * then learnt of it only from its frame timeout. Unpaused, the socket's end
 * comes after the last bytes, as over plain TCP.
 */
export function socketStreams(
  socket: TLSSocket,
): {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
} {
  let done = false;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      socket.on("data", (data: Uint8Array) => {
        if (done) return;
        controller.enqueue(
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        );
      });
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        try {
          if (error) controller.error(error);
          else controller.close();
        } catch { /* cancelled by the reader */ }
      };
      socket.on("end", () => finish());
      socket.on("close", () => finish());
      socket.on("error", (e: Error) => finish(e));
    },
    cancel() {
      done = true;
      socket.destroy();
    },
  });
  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (socket.destroyed) {
        return Promise.reject(new Deno.errors.BrokenPipe("connection closed"));
      }
      return new Promise<void>((resolve, reject) => {
        const onError = (e: Error) => reject(e);
        socket.once("error", onError);
        if (socket.write(chunk.slice())) {
          socket.off("error", onError);
          resolve();
        } else {
          socket.once("drain", () => {
            socket.off("error", onError);
            resolve();
          });
        }
      });
    },
    close() {
      return new Promise<void>((resolve) => socket.end(() => resolve()));
    },
    abort() {
      socket.destroy();
    },
  });
  return { readable, writable };
}

/** A plain `Deno.Conn` as a {@link ChannelConn} (no identity). */
export function plainChannelConn(conn: Deno.Conn): ChannelConn {
  const addr = conn.remoteAddr as Deno.NetAddr;
  return {
    readable: conn.readable,
    writable: conn.writable,
    remote: `${addr.hostname}:${addr.port}`,
    identity: null,
    close: () => {
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}
