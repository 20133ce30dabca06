/**
 * The PAGES payload: a batch of encoded pages. The sender builds it in one
 * preallocated buffer ({@link PagesFrameBuilder}); the receiver validates
 * every entry header of a payload before it applies any page
 * ({@link parsePagesPayload}).
 *
 * ```
 * payload = u32 count, u32 reserved(0), count × entry
 * entry   = u32 pfnLo, u32 pfnHi, u8 codecId, u8 flags(0), u16 reserved(0), u32 length, length bytes
 * ```
 *
 * @module
 */

import type { Codec } from "../codecs/codec.ts";
import { WireError } from "../errors.ts";
import {
  encodeFrameHeader,
  FrameType,
  HEADER_BYTES,
  MAX_PAYLOAD,
} from "./frame.ts";

/** Bytes before the first entry of a PAGES payload. */
export const PAGES_HEADER_BYTES = 8;

/** Bytes of one entry header. */
export const ENTRY_HEADER_BYTES = 16;

/** Most entries one PAGES payload may carry. */
export const MAX_PAGES_PER_FRAME = 65536;

const TWO_32 = 0x1_0000_0000;

/** Options of {@link PagesFrameBuilder}. */
export interface PagesFrameBuilderOptions {
  /** Most entries per frame (1..65536). */
  readonly maxPages: number;
  /**
   * Worst-case encoded bytes of one entry: the largest
   * `codec.maxEncodedBytes(pageSize)` of the codecs the sender may use.
   */
  readonly maxEntryBytes: number;
}

/**
 * Builds PAGES frames for the sender in one buffer allocated up front, with
 * room for the 16-byte frame header in front, so a finished frame goes to
 * the socket without a copy. Every entry slot has worst-case size, so the
 * builder is full exactly when `count === maxPages`.
 *
 * Two ways to add an entry: {@link add} copies encoded bytes in; or
 * {@link entrySpace} + {@link commitEntry} let the codec encode straight into
 * the frame.
 *
 * @example
 * ```ts
 * const b = new PagesFrameBuilder({ maxPages: 256, maxEntryBytes: 4096 });
 * const n = encoder.encode(pfn, page, b.entrySpace());
 * b.commitEntry(pfn, raw.id, n);
 * await writer.writeRaw(b.frame(round));
 * b.reset();
 * ```
 */
export class PagesFrameBuilder {
  /** Most entries per frame. */
  readonly maxPages: number;
  /** Worst-case encoded bytes of one entry. */
  readonly maxEntryBytes: number;
  #buf: Uint8Array;
  #view: DataView;
  #end = HEADER_BYTES + PAGES_HEADER_BYTES;
  #count = 0;

  /**
   * Creates a builder with a buffer for the worst-case frame.
   *
   * @param options Entries per frame and worst-case entry size.
   * @throws {RangeError} when the worst-case frame would exceed {@link MAX_PAYLOAD}.
   */
  constructor(options: PagesFrameBuilderOptions) {
    const { maxPages, maxEntryBytes } = options;
    if (
      !Number.isInteger(maxPages) || maxPages < 1 ||
      maxPages > MAX_PAGES_PER_FRAME
    ) {
      throw new RangeError(
        `Bad maxPages "${maxPages}": expected an integer in 1..${MAX_PAGES_PER_FRAME}`,
      );
    }
    if (!Number.isInteger(maxEntryBytes) || maxEntryBytes < 0) {
      throw new RangeError(
        `Bad maxEntryBytes "${maxEntryBytes}": expected a non-negative integer`,
      );
    }
    const payload = PAGES_HEADER_BYTES +
      maxPages * (ENTRY_HEADER_BYTES + maxEntryBytes);
    if (payload > MAX_PAYLOAD) {
      throw new RangeError(
        `Bad maxPages "${maxPages}": ${maxPages} entries of up to ${maxEntryBytes} bytes need ${payload} bytes, ` +
          `over the ${MAX_PAYLOAD}-byte frame limit; at most ${
            Math.floor(
              (MAX_PAYLOAD - PAGES_HEADER_BYTES) /
                (ENTRY_HEADER_BYTES + maxEntryBytes),
            )
          } fit`,
      );
    }
    this.maxPages = maxPages;
    this.maxEntryBytes = maxEntryBytes;
    this.#buf = new Uint8Array(HEADER_BYTES + payload);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Entries added since the last {@link reset}. */
  get count(): number {
    return this.#count;
  }

  /** Whether no more entries fit. */
  get full(): boolean {
    return this.#count >= this.maxPages;
  }

  /** Payload bytes so far (without the 16-byte frame header). */
  get byteLength(): number {
    return this.#end - HEADER_BYTES;
  }

  /** Empties the builder; earlier `payload()`/`frame()` views then see new bytes. */
  reset(): void {
    this.#end = HEADER_BYTES + PAGES_HEADER_BYTES;
    this.#count = 0;
  }

  /**
   * Where the next entry's encoded bytes go: a view of `maxEntryBytes` bytes
   * inside the frame. Pass it as a codec's `out`, then call
   * {@link commitEntry}. Valid until the next add/commit/reset.
   *
   * @throws {RangeError} when the builder is full.
   */
  entrySpace(): Uint8Array {
    this.#checkRoom();
    const at = this.#end + ENTRY_HEADER_BYTES;
    return this.#buf.subarray(at, at + this.maxEntryBytes);
  }

  /**
   * Appends an entry whose `length` encoded bytes were written into
   * {@link entrySpace}.
   *
   * @throws {RangeError} on a bad pfn, codec id or length, or when full.
   */
  commitEntry(pfn: number, codecId: number, length: number): void {
    this.#checkRoom();
    if (!Number.isInteger(pfn) || pfn < 0 || pfn > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(
        `Cannot add page "${pfn}": pfn must be a non-negative safe integer`,
      );
    }
    if (!Number.isInteger(codecId) || codecId < 0 || codecId > 255) {
      throw new RangeError(
        `Cannot add page ${pfn}: codec id "${codecId}" must be in 0..255`,
      );
    }
    if (
      !Number.isInteger(length) || length < 0 || length > this.maxEntryBytes
    ) {
      throw new RangeError(
        `Cannot add page ${pfn}: encoded length "${length}" must be in 0..${this.maxEntryBytes}`,
      );
    }
    const v = this.#view;
    const at = this.#end;
    v.setUint32(at, pfn % TWO_32, true);
    v.setUint32(at + 4, Math.floor(pfn / TWO_32), true);
    v.setUint32(at + 8, codecId, true); // codecId, flags 0, reserved 0
    v.setUint32(at + 12, length, true);
    this.#end = at + ENTRY_HEADER_BYTES + length;
    this.#count++;
  }

  /**
   * Appends an entry by copying `encoded` (or its first `length` bytes).
   *
   * @example
   * ```ts
   * b.add(7, zero.id, new Uint8Array(0));
   * ```
   * @throws {RangeError} on a bad pfn, codec id or length, or when full.
   */
  add(
    pfn: number,
    codecId: number,
    encoded: Uint8Array,
    length: number = encoded.length,
  ): void {
    if (length > encoded.length) {
      throw new RangeError(
        `Cannot add page ${pfn}: length ${length} is over the ${encoded.length}-byte buffer`,
      );
    }
    const space = this.entrySpace();
    if (length > space.length) {
      throw new RangeError(
        `Cannot add page ${pfn}: encoded length "${length}" must be in 0..${this.maxEntryBytes}`,
      );
    }
    space.set(
      length === encoded.length ? encoded : encoded.subarray(0, length),
    );
    this.commitEntry(pfn, codecId, length);
  }

  /** The PAGES payload so far: a view into the builder's buffer, no copy. */
  payload(): Uint8Array {
    this.#view.setUint32(HEADER_BYTES, this.#count, true);
    this.#view.setUint32(HEADER_BYTES + 4, 0, true);
    return this.#buf.subarray(HEADER_BYTES, this.#end);
  }

  /**
   * The whole PAGES frame (header + payload) for `round`: the header is
   * written in place in front of the payload; a view, no copy. Send it with
   * {@link FrameWriter.writeRaw} and wait for the write before {@link reset}.
   */
  frame(round: number): Uint8Array {
    const payload = this.payload();
    encodeFrameHeader(FrameType.PAGES, round, payload, this.#buf);
    return this.#buf.subarray(0, this.#end);
  }

  #checkRoom(): void {
    if (this.#count >= this.maxPages) {
      throw new RangeError(
        `Cannot add a page: the frame is full (${this.maxPages} entries)`,
      );
    }
  }
}

/**
 * The validated entries of one PAGES payload, as parallel arrays (no object
 * per page). Reuse one across frames: {@link parsePagesPayload} grows it as
 * needed.
 */
export class PageEntries {
  /** Entries of the last parsed payload. */
  count = 0;
  /** Page frame numbers. */
  pfn: Float64Array;
  /** Codec ids. */
  codecId: Uint8Array;
  /** Offset of each entry's encoded bytes in the payload. */
  offset: Uint32Array;
  /** Encoded bytes of each entry. */
  length: Uint32Array;

  /**
   * Creates empty columns with room for `capacity` entries.
   *
   * @param capacity Initial room, in entries.
   */
  constructor(capacity = 1024) {
    this.pfn = new Float64Array(capacity);
    this.codecId = new Uint8Array(capacity);
    this.offset = new Uint32Array(capacity);
    this.length = new Uint32Array(capacity);
  }

  /** Makes room for `n` entries (keeps nothing). */
  reserve(n: number): void {
    if (this.pfn.length >= n) return;
    this.pfn = new Float64Array(n);
    this.codecId = new Uint8Array(n);
    this.offset = new Uint32Array(n);
    this.length = new Uint32Array(n);
  }
}

/** What {@link parsePagesPayload} checks entries against. */
export interface ParsePagesOptions {
  /** Pages of the VM's memory; every pfn must be below. */
  readonly pageCount: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** The negotiated codecs, by wire id. */
  readonly codecs: ReadonlyMap<number, Codec>;
}

/**
 * Validates a whole PAGES payload before anything is applied: count bound,
 * reserved fields, every entry header and body inside the payload, no
 * trailing bytes, pfn below `pageCount`, codec id negotiated, length at most
 * the codec's `maxEncodedBytes(pageSize)`.
 *
 * @example
 * ```ts
 * const entries = parsePagesPayload(frame.payload, { pageCount, pageSize: 4096, codecs });
 * for (let i = 0; i < entries.count; i++) {
 *   const body = frame.payload.subarray(entries.offset[i], entries.offset[i] + entries.length[i]);
 * }
 * ```
 *
 * @param payload The PAGES payload.
 * @param options Memory geometry and negotiated codecs.
 * @param out Entries object to reuse; a new one when omitted.
 * @throws {WireError} with the payload offset of the first bad field.
 */
export function parsePagesPayload(
  payload: Uint8Array,
  options: ParsePagesOptions,
  out: PageEntries = new PageEntries(0),
): PageEntries {
  const { pageCount, pageSize, codecs } = options;
  const size = payload.length;
  out.count = 0;
  if (size < PAGES_HEADER_BYTES) {
    throw new WireError(
      `Bad PAGES payload: ${size} bytes is shorter than its ${PAGES_HEADER_BYTES}-byte header`,
      0,
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, size);
  const count = view.getUint32(0, true);
  if (count > MAX_PAGES_PER_FRAME) {
    throw new WireError(
      `Bad PAGES payload: count "${count}" is over the limit of ${MAX_PAGES_PER_FRAME} entries`,
      0,
    );
  }
  if (view.getUint32(4, true) !== 0) {
    throw new WireError(
      `Bad PAGES payload: reserved field at offset 4 must be 0`,
      4,
    );
  }
  // Fail on an impossible count before reserving room for it.
  if (count * ENTRY_HEADER_BYTES > size - PAGES_HEADER_BYTES) {
    throw new WireError(
      `Bad PAGES payload: count "${count}" needs at least ${
        PAGES_HEADER_BYTES + count * ENTRY_HEADER_BYTES
      } bytes, the payload has ${size}`,
      0,
    );
  }
  const maxLen = new Int32Array(256).fill(-1);
  for (const [id, codec] of codecs) {
    maxLen[id] = codec.maxEncodedBytes(pageSize);
  }
  out.reserve(count);
  let at = PAGES_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (at + ENTRY_HEADER_BYTES > size) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: its header runs past the ${size}-byte payload`,
        at,
      );
    }
    const pfn = view.getUint32(at + 4, true) * TWO_32 +
      view.getUint32(at, true);
    const codecId = view.getUint8(at + 8);
    const flags = view.getUint8(at + 9);
    const reserved = view.getUint16(at + 10, true);
    const length = view.getUint32(at + 12, true);
    if (flags !== 0 || reserved !== 0) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: flags "${flags}" and reserved "${reserved}" must be 0`,
        at + 9,
      );
    }
    if (pfn >= pageCount) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: pfn "${pfn}" is out of range, memory has ${pageCount} pages`,
        at,
      );
    }
    const max = maxLen[codecId];
    if (max < 0) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: codec id "${codecId}" was not negotiated in HELLO`,
        at + 8,
      );
    }
    if (length > max) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: length "${length}" is over the ${max}-byte maximum of codec "${
          codecs.get(codecId)!.name
        }"`,
        at + 12,
      );
    }
    const body = at + ENTRY_HEADER_BYTES;
    if (body + length > size) {
      throw new WireError(
        `Bad PAGES entry ${i} at offset ${at}: ${length} bytes of data run past the ${size}-byte payload`,
        body,
      );
    }
    out.pfn[i] = pfn;
    out.codecId[i] = codecId;
    out.offset[i] = body;
    out.length[i] = length;
    at = body + length;
  }
  if (at !== size) {
    throw new WireError(
      `Bad PAGES payload: ${
        size - at
      } trailing bytes after ${count} entries at offset ${at}`,
      at,
    );
  }
  out.count = count;
  return out;
}
