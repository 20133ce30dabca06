import { WireError } from "../errors.ts";
import {
  decodeFrameHeader,
  type Frame,
  HEADER_BYTES,
  verifyFrameChecksum,
} from "./frame.ts";

const EMPTY = new Uint8Array(0);

/**
 * Reads frames from a byte stream, such as `Deno.Conn.readable` or one end of
 * {@link memoryDuplex}. Checks every header (magic, flags, type, length bound)
 * before reading its payload and every CRC before returning a frame.
 *
 * Buffering is bounded: besides the chunk the stream handed over, the reader
 * holds one payload buffer that grows to the largest payload seen (never more
 * than the header's length, itself at most {@link MAX_PAYLOAD}) and is reused.
 *
 * **A returned frame's `payload` is valid only until the next call to
 * {@link FrameReader.next}**: it may alias the reader's reused buffer. Copy
 * whatever must outlive that (e.g. `payload.slice()`).
 *
 * @example
 * ```ts
 * const reader = new FrameReader(conn.readable);
 * for (let f = await reader.next(); f; f = await reader.next()) {
 *   console.log(frameTypeName(f.type), f.payload.length);
 * }
 * ```
 */
export class FrameReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  #eof = false;
  #header = new Uint8Array(HEADER_BYTES);
  #buffer: Uint8Array = EMPTY;
  #offset = 0;
  readonly #own: (type: number) => boolean;

  /**
   * Creates a reader of the frames in `readable`.
   *
   * @param readable The byte stream; the reader takes its lock until {@link releaseLock}.
   * @param options `ownPayload(type)`: frames of the types it accepts get a
   *   payload in a buffer of their own, never reused, that the caller may
   *   keep or transfer to a Worker (default: none).
   */
  constructor(
    readable: ReadableStream<Uint8Array>,
    options: { ownPayload?: (type: number) => boolean } = {},
  ) {
    this.#reader = readable.getReader();
    this.#own = options.ownPayload ?? (() => false);
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
    const got = await this.#fill(this.#header, 0);
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

  /** Releases the stream's lock without cancelling it. */
  releaseLock(): void {
    this.#reader.releaseLock();
  }

  /** Cancels the stream (the peer's writes then fail). */
  async cancel(reason?: unknown): Promise<void> {
    await this.#reader.cancel(reason);
  }

  /** Reads `length` payload bytes: a view of the current chunk when it holds them all, else a copy into the reused buffer. */
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
    if (own) out = new Uint8Array(length);
    else {
      if (this.#buffer.length < length) this.#buffer = new Uint8Array(length);
      out = this.#buffer.subarray(0, length);
    }
    const got = await this.#fill(out, 0);
    if (got < length) {
      throw new WireError(
        `Truncated stream: ended after ${got} of ${length} payload bytes of the frame at offset ${start}`,
        start + HEADER_BYTES + got,
      );
    }
    return out;
  }

  /** Copies stream bytes into `out[from..]` until it is full or the stream ends; returns bytes in `out`. */
  async #fill(out: Uint8Array, from: number): Promise<number> {
    let filled = from;
    while (filled < out.length) {
      if (this.#pos === this.#chunk.length) {
        if (this.#eof) break;
        const { value, done } = await this.#reader.read();
        if (done) {
          this.#eof = true;
          this.#chunk = EMPTY;
          this.#pos = 0;
          break;
        }
        this.#chunk = value;
        this.#pos = 0;
        continue;
      }
      const n = Math.min(out.length - filled, this.#chunk.length - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + n), filled);
      this.#pos += n;
      filled += n;
    }
    return filled;
  }
}
