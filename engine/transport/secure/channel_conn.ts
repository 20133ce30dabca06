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

/** Chunks the readable side buffers before it pauses the socket. */
const READ_HIGH_WATER = 16;

/**
 * Byte streams over a node `TLSSocket`, with backpressure both ways.
 *
 * Writes are copied before they are queued, so a writer may reuse its
 * buffer as soon as a write resolves (as with `Deno.Conn`); a write waits
 * for `drain` once the socket's buffer is full.
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
        if ((controller.desiredSize ?? 1) <= 0) socket.pause();
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
    pull() {
      socket.resume();
    },
    cancel() {
      done = true;
      socket.destroy();
    },
  }, { highWaterMark: READ_HIGH_WATER });
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
