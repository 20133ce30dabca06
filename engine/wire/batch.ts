/**
 * The BATCH payload (protocol 2): a batch of pages encoded by a codec chain,
 * one **section** per codec that claimed pages, so that a general
 * compressor (lz4, zstd) sees all of its pages at once and one FFI call
 * serves the batch, and a zero page costs about a bit.
 *
 * ```
 * fixed    u32 count          pages in the batch, 1..MAX_PAGES_PER_BATCH
 *          u16 sectionCount   1..MAX_BATCH_SECTIONS
 *          u16 reserved       0
 *          u32 runCount       pfn runs, 1..count
 *          u32 claimBytes     bytes of the claim map
 * sections sectionCount × (u8 codecId, u8 reserved 0, u16 reserved 0, u32 length, length bytes)
 * runs     runCount × (u32 startLo, u32 startHi, u32 length ≥ 1)
 * claims   (u8 section, ULEB128 run ≥ 1)…   page i belongs to a section
 * ```
 *
 * Page `i` of the batch has the `i`-th pfn of the runs; the runs are
 * strictly ascending and do not overlap, so a pfn appears once per batch.
 * The claim map, run-length encoded, gives each page's section (every
 * section at least one page); a section's codec decodes its pages in
 * batch order. Specification:
 * `docs/wire-format.md`.
 *
 * @module
 */

import { WireError } from "../errors.ts";
import { getU64, setU64 } from "../bytes.ts";

/** Bytes of the fixed part of a BATCH payload. */
export const BATCH_FIXED_BYTES = 16;

/** Bytes of a section header. */
export const SECTION_HEADER_BYTES = 8;

/** Bytes of one pfn run. */
export const RUN_BYTES = 12;

/** Most pages one BATCH may carry (64 MiB of 4 KiB pages). */
export const MAX_PAGES_PER_BATCH = 16384;

/** Most sections (codecs) one BATCH may carry. */
export const MAX_BATCH_SECTIONS = 16;

/** One section as the sender hands it to {@link encodeBatchPayload}. */
export interface BatchSection {
  /** Wire id of the codec. */
  readonly codecId: number;
  /** The codec's encoded bytes for its pages. */
  readonly bytes: Uint8Array;
}

/** What {@link encodeBatchPayload} writes. */
export interface BatchParts {
  /** Pages in the batch. */
  readonly count: number;
  /** pfn of each page, strictly ascending (`count` of them). */
  readonly pfns: ArrayLike<number>;
  /** Section index of each page (`count` of them). */
  readonly sectionOf: ArrayLike<number>;
  /** The sections, in the order their indexes refer to. */
  readonly sections: readonly BatchSection[];
}

/** Bytes {@link encodeBatchPayload} needs for `parts` (exact). */
export function batchPayloadBytes(parts: BatchParts): number {
  let n = BATCH_FIXED_BYTES;
  for (const s of parts.sections) n += SECTION_HEADER_BYTES + s.bytes.length;
  n += countRuns(parts.pfns, parts.count) * RUN_BYTES;
  n += claimMapBytes(parts.sectionOf, parts.count);
  return n;
}

/**
 * Writes a BATCH payload into `out` (at least {@link batchPayloadBytes}
 * bytes); returns the bytes written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { batchPayloadBytes, encodeBatchPayload } from "@hakobu/hakobu";
 *
 * // Pages 7 and 8, both zero pages: one section (codec 1, empty).
 * const parts = {
 *   count: 2,
 *   pfns: [7, 8],
 *   sectionOf: [0, 0],
 *   sections: [{ codecId: 1, bytes: new Uint8Array(0) }],
 * };
 * const out = new Uint8Array(batchPayloadBytes(parts));
 * // fixed part 16, one section header 8, one pfn run 12, claim map 2
 * assert.equal(encodeBatchPayload(parts, out), 16 + 8 + 12 + 2);
 * ```
 *
 * @throws {RangeError} on a count, pfn order, section index or size out of bounds.
 */
export function encodeBatchPayload(parts: BatchParts, out: Uint8Array): number {
  const { count, pfns, sectionOf, sections } = parts;
  if (!Number.isInteger(count) || count < 1 || count > MAX_PAGES_PER_BATCH) {
    throw new RangeError(
      `Cannot encode a batch of "${count}" pages: expected 1..${MAX_PAGES_PER_BATCH}`,
    );
  }
  if (sections.length < 1 || sections.length > MAX_BATCH_SECTIONS) {
    throw new RangeError(
      `Cannot encode a batch with "${sections.length}" sections: expected 1..${MAX_BATCH_SECTIONS}`,
    );
  }
  const need = batchPayloadBytes(parts);
  if (out.length < need) {
    throw new RangeError(
      `Cannot encode a ${need}-byte batch into ${out.length} bytes`,
    );
  }
  const v = new DataView(out.buffer, out.byteOffset, out.length);
  let at = BATCH_FIXED_BYTES;
  for (const s of sections) {
    if (!Number.isInteger(s.codecId) || s.codecId < 0 || s.codecId > 255) {
      throw new RangeError(
        `Cannot encode a section of codec id "${s.codecId}": expected 0..255`,
      );
    }
    v.setUint32(at, s.codecId, true); // codecId, reserved 0, reserved 0
    v.setUint32(at + 4, s.bytes.length, true);
    out.set(s.bytes, at + SECTION_HEADER_BYTES);
    at += SECTION_HEADER_BYTES + s.bytes.length;
  }
  // runs of consecutive pfns
  let runs = 0;
  let i = 0;
  while (i < count) {
    const start = pfns[i];
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new RangeError(`Cannot encode pfn "${start}" of page ${i}`);
    }
    let n = 1;
    while (i + n < count && pfns[i + n] === start + n) n++;
    if (i + n < count && !(pfns[i + n] > start + n - 1)) {
      throw new RangeError(
        `Cannot encode a batch whose pfns are not strictly ascending: ${
          pfns[i + n]
        } after ${start + n - 1}`,
      );
    }
    setU64(v, at, start);
    v.setUint32(at + 8, n, true);
    at += RUN_BYTES;
    runs++;
    i += n;
  }
  // claim map
  const claimStart = at;
  i = 0;
  while (i < count) {
    const s = sectionOf[i];
    if (!Number.isInteger(s) || s < 0 || s >= sections.length) {
      throw new RangeError(
        `Cannot encode page ${i}: section "${s}" is not one of the ${sections.length} sections`,
      );
    }
    let n = 1;
    while (i + n < count && sectionOf[i + n] === s) n++;
    out[at++] = s;
    at = writeUleb(out, at, n);
    i += n;
  }
  v.setUint32(0, count, true);
  v.setUint16(4, sections.length, true);
  v.setUint16(6, 0, true);
  v.setUint32(8, runs, true);
  v.setUint32(12, at - claimStart, true);
  return at;
}

/** A validated BATCH payload, as parallel arrays (reuse one across frames). */
export class ParsedBatch {
  /** Pages in the batch. */
  count = 0;
  /** pfn of each page. */
  pfns: Float64Array = new Float64Array(0);
  /** Section index of each page. */
  sectionOf: Uint8Array = new Uint8Array(0);
  /** Per section: codec id, where its bytes are in the payload, and its pages. */
  readonly sections: {
    codecId: number;
    offset: number;
    length: number;
    /** Page indexes of the section, ascending (`pageCount` of them). */
    pages: Uint32Array;
    pageCount: number;
  }[] = [];

  /** Makes room for `n` pages. */
  reserve(n: number): void {
    if (this.pfns.length >= n) return;
    this.pfns = new Float64Array(n);
    this.sectionOf = new Uint8Array(n);
  }
}

/** What {@link parseBatchPayload} checks a batch against. */
export interface ParseBatchOptions {
  /** Pages of memory; every pfn must be below. */
  readonly pageCount: number;
  /** Whether a codec id may be used (negotiated and announced). */
  readonly knows: (codecId: number) => boolean;
}

/**
 * Validates a whole BATCH payload before anything is decoded: bounds,
 * reserved fields, every section inside the payload and of a known codec
 * (each at most once), pfn runs inside memory, strictly ascending and
 * summing to `count`, a claim map covering exactly `count` pages with known
 * sections and every section with a page, no trailing bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   batchPayloadBytes,
 *   encodeBatchPayload,
 *   parseBatchPayload,
 *   WireError,
 * } from "@hakobu/hakobu";
 *
 * const parts = {
 *   count: 2,
 *   pfns: [7, 8],
 *   sectionOf: [0, 0],
 *   sections: [{ codecId: 1, bytes: new Uint8Array(0) }],
 * };
 * const payload = new Uint8Array(batchPayloadBytes(parts));
 * encodeBatchPayload(parts, payload);
 * const batch = parseBatchPayload(payload, {
 *   pageCount: 16,
 *   knows: (id) => id === 1,
 * });
 * assert.deepEqual([...batch.pfns.subarray(0, batch.count)], [7, 8]);
 * assert.equal(batch.sections[0].pageCount, 2);
 * // A pfn past the VM's memory is refused:
 * assert.throws(
 *   () => parseBatchPayload(payload, { pageCount: 8, knows: () => true }),
 *   WireError,
 * );
 * ```
 *
 * @throws {WireError} naming the first bad field and its payload offset.
 */
export function parseBatchPayload(
  payload: Uint8Array,
  options: ParseBatchOptions,
  out: ParsedBatch = new ParsedBatch(),
): ParsedBatch {
  const size = payload.length;
  const fail = (what: string, at: number): never => {
    throw new WireError(`Bad BATCH payload: ${what}`, at);
  };
  if (size < BATCH_FIXED_BYTES) {
    fail(
      `${size} bytes is shorter than its ${BATCH_FIXED_BYTES}-byte header`,
      0,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, size);
  const count = v.getUint32(0, true);
  const sectionCount = v.getUint16(4, true);
  const runCount = v.getUint32(8, true);
  const claimBytes = v.getUint32(12, true);
  if (count < 1 || count > MAX_PAGES_PER_BATCH) {
    fail(`count "${count}" is outside 1..${MAX_PAGES_PER_BATCH}`, 0);
  }
  if (sectionCount < 1 || sectionCount > MAX_BATCH_SECTIONS) {
    fail(
      `sectionCount "${sectionCount}" is outside 1..${MAX_BATCH_SECTIONS}`,
      4,
    );
  }
  if (v.getUint16(6, true) !== 0) {
    fail("reserved field at offset 6 must be 0", 6);
  }
  if (runCount < 1 || runCount > count) {
    fail(`runCount "${runCount}" is outside 1..${count}`, 8);
  }
  // sections
  out.sections.length = 0;
  let at = BATCH_FIXED_BYTES;
  const seen = new Set<number>();
  for (let s = 0; s < sectionCount; s++) {
    if (at + SECTION_HEADER_BYTES > size) {
      fail(
        `section ${s} header at offset ${at} runs past the ${size}-byte payload`,
        at,
      );
    }
    const codecId = payload[at];
    if (payload[at + 1] !== 0 || v.getUint16(at + 2, true) !== 0) {
      fail(
        `section ${s} reserved fields at offset ${at + 1} must be 0`,
        at + 1,
      );
    }
    if (!options.knows(codecId)) {
      fail(
        `section ${s} uses codec id "${codecId}", which is not negotiated and announced`,
        at,
      );
    }
    if (seen.has(codecId)) fail(`codec id "${codecId}" has two sections`, at);
    seen.add(codecId);
    const length = v.getUint32(at + 4, true);
    const body = at + SECTION_HEADER_BYTES;
    if (length > size - body) {
      fail(
        `section ${s} of ${length} bytes at offset ${at} runs past the ${size}-byte payload`,
        at + 4,
      );
    }
    out.sections.push({
      codecId,
      offset: body,
      length,
      pages: new Uint32Array(0),
      pageCount: 0,
    });
    at = body + length;
  }
  // runs
  if (runCount * RUN_BYTES > size - at) {
    fail(
      `${runCount} pfn runs at offset ${at} run past the ${size}-byte payload`,
      at,
    );
  }
  out.reserve(count);
  let n = 0;
  let next = 0; // smallest pfn the next run may start at
  for (let r = 0; r < runCount; r++, at += RUN_BYTES) {
    const start = getU64(v, at);
    const len = v.getUint32(at + 8, true);
    if (len < 1) fail(`pfn run ${r} at offset ${at} is empty`, at + 8);
    if (start < next) {
      fail(
        `pfn run ${r} at offset ${at} starts at ${start}, not above the previous run's end: pfns must be strictly ascending`,
        at,
      );
    }
    if (len > count - n) {
      fail(
        `pfn runs at offset ${at} cover more than the ${count} pages of the batch`,
        at + 8,
      );
    }
    if (start + len > options.pageCount) {
      fail(
        `pfn run ${r} at offset ${at} (${start}+${len}) is out of range: memory has ${options.pageCount} pages`,
        at,
      );
    }
    for (let k = 0; k < len; k++) out.pfns[n++] = start + k;
    next = start + len;
  }
  if (n !== count) {
    fail(`pfn runs cover ${n} pages, the batch has ${count}`, at);
  }
  // claim map
  if (claimBytes !== size - at) {
    fail(
      `claimBytes "${claimBytes}" does not match the ${
        size - at
      } bytes left at offset ${at}`,
      12,
    );
  }
  const perSection = new Uint32Array(sectionCount);
  let i = 0;
  let p = at;
  while (p < size) {
    const s = payload[p++];
    if (s >= sectionCount) {
      fail(
        `claim at offset ${p - 1} names section ${s} of ${sectionCount}`,
        p - 1,
      );
    }
    let len = 0;
    let shift = 0;
    for (let k = 0;; k++) {
      if (p >= size || k >= 5) {
        fail(`claim run length at offset ${p} is truncated or too long`, p);
      }
      const b = payload[p++];
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
    }
    if (len < 1 || len > count - i) {
      fail(
        `claim run of "${len}" pages at offset ${p} is empty or past the ${count} pages`,
        p,
      );
    }
    out.sectionOf.fill(s, i, i + len);
    perSection[s] += len;
    i += len;
  }
  if (i !== count) {
    fail(`the claim map covers ${i} pages, the batch has ${count}`, at);
  }
  for (let s = 0; s < sectionCount; s++) {
    const sec = out.sections[s];
    if (perSection[s] === 0) {
      // a sender writes a section only for a codec that claimed pages; an
      // empty one would still reach its decoder (and a stream's state)
      fail(
        `section ${s} (codec id "${sec.codecId}") holds no page`,
        sec.offset - SECTION_HEADER_BYTES,
      );
    }
    sec.pages = new Uint32Array(perSection[s]);
    sec.pageCount = 0;
  }
  for (let k = 0; k < count; k++) {
    const sec = out.sections[out.sectionOf[k]];
    sec.pages[sec.pageCount++] = k;
  }
  out.count = count;
  return out;
}

function countRuns(pfns: ArrayLike<number>, count: number): number {
  let runs = 0;
  for (let i = 0; i < count; i++) {
    if (i === 0 || pfns[i] !== pfns[i - 1] + 1) runs++;
  }
  return runs;
}

function claimMapBytes(sectionOf: ArrayLike<number>, count: number): number {
  let bytes = 0;
  let i = 0;
  while (i < count) {
    let n = 1;
    while (i + n < count && sectionOf[i + n] === sectionOf[i]) n++;
    bytes += 1 + ulebSize(n);
    i += n;
  }
  return bytes;
}

function ulebSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    s++;
  }
  return s;
}

function writeUleb(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  out[at++] = n;
  return at;
}
