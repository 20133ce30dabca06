/**
 * A connection that passed its security handshake (or was asked to run
 * plain): the byte streams the session core reads and writes, who the peer
 * is, and a way to close it.
 *
 * @module
 */

import type { TLSSocket } from "node:tls";
import type { WireConn } from "../../wire/duplex.ts";
import { noDelay } from "../no_delay.ts";

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
  /**
   * What the read side holds for a slow reader, over TLS; absent over plain
   * TCP, where the kernel's socket buffer is the bound.
   */
  readonly readBuffer?: ReadBuffer;
  /** Closes both directions now. */
  close(): void;
}

/** Default most bytes a TLS connection's read side holds for a slow reader ({@link socketStreams}). */
export const DEFAULT_READ_BUFFER_BYTES: number = 4 * 1024 * 1024;

/**
 * What a TLS connection's read side holds: bytes read from the socket and
 * decrypted that the reader has not taken yet. A live view: its values
 * change as the connection runs.
 */
export interface ReadBuffer {
  /** Bytes held now. */
  readonly bytes: number;
  /** Most bytes held at once so far. */
  readonly peakBytes: number;
  /**
   * Held bytes at which the socket stops reading from the network; at most
   * what the TLS layer had already decrypted then (a TCP read or so) comes
   * on top.
   */
  readonly limitBytes: number;
  /** Times the socket stopped reading because the reader was behind. */
  readonly stops: number;
  /**
   * Whether the socket can be stopped at all: false when this Deno's
   * `node:tls` does not expose the TCP handle below the TLS layer (the
   * buffer is then unbounded; `secure_test.ts` fails).
   */
  readonly bounded: boolean;
}

/** Options of {@link socketStreams}. */
export interface SocketStreamsOptions {
  /** Most bytes the read side holds before the socket stops reading (default 4 MiB). */
  readonly readBufferBytes?: number;
}

/** The TCP handle below a node `TLSSocket`'s TLS layer, when this runtime exposes one. */
interface TcpHandle {
  readStart(): unknown;
  readStop(): unknown;
}

/**
 * The TCP handle under `socket`'s TLS layer. Deno's `node:tls` (2.x) keeps
 * it as the TLS wrap's `_parent`; stopping the TLS wrap itself (or
 * `socket.pause()`) does not stop the TCP reads that feed it.
 */
function tcpHandleOf(socket: TLSSocket): TcpHandle | null {
  const wrap = (socket as unknown as { _handle?: { _parent?: unknown } })
    ._handle;
  const tcp = wrap?._parent as Partial<TcpHandle> | undefined;
  return typeof tcp?.readStart === "function" &&
      typeof tcp.readStop === "function"
    ? tcp as TcpHandle
    : null;
}

/**
 * Byte streams over a node `TLSSocket`; writes wait for `drain`, reads are
 * bounded.
 *
 * Writes are copied before they are queued, so a writer may reuse its
 * buffer as soon as a write resolves (as with `Deno.Conn`); a write waits
 * for `drain` once the socket's buffer is full.
 *
 * Reads: the readable holds at most `readBufferBytes` that its reader has
 * not taken (plus what the TLS layer had decrypted when it stopped); then
 * the TCP socket below the TLS layer stops reading, so the kernel's window
 * closes and a sender faster than the reader waits, as over plain TCP. It
 * reads on once the reader took some. `socket.pause()` would not do: under
 * Deno's `node:tls` (2.x) it stops only the delivery of `data`, the TLS
 * layer reads on from the TCP socket into memory of its own (a probe grew
 * 210 MB in a second while paused), and a socket paused when its peer dies
 * never reports it, neither `end`, `close` nor `error`, not even once
 * resumed and drained. Stopping the TCP handle has neither problem: the
 * peer's end waits in the kernel behind the bytes it sent and comes once
 * the reader reads on (`secure_test.ts` kills a source while its receiver
 * does not read).
 */
export function socketStreams(
  socket: TLSSocket,
  options: SocketStreamsOptions = {},
): {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  readBuffer: ReadBuffer;
} {
  const limit = options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(
      `Bad read buffer size "${limit}": expected a positive number of bytes`,
    );
  }
  const tcp = tcpHandleOf(socket);
  // Nagle off, for the reason noDelay (../no_delay.ts) gives.
  socket.setNoDelay(true);
  let done = false;
  let queue: ReadableStreamDefaultController<Uint8Array> | undefined;
  /** Bytes the readable's queue holds (0 once it is closed or failed). */
  const held = (): number => {
    const free = queue?.desiredSize;
    return free === null || free === undefined || (done && free === 0)
      ? 0
      : limit - free;
  };
  let peak = 0;
  let stops = 0;
  let stopped = false;
  const stopReading = () => {
    if (stopped || done || !tcp) return;
    try {
      tcp.readStop();
      stopped = true;
      stops++;
    } catch { /* closing: nothing more to read */ }
  };
  const readOn = () => {
    if (!stopped) return;
    stopped = false;
    if (done || socket.destroyed) return;
    try {
      tcp!.readStart();
    } catch { /* closing: its end is reported by the socket */ }
  };
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      queue = controller;
      socket.on("data", (data: Uint8Array) => {
        if (done) return;
        controller.enqueue(
          new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        );
        const bytes = held();
        if (bytes > peak) peak = bytes;
        if (bytes >= limit) stopReading();
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
    // Called once the reader took some and the queue is under the limit.
    pull() {
      readOn();
    },
    cancel() {
      done = true;
      socket.destroy();
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: limit }));
  const readBuffer: ReadBuffer = {
    get bytes() {
      return held();
    },
    get peakBytes() {
      return peak;
    },
    limitBytes: limit,
    get stops() {
      return stops;
    },
    bounded: tcp !== null,
  };
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
  return { readable, writable, readBuffer };
}

/** A plain `Deno.Conn` as a {@link ChannelConn} (no identity); Nagle off ({@link noDelay}). */
export function plainChannelConn(conn: Deno.Conn): ChannelConn {
  noDelay(conn);
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
