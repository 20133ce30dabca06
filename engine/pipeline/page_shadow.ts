/**
 * A receiver's copy of the pages it applied, as the codecs that decode
 * against the destination's current page (delta) see them, for sinks that
 * do not hold guest memory themselves (stream rebuilders). Allocated lazily,
 * 1 MiB at a time, so only the pages a channel carries cost memory.
 *
 * @module
 */

const CHUNK_PAGES = 256;

/**
 * Pages by pfn, all zero until written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PageShadow } from "./page_shadow.ts";
 *
 * const s = new PageShadow(16, 4096);
 * s.write(3, new Uint8Array(4096).fill(7));
 * assert.equal(s.read(3)[0], 7);
 * assert.equal(s.read(4)[0], 0); // never written: zero
 * ```
 */
export class PageShadow {
  readonly #chunks: (Uint8Array | undefined)[];
  readonly #pageSize: number;
  readonly #zero: Uint8Array;

  /**
   * @param pageCount Pages of the pfn space.
   * @param pageSize Page size in bytes.
   */
  constructor(pageCount: number, pageSize: number) {
    this.#chunks = new Array(Math.ceil(pageCount / CHUNK_PAGES));
    this.#pageSize = pageSize;
    this.#zero = new Uint8Array(pageSize);
  }

  /** The page as last written (a view: never write to it). */
  read(pfn: number): Uint8Array {
    const c = this.#chunks[Math.floor(pfn / CHUNK_PAGES)];
    if (!c) return this.#zero;
    const at = (pfn % CHUNK_PAGES) * this.#pageSize;
    return c.subarray(at, at + this.#pageSize);
  }

  /** Stores `page` as pfn's current version. */
  write(pfn: number, page: Uint8Array): void {
    const i = Math.floor(pfn / CHUNK_PAGES);
    let c = this.#chunks[i];
    if (!c) {
      c = this.#chunks[i] = new Uint8Array(CHUNK_PAGES * this.#pageSize);
    }
    c.set(page, (pfn % CHUNK_PAGES) * this.#pageSize);
  }
}
