/**
 * A whole libxc stream as data: {@link parseXenStream} splits it into the
 * header and records (PAGE_DATA parsed, the rest opaque),
 * {@link rebuildXenStream} writes it back byte for byte. The encoders beside
 * them build streams from parts (tests, the tunnel's receiver).
 *
 * @module
 */

import { concatBytes } from "../../bytes.ts";
import { XenStreamError } from "./errors.ts";
import {
  align8,
  DHDR_BYTES,
  IHDR_BYTES,
  IHDR_ID,
  IHDR_OPT_BIG_ENDIAN,
  pfnTypeHasData,
  RecType,
  RHDR_BYTES,
} from "./format.ts";
import { type ImageHeader, XenStreamParser } from "./parser.ts";

/** One PAGE_DATA entry. */
export interface PageEntry {
  /** Guest pfn (bits 51..0). */
  readonly pfn: number;
  /** Pfn type (bits 63..60). */
  readonly type: number;
}

/** A parsed PAGE_DATA record. */
export interface PageDataRecord {
  /** Discriminant. */
  readonly kind: "page_data";
  /** The reserved u32 after count (0 from libxc). */
  readonly reserved: number;
  /** The pfn list, in record order (pages follow only for data types). */
  readonly entries: readonly PageEntry[];
  /** One page per entry whose type carries data, in entry order. */
  readonly pages: readonly Uint8Array[];
}

/** Any other record, its body kept as bytes. */
export interface OpaqueRecord {
  /** Discriminant. */
  readonly kind: "opaque";
  /** Record type (bit 31: optional). */
  readonly type: number;
  /** The record body, without padding. */
  readonly body: Uint8Array;
}

/** A record of a {@link XenImage}. */
export type XenRecord = PageDataRecord | OpaqueRecord;

/** A whole libxc stream. The last record is END (an opaque record of type 0). */
export interface XenImage {
  /** The image and domain headers. */
  readonly header: ImageHeader;
  /** Every record in stream order, END last. */
  readonly records: readonly XenRecord[];
}

/**
 * Encodes the image header and domain header (40 bytes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DomainType, encodeImageHeader } from "@hakobu/hakobu";
 *
 * const header = encodeImageHeader({
 *   version: 3,
 *   options: 0,
 *   ihdrReserved: [0, 0],
 *   domainType: DomainType.X86_PVH,
 *   pageShift: 12,
 *   dhdrReserved: 0,
 *   xenMajor: 4,
 *   xenMinor: 17,
 * });
 * assert.equal(header.length, 24 + 16); // image header, then domain header
 * ```
 */
export function encodeImageHeader(h: ImageHeader): Uint8Array {
  const out = new Uint8Array(IHDR_BYTES + DHDR_BYTES);
  const v = new DataView(out.buffer);
  const le = (h.options & IHDR_OPT_BIG_ENDIAN) === 0;
  v.setBigUint64(0, 0xffff_ffff_ffff_ffffn);
  v.setUint32(8, IHDR_ID);
  v.setUint32(12, h.version);
  v.setUint16(16, h.options);
  v.setUint16(18, h.ihdrReserved[0]);
  v.setUint32(20, h.ihdrReserved[1]);
  v.setUint32(IHDR_BYTES, h.domainType, le);
  v.setUint16(IHDR_BYTES + 4, h.pageShift, le);
  v.setUint16(IHDR_BYTES + 6, h.dhdrReserved, le);
  v.setUint32(IHDR_BYTES + 8, h.xenMajor, le);
  v.setUint32(IHDR_BYTES + 12, h.xenMinor, le);
  return out;
}

/**
 * Encodes a record: header, body, zero padding to 8 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRecord, RecType } from "@hakobu/hakobu";
 *
 * assert.equal(encodeRecord(RecType.END, new Uint8Array(0)).length, 8);
 * // Bodies are padded to 8 bytes:
 * assert.equal(encodeRecord(RecType.VERIFY, new Uint8Array(3)).length, 8 + 8);
 * ```
 */
export function encodeRecord(
  type: number,
  body: Uint8Array,
  littleEndian = true,
): Uint8Array {
  const out = new Uint8Array(RHDR_BYTES + align8(body.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, type, littleEndian);
  v.setUint32(4, body.length, littleEndian);
  out.set(body, RHDR_BYTES);
  return out;
}

/**
 * Encodes a PAGE_DATA record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePageData } from "@hakobu/hakobu";
 *
 * const record = encodePageData({
 *   kind: "page_data",
 *   reserved: 0,
 *   entries: [{ pfn: 5, type: 0 }],
 *   pages: [new Uint8Array(4096)],
 * });
 * // record header, count and reserved, one pfn entry, one page
 * assert.equal(record.length, 8 + 8 + 8 + 4096);
 * ```
 * @throws {RangeError} when the pages do not match the entries' types.
 */
export function encodePageData(
  r: PageDataRecord,
  littleEndian = true,
  pageSize = 4096,
): Uint8Array {
  const n = r.entries.length;
  const data = r.entries.filter((e) => pfnTypeHasData(e.type)).length;
  if (data !== r.pages.length) {
    throw new RangeError(
      `Cannot encode PAGE_DATA: ${data} entries carry data but ${r.pages.length} pages were given`,
    );
  }
  const body = new Uint8Array(8 + 8 * n + data * pageSize);
  const v = new DataView(body.buffer);
  v.setUint32(0, n, littleEndian);
  v.setUint32(4, r.reserved, littleEndian);
  for (let i = 0; i < n; i++) {
    const { pfn, type } = r.entries[i];
    const hi =
      ((type & 0xf) << 28 | Math.floor(pfn / 0x1_0000_0000) & 0xfffff) >>> 0;
    const lo = pfn >>> 0;
    v.setUint32(8 + 8 * i + (littleEndian ? 0 : 4), lo, littleEndian);
    v.setUint32(8 + 8 * i + (littleEndian ? 4 : 0), hi, littleEndian);
  }
  let at = 8 + 8 * n;
  for (const p of r.pages) {
    if (p.length !== pageSize) {
      throw new RangeError(
        `Cannot encode PAGE_DATA: a page has ${p.length} bytes, expected ${pageSize}`,
      );
    }
    body.set(p, at);
    at += pageSize;
  }
  return encodeRecord(RecType.PAGE_DATA, body, littleEndian);
}

/**
 * Parses a whole libxc stream (image header first, END last, nothing after).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodePageData,
 *   encodeRecord,
 *   parseXenStream,
 *   RecType,
 * } from "@hakobu/hakobu";
 *
 * const bytes = new Uint8Array([
 *   ...encodeImageHeader({
 *     version: 3,
 *     options: 0,
 *     ihdrReserved: [0, 0],
 *     domainType: DomainType.X86_PVH,
 *     pageShift: 12,
 *     dhdrReserved: 0,
 *     xenMajor: 4,
 *     xenMinor: 17,
 *   }),
 *   ...encodePageData({
 *     kind: "page_data",
 *     reserved: 0,
 *     entries: [{ pfn: 5, type: 0 }],
 *     pages: [new Uint8Array(4096).fill(1)],
 *   }),
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 * ]);
 * const image = parseXenStream(bytes);
 * assert.equal(image.records.filter((r) => r.kind === "page_data").length, 1);
 * assert.equal(image.header.domainType, DomainType.X86_PVH);
 * ```
 * @throws {XenStreamError} with the offset of the first bad or missing byte.
 */
export function parseXenStream(bytes: Uint8Array): XenImage {
  const parser = new XenStreamParser();
  const records: XenRecord[] = [];
  let header: ImageHeader | null = null;
  for (const e of [...parser.push(bytes), ...parser.finish()]) {
    if (e.kind === "header") header = e.header;
    else if (e.kind === "pages") {
      const entries: PageEntry[] = [];
      const pages: Uint8Array[] = [];
      let at = e.headerLength;
      for (let i = 0; i < e.count; i++) {
        entries.push({ pfn: e.pfn[i], type: e.type[i] });
        if (pfnTypeHasData(e.type[i])) {
          pages.push(e.bytes.slice(at, at + e.pageSize));
          at += e.pageSize;
        }
      }
      const v = new DataView(e.bytes.buffer, e.bytes.byteOffset + 12, 4);
      records.push({
        kind: "page_data",
        reserved: v.getUint32(0, (header!.options & IHDR_OPT_BIG_ENDIAN) === 0),
        entries,
        pages,
      });
    } else if (e.kind === "record") {
      records.push({ kind: "opaque", type: e.type, body: e.body.slice() });
    } else if (e.kind === "end") {
      records.push({
        kind: "opaque",
        type: RecType.END,
        body: new Uint8Array(0),
      });
    }
  }
  if (!header) throw new XenStreamError("Empty stream: no image header", 0);
  return { header, records };
}

/**
 * Writes a {@link XenImage} back as stream bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodeRecord,
 *   parseXenStream,
 *   rebuildXenStream,
 *   RecType,
 * } from "@hakobu/hakobu";
 *
 * const bytes = new Uint8Array([
 *   ...encodeImageHeader({
 *     version: 3,
 *     options: 0,
 *     ihdrReserved: [0, 0],
 *     domainType: DomainType.X86_PVH,
 *     pageShift: 12,
 *     dhdrReserved: 0,
 *     xenMajor: 4,
 *     xenMinor: 17,
 *   }),
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 * ]);
 * assert.deepEqual(rebuildXenStream(parseXenStream(bytes)), bytes);
 * ```
 */
export function rebuildXenStream(image: XenImage): Uint8Array {
  const le = (image.header.options & IHDR_OPT_BIG_ENDIAN) === 0;
  const pageSize = 2 ** image.header.pageShift;
  const parts: Uint8Array[] = [encodeImageHeader(image.header)];
  for (const r of image.records) {
    parts.push(
      r.kind === "page_data"
        ? encodePageData(r, le, pageSize)
        : encodeRecord(r.type, r.body, le),
    );
  }
  return concatBytes(parts);
}
