/**
 * The memory digest both sides of a migration compare at the end: one
 * SHA-256 per range of {@link DIGEST_RANGE_BYTES} (the last range may be
 * shorter), so that ranges hash in parallel on the channel Workers and a
 * mismatch names the pages that differ; the whole digest is the SHA-256 of
 * the range digests one after the other. Anyone can check a range against
 * `sha256sum` of that slice of a dumped image.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Bytes per digest range: 64 MiB. */
export const DIGEST_RANGE_BYTES: number = 64 * 1024 * 1024;

/** Bytes hashed per update call; keeps each call short enough to stay responsive. */
const CHUNK = 16 << 20;

/** A memory digest: the range digests and the range size. */
export interface MemoryDigest {
  /** Bytes per range. */
  readonly rangeBytes: number;
  /** SHA-256 of each range, 32 bytes each, in memory order. */
  readonly ranges: Uint8Array;
}

/**
 * Ranges of `rangeBytes` that cover `memoryBytes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, rangeCount } from "@hakobu/hakobu";
 *
 * assert.equal(rangeCount(MiB(100), MiB(64)), 2); // the last range is shorter
 * ```
 */
export function rangeCount(memoryBytes: number, rangeBytes: number): number {
  return Math.max(1, Math.ceil(memoryBytes / rangeBytes));
}

/**
 * Which pages are known to be all zero: byte `i` of `touched` is 0 only if
 * page `i` holds zeros (a receiver's map of pages written with non-zero
 * bytes). A range of such pages needs no reading.
 */
export interface ZeroPageMap {
  /** One byte per page; 0 means the page is all zero. */
  readonly touched: Uint8Array;
  /** Bytes per page. */
  readonly pageSize: number;
}

/**
 * SHA-256 of ranges `[from, to)` of `memory`, 32 bytes each. With `zeros`,
 * a range whose pages are all untouched gets the digest of zeros of its
 * length without being read, so verifying costs what was written, not the
 * memory's size (a session that announces 16 GiB and sends nothing hashes
 * nothing).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rangeDigests } from "@hakobu/hakobu";
 *
 * const memory = new Uint8Array(8192);
 * assert.equal(rangeDigests(memory, 4096, 0, 2).length, 64); // 2 × 32 bytes
 * ```
 */
export function rangeDigests(
  memory: Uint8Array,
  rangeBytes: number,
  from: number,
  to: number,
  zeros?: ZeroPageMap,
): Uint8Array {
  const out = new Uint8Array((to - from) * 32);
  for (let r = from; r < to; r++) {
    const start = r * rangeBytes;
    const end = Math.min(memory.length, start + rangeBytes);
    const digest = zeros && untouched(zeros, start, end)
      ? zeroDigest(end - start)
      : createHash("sha256").update(memory.subarray(start, end)).digest();
    out.set(digest, (r - from) * 32);
  }
  return out;
}

function untouched(zeros: ZeroPageMap, start: number, end: number): boolean {
  const { touched, pageSize } = zeros;
  const last = Math.ceil(end / pageSize);
  for (let p = Math.floor(start / pageSize); p < last; p++) {
    if (touched[p] !== 0) return false;
  }
  return true;
}

const zeroDigests = new Map<number, Uint8Array>();

/** SHA-256 of `bytes` zeros, computed once per length. */
function zeroDigest(bytes: number): Uint8Array {
  let d = zeroDigests.get(bytes);
  if (!d) {
    d = new Uint8Array(
      createHash("sha256").update(new Uint8Array(bytes)).digest(),
    );
    zeroDigests.set(bytes, d);
  }
  return d;
}

/**
 * The whole digest: SHA-256 of the range digests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex, rootDigest } from "@hakobu/hakobu";
 *
 * // The SHA-256 of one range digest of 32 zero bytes:
 * assert.equal(
 *   hex(rootDigest(new Uint8Array(32))),
 *   "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925",
 * );
 * ```
 */
export function rootDigest(ranges: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(ranges).digest());
}

/**
 * The digest of a whole memory image on this thread, yielding to the event
 * loop between 16 MiB chunks so that a socket keeps being served.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryDigest } from "@hakobu/hakobu";
 *
 * const d = await memoryDigest(new Uint8Array(8192));
 * assert.equal(d.ranges.length, 32); // one 64 MiB range: one SHA-256
 * ```
 */
export async function memoryDigest(
  memory: Uint8Array,
  rangeBytes: number = DIGEST_RANGE_BYTES,
): Promise<MemoryDigest> {
  const count = rangeCount(memory.length, rangeBytes);
  const ranges = new Uint8Array(count * 32);
  for (let r = 0; r < count; r++) {
    const hash = createHash("sha256");
    const end = Math.min(memory.length, (r + 1) * rangeBytes);
    for (let off = r * rangeBytes; off < end; off += CHUNK) {
      hash.update(memory.subarray(off, Math.min(off + CHUNK, end)));
      await new Promise((res) => setTimeout(res, 0));
    }
    ranges.set(hash.digest(), r * 32);
  }
  return { rangeBytes, ranges };
}

/**
 * Indexes of the ranges whose digests differ (all of them when the two have
 * different range sizes or counts), at most `limit`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mismatchedRanges } from "@hakobu/hakobu";
 *
 * const a = { rangeBytes: 4096, ranges: new Uint8Array(64) };
 * const b = { rangeBytes: 4096, ranges: new Uint8Array(64).fill(1, 32) };
 * assert.deepEqual(mismatchedRanges(a, b), [1]);
 * ```
 */
export function mismatchedRanges(
  a: MemoryDigest,
  b: MemoryDigest,
  limit = 64,
): number[] {
  const out: number[] = [];
  const n = Math.max(a.ranges.length, b.ranges.length) / 32;
  const same = a.rangeBytes === b.rangeBytes &&
    a.ranges.length === b.ranges.length;
  for (let r = 0; r < n && out.length < limit; r++) {
    if (!same) {
      out.push(r);
      continue;
    }
    for (let i = r * 32; i < r * 32 + 32; i++) {
      if (a.ranges[i] !== b.ranges[i]) {
        out.push(r);
        break;
      }
    }
  }
  return out;
}

/**
 * Lower-case hexadecimal form of a digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "@hakobu/hakobu";
 *
 * assert.equal(hex(new Uint8Array([1, 255])), "01ff");
 * ```
 *
 * @param bytes Bytes to format.
 * @returns Two hex digits per byte.
 */
export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
