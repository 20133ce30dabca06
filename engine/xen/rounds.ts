/**
 * Rounds of a libxc stream. The stream has no round marker: libxc's
 * `send_memory_live()` walks the dirty bitmap in pfn order each iteration
 * and sends PAGE_DATA batches, then CLEANs the log-dirty bitmap. So a round
 * is a maximal run of PAGE_DATA records in which no pfn repeats: the first
 * record holding a pfn already sent in the current round starts the next
 * round (the stop-and-copy pass counts as the last round).
 *
 * @module
 */

/**
 * Counts rounds by pfn repetition over a growable bitset.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RoundCounter } from "@hakobu/hakobu";
 *
 * const r = new RoundCounter();
 * assert.equal(r.record([1, 2, 3]), false); // round 0
 * assert.equal(r.record([4]), false); // still round 0: no pfn repeats
 * assert.equal(r.record([2]), true); // pfn 2 again: round 1 starts
 * assert.equal(r.round, 1);
 * ```
 */
export class RoundCounter {
  #bits = new Uint32Array(1024);
  #touched: number[] = [];
  #round = 0;
  #started = false;

  /** The current round (0 first). */
  get round(): number {
    return this.#round;
  }

  /**
   * Notes one PAGE_DATA record's pfns.
   *
   * @returns Whether this record starts a new round.
   */
  record(pfns: ArrayLike<number>): boolean {
    let repeat = false;
    for (let i = 0; i < pfns.length && !repeat; i++) {
      repeat = this.#has(pfns[i]);
    }
    let next = false;
    if (repeat) {
      for (const w of this.#touched) this.#bits[w] = 0;
      this.#touched.length = 0;
      this.#round++;
      next = true;
    }
    this.#started = true;
    for (let i = 0; i < pfns.length; i++) this.#set(pfns[i]);
    return next && this.#started;
  }

  #has(pfn: number): boolean {
    const w = Math.floor(pfn / 32);
    return w < this.#bits.length && (this.#bits[w] & (1 << (pfn % 32))) !== 0;
  }

  #set(pfn: number): void {
    const w = Math.floor(pfn / 32);
    if (w >= this.#bits.length) {
      const bigger = new Uint32Array(Math.max(w + 1, this.#bits.length * 2));
      bigger.set(this.#bits);
      this.#bits = bigger;
    }
    if (this.#bits[w] === 0) this.#touched.push(w);
    this.#bits[w] |= 1 << (pfn % 32);
  }
}
