import { WireError } from "../errors.ts";
import {
  decodeFrameHeader,
  type Frame,
  HEADER_BYTES,
  verifyFrameChecksum,
} from "./frame.ts";

const EMPTY = new Uint8Array(0);
/** Bytes a byte stream is read into at a time, for headers and small payloads. */
const STAGE_BYTES = 64 << 10;

/**
 * Reads frames from a byte stream, such as `Deno.Conn.readable` or one end of
 * {@link memoryDuplex}. Checks every header (magic, type, length bound)
 * before reading its payload and every CRC before returning a frame.
 *
 * Buffering is bounded: besides the chunk the stream handed over (or its
 * staging buffer), the reader holds one payload buffer that grows to the largest payload seen (never more
 * than the header's length, itself at most {@link MAX_PAYLOAD}) and is reused.
 *
 * **A returned frame's `payload` is valid only until the next call to
 * {@link FrameReader.next}**: it may alias the reader's reused buffer. Copy
 * whatever must outlive that (e.g. `payload.slice()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeFrame,
 *   FrameReader,
 *   FrameType,
 *   frameTypeName,
 * } from "@hakobu/hakobu";
 *
 * const bytes = new Uint8Array([
 *   ...encodeFrame(FrameType.READY, 0, new TextEncoder().encode("{}")),
 *   ...encodeFrame(FrameType.END, 0, new Uint8Array(32)),
 * ]);
 * const reader = new FrameReader(ReadableStream.from([bytes]));
 * const seen: string[] = [];
 * for (let f = await reader.next(); f; f = await reader.next()) {
 *   seen.push(`${frameTypeName(f.type)} ${f.payload.length}`);
 * }
 * assert.deepEqual(seen, ["READY 2", "END 32"]);
 * ```
 */
export class FrameReader {
  /** The stream read into buffers of the reader's own (a byte stream, as a socket's). */
  #byob: ReadableStreamBYOBReader | null = null;
  /** The stream's own chunks (any other stream). */
  #reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** Unread bytes are `#chunk[#pos..]`; with BYOB, `#chunk` is a view of `#stage`. */
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  /** BYOB: the reused buffer small frames and headers are read into. */
  #stage: ArrayBuffer | null = null;
  #eof = false;
  #header = new Uint8Array(HEADER_BYTES);
  #buffer: Uint8Array = EMPTY;
  #offset = 0;
  readonly #own: (type: number) => boolean;
  readonly #ownBuffer: (bytes: number) => Uint8Array;

  /**
   * Creates a reader of the frames in `readable`.
   *
   * A byte stream (`Deno.Conn.readable`, a child's stdout) is read into the
   * reader's own buffers (BYOB): a staging buffer of 64 KiB, reused, and a
   * large payload straight into its own buffer, so reading costs no
   * allocation per chunk and a large payload no copy.
   *
   * @param readable The byte stream; the reader takes its lock until {@link releaseLock}.
   * @param options `ownPayload(type)`: frames of the types it accepts get a
   *   payload in a buffer of their own, never reused, that the caller may
   *   keep or transfer to a Worker (default: none). `payloadBuffer(n)`:
   *   where such a payload of `n` bytes is read into, exactly `n` bytes
   *   long, a view of a buffer no one else uses (one given back by whoever
   *   took an earlier payload; default: a fresh one).
   */
  constructor(
    readable: ReadableStream<Uint8Array>,
    options: {
      ownPayload?: (type: number) => boolean;
      payloadBuffer?: (bytes: number) => Uint8Array;
    } = {},
  ) {
    try {
      this.#byob = readable.getReader({ mode: "byob" });
      this.#stage = new ArrayBuffer(STAGE_BYTES);
    } catch {
      this.#reader = readable.getReader();
    }
    this.#own = options.ownPayload ?? (() => false);
    this.#ownBuffer = options.payloadBuffer ?? ((n) => new Uint8Array(n));
  }

  /** Bytes of whole frames read so far (headers and payloads); the stream offset of the next frame. */
  get bytesRead(): number {
    return this.#offset;
  }

  /**
   * Reads the next frame.
   *
   * @returns The frame, or `null` at a clean end of stream (between frames).
   * @throws {WireError} on a bad header or checksum, or `"Truncated stream: ..."`
   *   when the stream ends inside a frame.
   */
  async next(): Promise<Frame | null> {
    const start = this.#offset;
    const got = (await this.#fill(this.#header)).filled;
    if (got === 0) return null;
    if (got < HEADER_BYTES) {
      throw new WireError(
        `Truncated stream: ended after ${got} of ${HEADER_BYTES} header bytes of the frame at offset ${start}`,
        start + got,
      );
    }
    const header = decodeFrameHeader(this.#header, start);
    const payload = await this.#payload(
      header.length,
      start,
      this.#own(header.type),
    );
    verifyFrameChecksum(this.#header, payload, start);
    this.#offset = start + HEADER_BYTES + header.length;
    return { ...header, payload };
  }

  /** Whether the stream has ended: the peer closed it (between frames, or inside one). */
  get ended(): boolean {
    return this.#eof;
  }

  /** Releases the stream's lock without cancelling it. */
  releaseLock(): void {
    (this.#byob ?? this.#reader)!.releaseLock();
  }

  /** Cancels the stream (the peer's writes then fail). */
  async cancel(reason?: unknown): Promise<void> {
    await (this.#byob ?? this.#reader)!.cancel(reason);
  }

  /** Reads `length` payload bytes: a view of the current chunk when it holds them all, else read into a buffer (reused unless `own`). */
  async #payload(
    length: number,
    start: number,
    own: boolean,
  ): Promise<Uint8Array> {
    if (length === 0) return own ? new Uint8Array(0) : EMPTY;
    const avail = this.#chunk.length - this.#pos;
    if (avail >= length && !own) {
      const view = this.#chunk.subarray(this.#pos, this.#pos + length);
      this.#pos += length;
      return view;
    }
    let out: Uint8Array;
    if (own) out = this.#ownBuffer(length);
    else {
      if (this.#buffer.length < length) this.#buffer = new Uint8Array(length);
      out = this.#buffer.subarray(0, length);
    }
    const { filled, into } = await this.#fill(out);
    // a BYOB read hands back the buffer it read into as a new object
    if (!own) this.#buffer = new Uint8Array(into.buffer);
    if (filled < length) {
      throw new WireError(
        `Truncated stream: ended after ${filled} of ${length} payload bytes of the frame at offset ${start}`,
        start + HEADER_BYTES + filled,
      );
    }
    return into;
  }

  /**
   * Fills `out` from the unread bytes, then the stream, until it is full or
   * the stream ends. With BYOB, `out` is read into directly when what is
   * missing is more than a staging buffer; its buffer is then transferred,
   * so the filled bytes are in `into` (same range, new buffer).
   */
  async #fill(out: Uint8Array): Promise<{ filled: number; into: Uint8Array }> {
    let filled = 0;
    let into = out;
    while (filled < into.length) {
      const unread = this.#chunk.length - this.#pos;
      if (unread > 0) {
        const n = Math.min(into.length - filled, unread);
        into.set(this.#chunk.subarray(this.#pos, this.#pos + n), filled);
        this.#pos += n;
        filled += n;
        continue;
      }
      if (this.#eof) break;
      if (this.#byob && into.length - filled > STAGE_BYTES) {
        // the read detaches `into`'s buffer: keep its range first
        const { byteOffset, length } = into;
        const { value, done } = await this.#byob.read(into.subarray(filled));
        if (value) into = new Uint8Array(value.buffer, byteOffset, length);
        if (done || !value) {
          this.#eof = true;
          break;
        }
        filled += value.length;
        continue;
      }
      await this.#refill();
    }
    return { filled, into };
  }

  /** Reads the stream's next bytes into `#chunk` (the stage, with BYOB). */
  async #refill(): Promise<void> {
    this.#pos = 0;
    this.#chunk = EMPTY;
    if (this.#byob) {
      const { value, done } = await this.#byob.read(
        new Uint8Array(this.#stage!),
      );
      if (value) this.#stage = value.buffer as ArrayBuffer;
      if (done || !value) this.#eof = true;
      else this.#chunk = value;
      return;
    }
    const { value, done } = await this.#reader!.read();
    if (done) this.#eof = true;
    else this.#chunk = value;
  }
}
