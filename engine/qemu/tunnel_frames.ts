/**
 * The frames the QEMU tunnel adds to hakobu's wire protocol (types 32 and
 * up, never clashing with core types 1–11), with one encoder and one decoder
 * each, plus a frame reader that accepts them. Specification:
 * `docs/qemu-stream.md`.
 *
 * The header is the core 16-byte frame header (`engine/wire/frame.ts`):
 * magic "HK", type, flags 0, round, length, CRC-32. The core
 * `encodeFrameHeader`/`decodeFrameHeader` reject types they do not know, so
 * this file keeps a local encoder and reader until the core accepts the
 * tunnel types.
 *
 * @module
 */

import { WireError } from "../errors.ts";
import {
  encodeFrame,
  type Frame,
  FrameType,
  frameTypeName,
} from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";

/**
 * The tunnel's frame types.
 *
 * @example
 * ```ts
 * TunnelFrameType.QEMU_RECORDS; // 32
 * ```
 */
export const TunnelFrameType = {
  /** See {@link FrameType.QEMU_RECORDS}. */
  QEMU_RECORDS: FrameType.QEMU_RECORDS,
  /** See {@link FrameType.QEMU_END}. */
  QEMU_END: FrameType.QEMU_END,
} as const;

/** Record kinds inside a QEMU_RECORDS payload. */
export const RecordKind = {
  /** `u16 headerLength, header`; the body is the next entry of the PAGES frame. */
  PAGE: 0,
  /** `u16 headerLength, header, u8 fill`. */
  ZERO: 1,
  /** `u32 length, bytes`: bytes of the QEMU stream as they are. */
  OPAQUE: 2,
} as const;

/** Bytes before the first record of a QEMU_RECORDS payload. */
export const RECORDS_HEADER_BYTES = 8;
/** Most records one QEMU_RECORDS payload may carry. */
export const MAX_RECORDS = 1 << 20;
/** Shortest and longest RAM record header: `be64` alone, or with `u8 len + 255` idstr bytes. */
export const MIN_RECORD_HEADER = 8;
/** Longest RAM record header. */
export const MAX_RECORD_HEADER = 8 + 1 + 255;
/** Bytes of a QEMU_END payload. */
export const QEMU_END_BYTES = 48;

const TWO_32 = 0x1_0000_0000;

/**
 * Encodes a whole frame of any core or tunnel type (header + payload): the
 * wire layer's {@link encodeFrame}, which knows the stream-mode types.
 *
 * @example
 * ```ts
 * encodeTunnelFrame(TunnelFrameType.QEMU_END, 0, encodeQemuEnd(end));
 * ```
 */
export function encodeTunnelFrame(
  type: number,
  round: number,
  payload: Uint8Array,
): Uint8Array {
  return encodeFrame(type as FrameType, round, payload);
}

/** A frame read by {@link TunnelFrameReader}. */
export type TunnelFrame = Frame;

/** Reads core and tunnel frames: the wire layer's {@link FrameReader}. */
export class TunnelFrameReader extends FrameReader {}

/**
 * Builds QEMU_RECORDS payloads in one growing buffer.
 *
 * @example
 * ```ts
 * const b = new RecordsBuilder();
 * b.opaque(bytes);
 * b.page(header);
 * const payload = b.payload();
 * ```
 */
export class RecordsBuilder {
  #buf = new Uint8Array(64 * 1024);
  #view = new DataView(this.#buf.buffer);
  #end = RECORDS_HEADER_BYTES;
  #count = 0;
  #pages = 0;
  #openOpaque = -1;

  /** Records so far. */
  get count(): number {
    return this.#count;
  }
  /** PAGE records so far (entries the PAGES frame must carry). */
  get pages(): number {
    return this.#pages;
  }
  /** Payload bytes so far. */
  get byteLength(): number {
    return this.#end;
  }

  /** Appends opaque bytes, merged into the previous record when that is opaque too. */
  opaque(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.#openOpaque >= 0) {
      this.#room(bytes.length);
      this.#buf.set(bytes, this.#end);
      this.#end += bytes.length;
      const len = this.#view.getUint32(this.#openOpaque, true);
      this.#view.setUint32(this.#openOpaque, len + bytes.length, true);
      return;
    }
    this.#room(5 + bytes.length);
    this.#buf[this.#end] = RecordKind.OPAQUE;
    this.#openOpaque = this.#end + 1;
    this.#view.setUint32(this.#end + 1, bytes.length, true);
    this.#buf.set(bytes, this.#end + 5);
    this.#end += 5 + bytes.length;
    this.#count++;
  }

  /** Appends a PAGE record's header. */
  page(header: Uint8Array): void {
    this.#header(RecordKind.PAGE, header, 0);
    this.#pages++;
  }

  /** Appends a ZERO record. */
  zero(header: Uint8Array, fill: number): void {
    this.#header(RecordKind.ZERO, header, 1);
    this.#buf[this.#end - 1] = fill;
  }

  /** The payload so far (a view). */
  payload(): Uint8Array {
    this.#view.setUint32(0, this.#count, true);
    this.#view.setUint32(4, this.#pages, true);
    return this.#buf.subarray(0, this.#end);
  }

  /** Empties the builder. */
  reset(): void {
    this.#end = RECORDS_HEADER_BYTES;
    this.#count = 0;
    this.#pages = 0;
    this.#openOpaque = -1;
  }

  #header(kind: number, header: Uint8Array, extra: number): void {
    if (
      header.length < MIN_RECORD_HEADER || header.length > MAX_RECORD_HEADER
    ) {
      throw new RangeError(`Bad RAM record header of ${header.length} bytes`);
    }
    this.#room(3 + header.length + extra);
    this.#buf[this.#end] = kind;
    this.#view.setUint16(this.#end + 1, header.length, true);
    this.#buf.set(header, this.#end + 3);
    this.#end += 3 + header.length + extra;
    this.#count++;
    this.#openOpaque = -1;
  }

  #room(n: number): void {
    if (this.#end + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#end + n));
    next.set(this.#buf.subarray(0, this.#end));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}

/** The validated records of a QEMU_RECORDS payload, as parallel arrays. */
export interface ParsedRecords {
  readonly count: number;
  /** PAGE records: the PAGES frame that follows must have exactly this many entries. */
  readonly pages: number;
  /** Kind of each record. */
  readonly kind: Uint8Array;
  /** Payload offset of each record's header or opaque bytes. */
  readonly offset: Uint32Array;
  /** Length of each record's header or opaque bytes. */
  readonly length: Uint32Array;
  /** QEMU stream bytes the records rebuild to. */
  readonly streamBytes: number;
}

/**
 * Validates a whole QEMU_RECORDS payload: counts, kinds, every length inside
 * the payload, header lengths in 8..264, no trailing bytes.
 *
 * @example
 * ```ts
 * const r = parseRecords(payload);
 * r.pages; // entries of the PAGES frame that follows
 * ```
 * @throws {WireError} with the payload offset of the first bad field.
 */
export function parseRecords(payload: Uint8Array): ParsedRecords {
  const size = payload.length;
  if (size < RECORDS_HEADER_BYTES) {
    throw new WireError(
      `Bad QEMU_RECORDS payload: ${size} bytes is shorter than its ${RECORDS_HEADER_BYTES}-byte header`,
      0,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, size);
  const count = v.getUint32(0, true);
  const pages = v.getUint32(4, true);
  if (count > MAX_RECORDS || count * 3 > size || pages > count) {
    throw new WireError(
      `Bad QEMU_RECORDS payload: ${count} records with ${pages} pages do not fit ${size} bytes`,
      0,
    );
  }
  const kind = new Uint8Array(count);
  const offset = new Uint32Array(count);
  const length = new Uint32Array(count);
  let at = RECORDS_HEADER_BYTES;
  let seenPages = 0;
  let streamBytes = 0;
  for (let i = 0; i < count; i++) {
    if (at + 1 > size) {
      throw new WireError(
        `Bad QEMU_RECORDS record ${i} at offset ${at}: runs past the payload`,
        at,
      );
    }
    const k = payload[at];
    if (k === RecordKind.OPAQUE) {
      if (at + 5 > size) {
        throw new WireError(
          `Bad QEMU_RECORDS record ${i} at offset ${at}: runs past the payload`,
          at,
        );
      }
      const len = v.getUint32(at + 1, true);
      if (len === 0 || at + 5 + len > size) {
        throw new WireError(
          `Bad QEMU_RECORDS record ${i} at offset ${at}: opaque length "${len}" runs past the ${size}-byte payload`,
          at + 1,
        );
      }
      offset[i] = at + 5;
      length[i] = len;
      at += 5 + len;
      streamBytes += len;
    } else if (k === RecordKind.PAGE || k === RecordKind.ZERO) {
      if (at + 3 > size) {
        throw new WireError(
          `Bad QEMU_RECORDS record ${i} at offset ${at}: runs past the payload`,
          at,
        );
      }
      const len = v.getUint16(at + 1, true);
      const extra = k === RecordKind.ZERO ? 1 : 0;
      if (
        len < MIN_RECORD_HEADER || len > MAX_RECORD_HEADER ||
        at + 3 + len + extra > size
      ) {
        throw new WireError(
          `Bad QEMU_RECORDS record ${i} at offset ${at}: header length "${len}" must be in ${MIN_RECORD_HEADER}..${MAX_RECORD_HEADER} and inside the payload`,
          at + 1,
        );
      }
      offset[i] = at + 3;
      length[i] = len;
      at += 3 + len + extra;
      streamBytes += len + (k === RecordKind.ZERO ? 1 : 4096);
      if (k === RecordKind.PAGE) seenPages++;
    } else {
      throw new WireError(
        `Bad QEMU_RECORDS record ${i} at offset ${at}: unknown kind "${k}"`,
        at,
      );
    }
    kind[i] = k;
  }
  if (at !== size || seenPages !== pages) {
    throw new WireError(
      `Bad QEMU_RECORDS payload: ${
        size - at
      } trailing bytes, ${seenPages} PAGE records where the header says ${pages}`,
      at,
    );
  }
  return { count, pages, kind, offset, length, streamBytes };
}

/** QEMU_END: what the receiver checks the rebuilt stream against. */
export interface QemuEnd {
  /** Bytes of the QEMU stream. */
  readonly streamBytes: number;
  /** PAGE and ZERO records the sender parsed. */
  readonly records: number;
  /** SHA-256 of the whole QEMU stream (32 bytes). */
  readonly sha256: Uint8Array;
}

/**
 * Encodes a QEMU_END payload: `u64 streamBytes, u64 records, 32-byte SHA-256` (little-endian).
 *
 * @example
 * ```ts
 * encodeQemuEnd({ streamBytes: 10, records: 0, sha256: new Uint8Array(32) }).length; // 48
 * ```
 */
export function encodeQemuEnd(end: QemuEnd): Uint8Array {
  if (end.sha256.length !== 32) {
    throw new RangeError(
      `QEMU_END digest must be 32 bytes, got ${end.sha256.length}`,
    );
  }
  const out = new Uint8Array(QEMU_END_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, end.streamBytes % TWO_32, true);
  v.setUint32(4, Math.floor(end.streamBytes / TWO_32), true);
  v.setUint32(8, end.records % TWO_32, true);
  v.setUint32(12, Math.floor(end.records / TWO_32), true);
  out.set(end.sha256, 16);
  return out;
}

/**
 * Decodes a QEMU_END payload.
 *
 * @example
 * ```ts
 * decodeQemuEnd(encodeQemuEnd(end)).streamBytes;
 * ```
 * @throws {WireError} when the payload is not 48 bytes.
 */
export function decodeQemuEnd(payload: Uint8Array): QemuEnd {
  if (payload.length !== QEMU_END_BYTES) {
    throw new WireError(
      `Cannot decode QEMU_END: payload of ${payload.length} bytes, expected ${QEMU_END_BYTES}`,
      0,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  return {
    streamBytes: v.getUint32(4, true) * TWO_32 + v.getUint32(0, true),
    records: v.getUint32(12, true) * TWO_32 + v.getUint32(8, true),
    sha256: payload.slice(16, 48),
  };
}

/** Name of a core or tunnel frame type. */
export function tunnelFrameTypeName(type: number): string {
  return frameTypeName(type);
}

export { FrameType };
