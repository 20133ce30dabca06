/**
 * The memory digest both sides of a migration compare at the end: one hash
 * per range (the last range may be shorter), so that ranges hash in
 * parallel on the channel Workers and a mismatch names the ranges that
 * differ, then, hashed page by page in those ranges only, the pages; the
 * whole digest is the SHA-256 of the range digests one after the other.
 *
 * Two schemes: `"xxh3-128"` (XXH3-128 per {@link XXH3_RANGE_BYTES} range,
 * negotiated in HELLO/WELCOME, the default) and `"sha256"` (SHA-256 per
 * {@link DIGEST_RANGE_BYTES} range, protocol 2's END, used with a peer that
 * negotiates nothing). Anyone can check a range against `xxh128sum` (or
 * `sha256sum`) of that slice of a dumped image. Why a fast non-keyed hash
 * suffices over an authenticated channel: `docs/trust.md`.
 *
 * @module
 */

import { nodeBuiltin } from "./_node_builtin.ts";
import { xxh3x128 } from "../ffi/xxhash.ts";

/** Bytes per digest range of the `"sha256"` scheme: 64 MiB. */
export const DIGEST_RANGE_BYTES: number = 64 * 1024 * 1024;

/**
 * Bytes per digest range of the `"xxh3-128"` scheme: 1 MiB. A range costs
 * one library call (≈2 µs beside ≈120 µs of hashing), 16 bytes of END
 * (16 KiB per GiB), and bounds what a receiver hashes for one page a peer
 * wrote (it hashes a range only when a page of it holds non-zero bytes).
 */
export const XXH3_RANGE_BYTES: number = 1024 * 1024;

/** A way of hashing memory for verification. */
export type DigestScheme = "xxh3-128" | "sha256";

/** The schemes this implementation can verify with, preferred first (what a source offers in HELLO). */
export const DIGEST_SCHEMES: readonly DigestScheme[] = ["xxh3-128", "sha256"];

/**
 * Bytes of one digest of `scheme`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { digestBytes } from "@hakobu/hakobu";
 *
 * assert.equal(digestBytes("xxh3-128"), 16);
 * assert.equal(digestBytes("sha256"), 32);
 * ```
 */
export function digestBytes(scheme: DigestScheme): number {
  return scheme === "xxh3-128" ? 16 : 32;
}

/**
 * Bytes per range of `scheme`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { schemeRangeBytes } from "@hakobu/hakobu";
 *
 * assert.equal(schemeRangeBytes("xxh3-128"), 1 << 20);
 * ```
 */
export function schemeRangeBytes(scheme: DigestScheme): number {
  return scheme === "xxh3-128" ? XXH3_RANGE_BYTES : DIGEST_RANGE_BYTES;
}

/**
 * The first of `offered` (a peer's list, in its order of preference) that
 * this implementation knows; null when none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chooseScheme } from "@hakobu/hakobu";
 *
 * assert.equal(chooseScheme(["blake3", "xxh3-128"]), "xxh3-128");
 * assert.equal(chooseScheme(["blake3"]), null);
 * ```
 */
export function chooseScheme(
  offered: readonly string[] | undefined,
): DigestScheme | null {
  for (const s of offered ?? []) {
    if ((DIGEST_SCHEMES as readonly string[]).includes(s)) {
      return s as DigestScheme;
    }
  }
  return null;
}

/**
 * A fresh SHA-256 hash; node:crypto loads on the first, so that the many
 * isolates that only ever use XXH3-128 (the default scheme) skip it.
 */
function sha256(): ReturnType<typeof import("node:crypto").createHash> {
  return nodeBuiltin("node:crypto").createHash("sha256");
}

/** Hash of `bytes` with `scheme`, written at `out[at..)`. */
function hashInto(
  scheme: DigestScheme,
  bytes: Uint8Array,
  out: Uint8Array,
  at: number,
): void {
  if (scheme === "xxh3-128") xxh3x128(bytes, out, at);
  else out.set(sha256().update(bytes).digest(), at);
}

/** Bytes hashed per update call; keeps each call short enough to stay responsive. */
const CHUNK = 16 << 20;

/** A memory digest: the range digests and the range size. */
export interface MemoryDigest {
  /** Bytes per range. */
  readonly rangeBytes: number;
  /** The hash of each range, {@link digestBytes} each, in memory order. */
  readonly ranges: Uint8Array;
  /** How the ranges were hashed (absent: `"sha256"`). */
  readonly scheme?: DigestScheme;
}

/** Options of {@link rangeDigests}. */
export interface RangeDigestOptions {
  /** The hash (default `"sha256"`). */
  readonly scheme?: DigestScheme;
  /**
   * Hash ranges `from, from + step, ...` below `to` only (default 1): the
   * channel Workers each take every n-th range, so that the ranges a
   * receiver must read (those it wrote) spread evenly over them.
   */
  readonly step?: number;
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
 * Hashes of ranges `[from, to)` of `memory` (every `step`-th one),
 * {@link digestBytes} each, one after the other. With `zeros`, a range
 * whose pages are all untouched gets the digest of zeros of its length
 * without being read, so verifying costs what was written, not the
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
 * const xxh = rangeDigests(memory, 4096, 0, 2, undefined, {
 *   scheme: "xxh3-128",
 *   step: 2,
 * });
 * assert.equal(xxh.length, 16); // range 0 only
 * ```
 */
export function rangeDigests(
  memory: Uint8Array,
  rangeBytes: number,
  from: number,
  to: number,
  zeros?: ZeroPageMap,
  options: RangeDigestOptions = {},
): Uint8Array {
  const scheme = options.scheme ?? "sha256";
  const step = options.step ?? 1;
  const size = digestBytes(scheme);
  const out = new Uint8Array(Math.ceil(Math.max(0, to - from) / step) * size);
  for (let r = from, at = 0; r < to; r += step, at += size) {
    const start = r * rangeBytes;
    const end = Math.min(memory.length, start + rangeBytes);
    if (zeros && untouched(zeros, start, end)) {
      out.set(zeroDigest(scheme, end - start), at);
    } else hashInto(scheme, memory.subarray(start, end), out, at);
  }
  return out;
}

/** Where {@link pageDigests} and {@link mismatchedPages} look. */
export interface PageDigestOptions {
  /** The hash. */
  readonly scheme: DigestScheme;
  /** Bytes per range. */
  readonly rangeBytes: number;
  /** Bytes per page. */
  readonly pageSize: number;
  /** Bytes of memory (the last range may be shorter). */
  readonly memoryBytes: number;
}

/**
 * The pages of each of `ranges`, in order: `[first, end)` page numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rangePages } from "@hakobu/hakobu";
 *
 * const where = { rangeBytes: 8192, pageSize: 4096, memoryBytes: 12288 };
 * assert.deepEqual(rangePages(2 - 1, where), [2, 3]); // the short last range
 * ```
 */
export function rangePages(
  range: number,
  where: Omit<PageDigestOptions, "scheme">,
): [number, number] {
  const per = where.rangeBytes / where.pageSize;
  const total = Math.ceil(where.memoryBytes / where.pageSize);
  return [Math.min(total, range * per), Math.min(total, (range + 1) * per)];
}

/**
 * The hash of every page of `ranges`, range after range (the narrower
 * comparison after a range mismatch): `read(pfn)` gives a page's bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageDigests } from "@hakobu/hakobu";
 *
 * const memory = new Uint8Array(4 * 4096);
 * const d = pageDigests((p) => memory.subarray(p * 4096, (p + 1) * 4096), [1], {
 *   scheme: "xxh3-128",
 *   rangeBytes: 8192,
 *   pageSize: 4096,
 *   memoryBytes: memory.length,
 * });
 * assert.equal(d.length, 2 * 16); // pages 2 and 3
 * ```
 */
export function pageDigests(
  read: (pfn: number) => Uint8Array,
  ranges: readonly number[],
  options: PageDigestOptions,
): Uint8Array {
  const size = digestBytes(options.scheme);
  let pages = 0;
  for (const r of ranges) {
    const [a, b] = rangePages(r, options);
    pages += b - a;
  }
  const out = new Uint8Array(pages * size);
  let at = 0;
  for (const r of ranges) {
    const [a, b] = rangePages(r, options);
    for (let p = a; p < b; p++, at += size) {
      hashInto(options.scheme, read(p), out, at);
    }
  }
  return out;
}

/**
 * The pages whose digests differ between two {@link pageDigests} of the
 * same `ranges`: the first `limit` page numbers, and how many differ in all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mismatchedPages, pageDigests } from "@hakobu/hakobu";
 *
 * const where = {
 *   scheme: "xxh3-128" as const,
 *   rangeBytes: 8192,
 *   pageSize: 4096,
 *   memoryBytes: 4 * 4096,
 * };
 * const a = new Uint8Array(4 * 4096);
 * const b = a.slice();
 * b[3 * 4096 + 7] = 1; // page 3, in range 1
 * const page = (m: Uint8Array) => (p: number) =>
 *   m.subarray(p * 4096, (p + 1) * 4096);
 * const diff = mismatchedPages(
 *   pageDigests(page(a), [1], where),
 *   pageDigests(page(b), [1], where),
 *   [1],
 *   where,
 * );
 * assert.deepEqual(diff, { pages: [3], count: 1 });
 * ```
 */
export function mismatchedPages(
  a: Uint8Array,
  b: Uint8Array,
  ranges: readonly number[],
  options: PageDigestOptions & { readonly limit?: number },
): { pages: number[]; count: number } {
  const size = digestBytes(options.scheme);
  const limit = options.limit ?? 256;
  const pages: number[] = [];
  let count = 0;
  let at = 0;
  for (const r of ranges) {
    const [first, end] = rangePages(r, options);
    for (let p = first; p < end; p++, at += size) {
      for (let i = at; i < at + size; i++) {
        if (a[i] !== b[i]) {
          count++;
          if (pages.length < limit) pages.push(p);
          break;
        }
      }
    }
  }
  return { pages, count };
}

function untouched(zeros: ZeroPageMap, start: number, end: number): boolean {
  const { touched, pageSize } = zeros;
  const last = Math.ceil(end / pageSize);
  for (let p = Math.floor(start / pageSize); p < last; p++) {
    if (touched[p] !== 0) return false;
  }
  return true;
}

const zeroDigests = new Map<string, Uint8Array>();

/** The hash of `bytes` zeros, computed once per scheme and length. */
function zeroDigest(scheme: DigestScheme, bytes: number): Uint8Array {
  const key = `${scheme}:${bytes}`;
  let d = zeroDigests.get(key);
  if (!d) {
    d = new Uint8Array(digestBytes(scheme));
    hashInto(scheme, new Uint8Array(bytes), d, 0);
    zeroDigests.set(key, d);
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
  return new Uint8Array(sha256().update(ranges).digest());
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
 * const x = await memoryDigest(new Uint8Array(3 << 20), 1 << 20, "xxh3-128");
 * assert.equal(x.ranges.length, 3 * 16);
 * ```
 */
export async function memoryDigest(
  memory: Uint8Array,
  rangeBytes: number = DIGEST_RANGE_BYTES,
  scheme: DigestScheme = "sha256",
): Promise<MemoryDigest> {
  const count = rangeCount(memory.length, rangeBytes);
  if (scheme !== "sha256") {
    const size = digestBytes(scheme);
    const ranges = new Uint8Array(count * size);
    const per = Math.max(1, Math.floor(CHUNK / rangeBytes));
    for (let r = 0; r < count; r += per) {
      const to = Math.min(count, r + per);
      ranges.set(
        rangeDigests(memory, rangeBytes, r, to, undefined, { scheme }),
        r * size,
      );
      await new Promise((res) => setTimeout(res, 0));
    }
    return { rangeBytes, ranges, scheme };
  }
  const ranges = new Uint8Array(count * 32);
  for (let r = 0; r < count; r++) {
    const hash = sha256();
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
 * different range sizes, counts or schemes), at most `limit`.
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
  const size = digestBytes(a.scheme ?? "sha256");
  const n = Math.max(
    Math.ceil(a.ranges.length / size),
    Math.ceil(b.ranges.length / digestBytes(b.scheme ?? "sha256")),
  );
  const same = a.rangeBytes === b.rangeBytes &&
    (a.scheme ?? "sha256") === (b.scheme ?? "sha256") &&
    a.ranges.length === b.ranges.length;
  for (let r = 0; r < n && out.length < limit; r++) {
    if (!same) {
      out.push(r);
      continue;
    }
    for (let i = r * size; i < r * size + size; i++) {
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
