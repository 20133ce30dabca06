/**
 * Deterministic pseudo-random numbers for the simulated VM: xorshift128
 * (Marsaglia, 2003) seeded through splitmix32, so that a seed reproduces the
 * same memory image on every run and every machine of the same endianness.
 *
 * @module
 */

/**
 * One round of the splitmix32 finaliser: a well-mixed 32-bit hash of `x`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mix32 } from "./prng.ts";
 *
 * assert.notEqual(mix32(1), mix32(2));
 * assert.equal(mix32(1), mix32(1));
 * ```
 *
 * @param x Any 32-bit integer.
 * @returns An unsigned 32-bit hash.
 */
export function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Hashes several integers into one 32-bit seed, order-sensitive. Used to derive
 * independent streams, e.g. `deriveSeed(seed, pfn, generation)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveSeed } from "./prng.ts";
 *
 * assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1)); // order matters
 * ```
 *
 * @param values Integers to combine.
 * @returns An unsigned 32-bit seed.
 */
export function deriveSeed(...values: number[]): number {
  let h = 0x243f6a88;
  for (const v of values) h = mix32((h ^ mix32(v | 0)) + 0x632be5ab);
  return h;
}

/**
 * A xorshift128 generator: fast, 32-bit, period 2^128 − 1; not cryptographic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Prng } from "./prng.ts";
 *
 * const rng = new Prng(42);
 * const die = rng.below(6) + 1;
 * assert.ok(die >= 1 && die <= 6);
 * assert.equal(new Prng(42).below(6) + 1, die); // equal seeds, equal streams
 * ```
 */
export class Prng {
  #x: number;
  #y: number;
  #z: number;
  #w: number;

  /**
   * Seeds the four state words from `seed` through splitmix32.
   *
   * @param seed Any integer; equal seeds give equal streams.
   */
  constructor(seed: number) {
    let s = seed | 0;
    this.#x = mix32(s);
    s = (s + 0x6d2b79f5) | 0;
    this.#y = mix32(s);
    s = (s + 0x6d2b79f5) | 0;
    this.#z = mix32(s);
    s = (s + 0x6d2b79f5) | 0;
    this.#w = mix32(s) | 1; // the state must not be all zero
  }

  /**
   * The next unsigned 32-bit number.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Prng } from "./prng.ts";
   *
   * const x = new Prng(1).next();
   * assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
   * ```
   */
  next(): number {
    const t = this.#x ^ (this.#x << 11);
    this.#x = this.#y;
    this.#y = this.#z;
    this.#z = this.#w;
    this.#w = (this.#w ^ (this.#w >>> 19)) ^ (t ^ (t >>> 8));
    return this.#w >>> 0;
  }

  /**
   * A uniform integer in `[0, n)` for `n` up to 2^32 (multiply-shift; the bias
   * is below 2^-20 for the sizes used here).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Prng } from "./prng.ts";
   *
   * assert.ok(new Prng(1).below(10) < 10);
   * ```
   *
   * @param n Exclusive upper bound, a positive integer.
   */
  below(n: number): number {
    return Math.floor((this.next() / 4294967296) * n);
  }

  /**
   * A uniform float in `[0, 1)`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Prng } from "./prng.ts";
   *
   * const f = new Prng(1).float();
   * assert.ok(f >= 0 && f < 1);
   * ```
   */
  float(): number {
    return this.next() / 4294967296;
  }

  /**
   * Fills `words[from, to)` with random words, optionally masked and offset
   * (`(r & mask) + add`), without a call per word. Takes an `Int32Array`
   * because V8 stores int32 results into it about twice as fast as into a
   * `Uint32Array`. Cheap way to make text-like
   * bytes: `mask 0x3f3f3f3f, add 0x20202020` gives printable ASCII.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Prng } from "./prng.ts";
   *
   * const w = new Int32Array(1024);
   * new Prng(7).fill(w, 0, w.length, { mask: 0x3f3f3f3f, add: 0x20202020 });
   * const text = new TextDecoder().decode(w);
   * assert.match(text, /^[\x20-\x5f]+$/); // printable ASCII
   * ```
   *
   * @param words Destination words.
   * @param from First index written.
   * @param to Index after the last one written.
   * @param options `mask` (default all ones) and `add` (default 0).
   */
  fill(
    words: Int32Array,
    from: number,
    to: number,
    options: { mask?: number; add?: number } = {},
  ): void {
    const mask = options.mask ?? -1;
    const add = options.add ?? 0;
    let x = this.#x, y = this.#y, z = this.#z, w = this.#w;
    if (mask === -1 && add === 0) {
      // Fast path, the common case: no masking in the loop.
      for (let i = from; i < to; i++) {
        const t = x ^ (x << 11);
        x = y;
        y = z;
        z = w;
        w = (w ^ (w >>> 19)) ^ (t ^ (t >>> 8));
        words[i] = w;
      }
    } else {
      for (let i = from; i < to; i++) {
        const t = x ^ (x << 11);
        x = y;
        y = z;
        z = w;
        w = (w ^ (w >>> 19)) ^ (t ^ (t >>> 8));
        words[i] = (w & mask) + add;
      }
    }
    this.#x = x;
    this.#y = y;
    this.#z = z;
    this.#w = w;
  }
}
