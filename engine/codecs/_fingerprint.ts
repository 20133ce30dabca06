/**
 * 128-bit chunk fingerprints for the `dedup` codec.
 *
 * The function follows MurmurHash3_x86_128 (seed 0): four 32-bit lanes, one
 * 16-byte block (four 32-bit words) per step, each word multiplied and
 * rotated into its own lane with `Math.imul`, the lanes mixed into each
 * other after every block, and the standard `fmix32` finalization. Only
 * inputs made of whole 16-byte blocks are hashed (a chunk is 512 to 4096
 * bytes), so the tail step of the reference algorithm is never needed.
 *
 * The fingerprint is not cryptographic and never travels on the wire: only
 * the sender uses it, to find a candidate in its content store, and the
 * sender then proves equality by comparing bytes. Words are read in the
 * platform's byte order; since no fingerprint leaves the process, that order
 * does not matter for interoperability.
 *
 * @module
 */

/**
 * Writes a 128-bit fingerprint of `count` 32-bit words of `words` starting at
 * word `start` into `out[0..3]`. Allocates nothing.
 */
export type FingerprintFn = (
  words: Uint32Array,
  start: number,
  count: number,
  out: Uint32Array,
) => void;

const C1 = 0x239b961b;
const C2 = 0xab0e9789;
const C3 = 0x38b34ae5;
const C4 = 0xa1e38b93;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}

/**
 * MurmurHash3_x86_128 (seed 0) over whole 16-byte blocks; `count` must be a
 * multiple of 4 words.
 *
 * @example
 * ```ts
 * const out = new Uint32Array(4);
 * fingerprint128(new Uint32Array(1024), 0, 1024, out); // out holds the fingerprint
 * ```
 */
export function fingerprint128(
  words: Uint32Array,
  start: number,
  count: number,
  out: Uint32Array,
): void {
  let h1 = 0, h2 = 0, h3 = 0, h4 = 0;
  const end = start + count;
  for (let i = start; i < end; i += 4) {
    let k1 = words[i], k2 = words[i + 1], k3 = words[i + 2], k4 = words[i + 3];

    k1 = Math.imul(k1, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h1 ^= Math.imul(k1, C2);
    h1 = (h1 << 19) | (h1 >>> 13);
    h1 = (Math.imul(h1 + h2, 5) + 0x561ccd1b) | 0;

    k2 = Math.imul(k2, C2);
    k2 = (k2 << 16) | (k2 >>> 16);
    h2 ^= Math.imul(k2, C3);
    h2 = (h2 << 17) | (h2 >>> 15);
    h2 = (Math.imul(h2 + h3, 5) + 0x0bcaa747) | 0;

    k3 = Math.imul(k3, C3);
    k3 = (k3 << 17) | (k3 >>> 15);
    h3 ^= Math.imul(k3, C4);
    h3 = (h3 << 15) | (h3 >>> 17);
    h3 = (Math.imul(h3 + h4, 5) + 0x96cd1c35) | 0;

    k4 = Math.imul(k4, C4);
    k4 = (k4 << 18) | (k4 >>> 14);
    h4 ^= Math.imul(k4, C1);
    h4 = (h4 << 13) | (h4 >>> 19);
    h4 = (Math.imul(h4 + h1, 5) + 0x32ac3b17) | 0;
  }
  const len = count * 4;
  h1 ^= len;
  h2 ^= len;
  h3 ^= len;
  h4 ^= len;
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  h1 = fmix32(h1);
  h2 = fmix32(h2);
  h3 = fmix32(h3);
  h4 = fmix32(h4);
  h1 = (h1 + h2 + h3 + h4) | 0;
  h2 = (h2 + h1) | 0;
  h3 = (h3 + h1) | 0;
  h4 = (h4 + h1) | 0;
  out[0] = h1;
  out[1] = h2;
  out[2] = h3;
  out[3] = h4;
}
