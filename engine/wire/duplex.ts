/** One end of a byte connection: what the receiver and {@link FrameReader}/{@link FrameWriter} need of a `Deno.Conn`. */
export interface WireConn {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  readonly writable: WritableStream<Uint8Array>;
  /** The peer's address, `host:port`, when known: errors name it. */
  readonly remote?: string;
}

/**
 * An in-memory connection: two {@link WireConn} ends, each one's writable
 * feeding the other's readable, for tests and in-process migrations.
 *
 * Like a socket it copies each chunk on write, so a writer may reuse its
 * buffer as soon as the write resolves; closing one end's writable ends the
 * other end's readable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   FrameReader,
 *   FrameType,
 *   FrameWriter,
 *   memoryDuplex,
 * } from "@hakobu/hakobu";
 *
 * const [source, destination] = memoryDuplex();
 * const writer = new FrameWriter(source.writable);
 * await writer.write(FrameType.ABORT, 0, new TextEncoder().encode("{}"));
 * await writer.close(); // ends the other side's readable
 * const reader = new FrameReader(destination.readable);
 * const frame = await reader.next();
 * assert.equal(frame?.type, FrameType.ABORT);
 * assert.equal(await reader.next(), null);
 * ```
 *
 * @param highWaterMark Chunks a direction buffers before writes wait (default 16).
 */
export function memoryDuplex(highWaterMark = 16): [WireConn, WireConn] {
  const pipe = (): TransformStream<Uint8Array, Uint8Array> =>
    new TransformStream<Uint8Array, Uint8Array>(
      { transform: (chunk, controller) => controller.enqueue(chunk.slice()) },
      { highWaterMark },
      { highWaterMark },
    );
  const ab = pipe();
  const ba = pipe();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}
