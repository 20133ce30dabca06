/**
 * The delta codec's sender cache: the last sent version of recently
 * re-dirtied pages, direct-mapped (`slot = pfn % slots`, newest wins). One
 * class, so the CPU encoder and the GPU batch encoder cannot drift apart.
 *
 * Like QEMU's XBZRLE, the bulk pass is skipped: a page sent for the first
 * time is only remembered as seen; from its second send on (it was
 * re-dirtied) its bytes are cached, so a later send can be a delta. This
 * keeps a cache much smaller than the VM for the pages that matter, and costs
 * no copy in round 0.
 *
 * @module
 */

/**
 * Sender-side page cache of the delta codec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeltaCache } from "./delta_cache.ts";
 *
 * const cache = new DeltaCache({
 *   pageSize: 4096,
 *   pageCount: 8,
 *   cacheBytes: 8192,
 * });
 * const page = new Uint8Array(4096).fill(3);
 * cache.record(3, page); // bulk pass: seen, not cached
 * assert.equal(cache.lookup(3), null);
 * cache.record(3, page); // re-sent: cached
 * assert.deepEqual(cache.lookup(3), page);
 * ```
 */
export class DeltaCache {
  readonly #pageSize: number;
  readonly #pageCount: number;
  /** Cache slots (pages the cache holds at most). */
  readonly slots: number;
  readonly #cache: Uint8Array;
  /** The whole cache as bytes: slot `s` is `[s * pageSize, (s + 1) * pageSize)`. Read only. */
  readonly bytes: Uint8Array;
  /** The whole cache as 32-bit words (same memory as {@link bytes}). Read only. */
  readonly words: Uint32Array;
  /** pfn held by each slot, -1 when empty. */
  readonly #tags: Float64Array;
  /** 1 for every pfn sent at least once. */
  readonly #seen: Uint8Array;

  /**
   * @param options Page size, page count, and the cache size in bytes (a
   *   multiple of the page size; a cache larger than the VM is trimmed).
   */
  constructor(
    options: { pageSize: number; pageCount: number; cacheBytes: number },
  ) {
    const { pageSize, pageCount, cacheBytes } = options;
    this.#pageSize = pageSize;
    this.#pageCount = pageCount;
    this.slots = Math.max(
      1,
      Math.min(Math.floor(cacheBytes / pageSize), pageCount),
    );
    this.#cache = new Uint8Array(this.slots * pageSize);
    this.bytes = this.#cache;
    this.words = new Uint32Array(this.#cache.buffer);
    this.#tags = new Float64Array(this.slots).fill(-1);
    this.#seen = new Uint8Array(pageCount);
  }

  /** The slot holding the last-sent version of `pfn`, or -1 when it is not cached. */
  slotOf(pfn: number): number {
    const slot = pfn % this.slots;
    return this.#tags[slot] === pfn ? slot : -1;
  }

  /** The cached last-sent version of `pfn` (a view into the cache), or null. */
  lookup(pfn: number): Uint8Array | null {
    const slot = this.slotOf(pfn);
    if (slot < 0) return null;
    const at = slot * this.#pageSize;
    return this.#cache.subarray(at, at + this.#pageSize);
  }

  /** Records that `page` was sent for `pfn` (whichever codec carried it). */
  record(pfn: number, page: Uint8Array): void {
    if (pfn < 0 || pfn >= this.#pageCount || page.length !== this.#pageSize) {
      return;
    }
    if (this.#seen[pfn] === 0) {
      this.#seen[pfn] = 1;
      return;
    }
    const slot = pfn % this.slots;
    this.#cache.set(page, slot * this.#pageSize);
    this.#tags[slot] = pfn;
  }

  /** How many slots hold a page. */
  get filled(): number {
    let n = 0;
    for (const t of this.#tags) if (t >= 0) n++;
    return n;
  }
}
