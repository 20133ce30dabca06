/**
 * A {@link PageBatch} being filled: pages are copied out of guest memory
 * (or handed over by a stream parser) into one buffer, and each page's
 * zero-ness is found once, as it comes in. A batch closes when it holds
 * `nonZeroPages` pages that are not all zero (about 1 MiB of data, enough
 * for a compressor to reach a whole stream's ratio) or `maxPages` pages in
 * all (zero pages cost almost nothing on the wire, so a batch may hold many).
 *
 * @module
 */

import type { PageBatch } from "../codecs/batch.ts";
import { isZeroPage, isZeroSpan } from "../zero_page.ts";

/**
 * Pages tested as one span after a zero page (64 KiB): guest memory is zero
 * in long stretches, where one test and one view per page cost more than
 * reading the bytes.
 */
export const ZERO_RUN_PAGES = 16;

/** Options of {@link PageBatchBuilder}. */
export interface PageBatchOptions {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Non-zero pages that close a batch (the plan's `batchPages`). */
  readonly nonZeroPages: number;
  /** Pages that close a batch whatever they hold (at most `MAX_PAGES_PER_BATCH`). */
  readonly maxPages: number;
}

/**
 * A reusable batch under construction.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PageBatchBuilder } from "./page_batch.ts";
 *
 * const b = new PageBatchBuilder({
 *   pageSize: 4096,
 *   nonZeroPages: 256,
 *   maxPages: 16384,
 * });
 * const memory = new Uint8Array(8192).fill(1, 4096);
 * b.addFrom(memory, 0);
 * b.addFrom(memory, 1);
 * assert.equal(b.count, 2);
 * assert.deepEqual(b.zero.subarray(0, 2), new Uint8Array([1, 0])); // 0: zero
 * assert.equal(b.full, false);
 * ```
 */
export class PageBatchBuilder implements PageBatch {
  /** Pages added since the last {@link reset}. */
  count = 0;
  /** Of those, pages that are not all zero. */
  nonZero = 0;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** pfn of page `i`. */
  readonly pfns: Float64Array;
  /** Page `i` at `[i * pageSize, (i + 1) * pageSize)`. */
  readonly pages: Uint8Array;
  /** 1 where page `i` is all zero. */
  readonly zero: Uint8Array;
  readonly #nonZeroPages: number;
  readonly #maxPages: number;
  /**
   * 1 where slot `i` of `pages` may hold non-zero bytes. A zero page is
   * cleared into its slot only when an earlier batch left bytes there: most
   * of a guest's pages are zero, and clearing each one's slot cost as much
   * as finding that it is zero.
   */
  readonly #slotUsed: Uint8Array;
  /**
   * Whether zero pages count towards `nonZeroPages` too: set when the chain
   * has no codec that sends a zero page cheaply (raw alone), so a batch of
   * zero pages cannot outgrow a frame.
   */
  countZeroPages = false;

  /**
   * Allocates room for `maxPages` pages.
   *
   * @param options Page size and the two limits that close a batch.
   */
  constructor(options: PageBatchOptions) {
    this.pageSize = options.pageSize;
    this.#nonZeroPages = options.nonZeroPages;
    this.#maxPages = options.maxPages;
    this.pfns = new Float64Array(options.maxPages);
    this.pages = new Uint8Array(options.maxPages * options.pageSize);
    this.zero = new Uint8Array(options.maxPages);
    this.#slotUsed = new Uint8Array(options.maxPages);
  }

  /** Whether the batch should be sent now. */
  get full(): boolean {
    return (this.countZeroPages ? this.count : this.nonZero) >=
        this.#nonZeroPages || this.count >= this.#maxPages;
  }

  /** The last pfn added, or -1 when empty (pfns of a batch must ascend). */
  get lastPfn(): number {
    return this.count === 0 ? -1 : this.pfns[this.count - 1];
  }

  /** Empties the batch. */
  reset(): void {
    this.count = 0;
    this.nonZero = 0;
  }

  /**
   * Adds page `pfn` of `memory` (the whole guest memory, page `pfn` at
   * `pfn * pageSize`). A zero page is found on the source and not copied:
   * its slot is cleared instead; if the guest writes it meanwhile, the page
   * is dirty again and goes in a later round.
   */
  addFrom(memory: Uint8Array, pfn: number): void {
    const ps = this.pageSize;
    const i = this.count++;
    const src = memory.subarray(pfn * ps, pfn * ps + ps);
    this.pfns[i] = pfn;
    if (isZeroPage(src)) {
      this.zero[i] = 1;
      if (this.#slotUsed[i] === 1) {
        this.pages.fill(0, i * ps, i * ps + ps);
        this.#slotUsed[i] = 0;
      }
      return;
    }
    this.pages.set(src, i * ps);
    this.#slotUsed[i] = 1;
    // The copy is what goes on the wire: judge zero-ness on it, not on live
    // memory that may have changed since the first look.
    const copy = this.pages.subarray(i * ps, i * ps + ps);
    const z = isZeroPage(copy) ? 1 : 0;
    this.zero[i] = z;
    this.nonZero += 1 - z;
  }

  /**
   * Adds pages `pfns[from..to)` (strictly ascending) of `memory` until the
   * batch is full; returns the index of the first page not added. After a
   * zero page, the next {@link ZERO_RUN_PAGES} pages, when their pfns follow
   * one another and the batch has room for them all, are tested as one
   * span, and added as zero pages when it is all zero; otherwise pages go
   * one by one, as {@link addFrom} adds them.
   */
  addRunFrom(
    memory: Uint8Array,
    pfns: Uint32Array,
    from: number,
    to: number,
  ): number {
    let k = from;
    while (k < to && !this.full) {
      if (
        this.count > 0 && this.zero[this.count - 1] === 1 &&
        this.#addZeroRun(memory, pfns, k, to)
      ) {
        k += ZERO_RUN_PAGES;
        continue;
      }
      this.addFrom(memory, pfns[k++]);
    }
    return k;
  }

  /** Adds `pfns[k..k + ZERO_RUN_PAGES)` as zero pages if they follow one another, fit and are all zero. */
  #addZeroRun(
    memory: Uint8Array,
    pfns: Uint32Array,
    k: number,
    to: number,
  ): boolean {
    const n = ZERO_RUN_PAGES;
    const room = this.countZeroPages
      ? Math.min(this.#maxPages, this.#nonZeroPages) - this.count
      : this.#maxPages - this.count;
    if (to - k < n || room < n) return false;
    // strictly ascending: the last is first + n - 1 only if they all follow
    const first = pfns[k];
    if (pfns[k + n - 1] !== first + n - 1) return false;
    const ps = this.pageSize;
    if (!isZeroSpan(memory.subarray(first * ps, (first + n) * ps))) {
      return false;
    }
    for (let j = 0; j < n; j++) {
      const i = this.count++;
      this.pfns[i] = first + j;
      this.zero[i] = 1;
      if (this.#slotUsed[i] === 1) {
        this.pages.fill(0, i * ps, i * ps + ps);
        this.#slotUsed[i] = 0;
      }
    }
    return true;
  }

  /** Adds one page's bytes (exactly `pageSize` of them) as pfn `pfn`. */
  add(pfn: number, page: Uint8Array): void {
    const ps = this.pageSize;
    const i = this.count++;
    this.pfns[i] = pfn;
    this.pages.set(page, i * ps);
    this.#slotUsed[i] = 1;
    const z = isZeroPage(this.pages.subarray(i * ps, i * ps + ps)) ? 1 : 0;
    this.zero[i] = z;
    this.nonZero += 1 - z;
  }
}
