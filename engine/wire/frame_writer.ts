import {
  encodeFrame,
  encodeFrameHeader,
  type FrameType,
  HEADER_BYTES,
} from "./frame.ts";

/**
 * Something {@link FrameWriter} can write to: a `WritableStream<Uint8Array>`
 * (`Deno.Conn.writable`, one end of {@link memoryDuplex}) or a
 * `Deno.Conn`-like object whose `write` may write only part of its input.
 */
export type FrameSink =
  | WritableStream<Uint8Array>
  | { write(p: Uint8Array): Promise<number>; closeWrite?(): Promise<void> };

/** Payloads up to this size are copied behind their header and sent in one write; larger ones go as two writes, without a copy. */
const COALESCE_BYTES = 256 * 1024;

/**
 * Writes frames to a stream and counts the bytes. Writes are sequential:
 * await each one before the next.
 *
 * When a write's promise resolves the stream holds the bytes (for
 * `Deno.Conn` they are in the kernel), so the caller may then reuse the
 * payload buffer. The in-memory {@link memoryDuplex} copies for the same
 * reason; a bare `TransformStream` would not.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeHello,
 *   FrameType,
 *   FrameWriter,
 *   PROTOCOL_VERSION,
 * } from "@hakobu/hakobu";
 *
 * const chunks: Uint8Array[] = [];
 * const writer = new FrameWriter(
 *   new WritableStream({ write: (c) => void chunks.push(c) }),
 * );
 * const payload = encodeHello({
 *   protocol: PROTOCOL_VERSION,
 *   memoryBytes: 4096,
 *   pageSize: 4096,
 *   codecs: [{ id: 0, name: "raw" }],
 *   vm: "sim",
 *   policy: "plain",
 *   channels: 1,
 * });
 * await writer.write(FrameType.HELLO, 0, payload);
 * assert.equal(writer.bytesWritten, 16 + payload.length); // header and payload
 * ```
 */
export class FrameWriter {
  #stream: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #conn:
    | { write(p: Uint8Array): Promise<number>; closeWrite?(): Promise<void> }
    | undefined;
  #header = new Uint8Array(HEADER_BYTES);
  #bytes = 0;

  /**
   * Creates a writer of frames into `sink`.
   *
   * @param sink Where frames go; a stream's lock is taken until {@link close} or {@link releaseLock}.
   */
  constructor(sink: FrameSink) {
    if ("getWriter" in sink) this.#stream = sink.getWriter();
    else this.#conn = sink;
  }

  /** Bytes written so far, headers included. */
  get bytesWritten(): number {
    return this.#bytes;
  }

  /**
   * Frames `payload` and writes it.
   *
   * @param type Frame type.
   * @param round Round number (u32), 0 outside rounds.
   * @param payload Payload bytes (at most {@link MAX_PAYLOAD}).
   * @param channel The frame's channel (default 0).
   */
  async write(
    type: FrameType,
    round: number,
    payload: Uint8Array,
    channel = 0,
  ): Promise<void> {
    if (payload.length <= COALESCE_BYTES) {
      await this.#write(encodeFrame(type, round, payload, channel));
      return;
    }
    encodeFrameHeader(type, round, payload, this.#header, channel);
    await this.#write(this.#header);
    await this.#write(payload);
  }

  /**
   * Writes bytes that already form one or more whole frames, e.g. a BATCH
   * frame a channel Worker encoded.
   */
  async writeRaw(frameBytes: Uint8Array): Promise<void> {
    await this.#write(frameBytes);
  }

  /** Closes the stream (for a `Deno.Conn` stream this closes the connection) or half-closes a conn-like sink. */
  async close(): Promise<void> {
    if (this.#stream) await this.#stream.close();
    else await this.#conn?.closeWrite?.();
  }

  /** Releases a stream's lock without closing it; no-op for a conn-like sink. */
  releaseLock(): void {
    this.#stream?.releaseLock();
  }

  async #write(bytes: Uint8Array): Promise<void> {
    if (this.#stream) {
      // A stream may keep the chunk; hand over the header's own copy.
      await this.#stream.write(bytes === this.#header ? bytes.slice() : bytes);
    } else {
      const conn = this.#conn!;
      for (let off = 0; off < bytes.length;) {
        off += await conn.write(bytes.subarray(off));
      }
    }
    this.#bytes += bytes.length;
  }
}
