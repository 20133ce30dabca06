/**
 * Byte-array helpers the engine and its tests share.
 *
 * @module
 */

/**
 * 2^32: the weight of the high half of a 64-bit field read as two u32 words
 * (JavaScript numbers are exact to 2^53, enough for every such field here).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TWO_32 } from "./bytes.ts";
 *
 * // A little-endian u64 as two words: the low one, then the high one.
 * const words = new Uint32Array([5, 3]);
 * assert.equal(words[1] * TWO_32 + words[0], 3 * 2 ** 32 + 5);
 * ```
 */
export const TWO_32 = 0x1_0000_0000;

/**
 * Writes `n` (a whole number below 2^53) as a little-endian u64 at `at`:
 * the low u32, then the high one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getU64, setU64 } from "./bytes.ts";
 *
 * const v = new DataView(new ArrayBuffer(8));
 * setU64(v, 0, 3 * 2 ** 32 + 5);
 * assert.equal(v.getUint32(0, true), 5);
 * assert.equal(getU64(v, 0), 3 * 2 ** 32 + 5);
 * ```
 */
export function setU64(view: DataView, at: number, n: number): void {
  view.setUint32(at, n % TWO_32, true);
  view.setUint32(at + 4, Math.floor(n / TWO_32), true);
}

/**
 * Reads a little-endian u64 at `at` as a number (exact up to 2^53; a
 * caller that must refuse more checks `Number.isSafeInteger`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getU64 } from "./bytes.ts";
 *
 * const v = new DataView(new Uint32Array([7, 1]).buffer);
 * assert.equal(getU64(v, 0), 2 ** 32 + 7);
 * ```
 */
export function getU64(view: DataView, at: number): number {
  return view.getUint32(at + 4, true) * TWO_32 + view.getUint32(at, true);
}

/**
 * Joins byte arrays into one new array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { concatBytes } from "./bytes.ts";
 *
 * const joined = concatBytes([new Uint8Array([1, 2]), new Uint8Array([3])]);
 * assert.deepEqual(joined, new Uint8Array([1, 2, 3]));
 * ```
 */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
