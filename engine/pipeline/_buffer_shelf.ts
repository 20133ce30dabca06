/**
 * Buffers handed back after use (a decoded batch's pages, a BATCH payload,
 * a stream tunnel's output piece), kept for the next use instead of fresh
 * memory each time (its zero-fill and page faults).
 *
 * @module
 */

/**
 * At most `max` given-back buffers; {@link take} hands out the first one
 * large enough.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferShelf } from "./_buffer_shelf.ts";
 *
 * const shelf = new BufferShelf(1);
 * shelf.keep(new ArrayBuffer(4096));
 * shelf.keep(new ArrayBuffer(8192)); // full: dropped
 * assert.equal(shelf.take(8192), undefined);
 * assert.equal(shelf.take(100)?.byteLength, 4096);
 * assert.equal(shelf.take(100), undefined); // taken off the shelf
 * ```
 */
export class BufferShelf {
  readonly #buffers: ArrayBuffer[] = [];

  /** @param max Buffers kept at most; more given back are dropped. */
  constructor(readonly max: number) {}

  /** A kept buffer of at least `bytes`, taken off the shelf, or undefined. */
  take(bytes: number): ArrayBuffer | undefined {
    const i = this.#buffers.findIndex((b) => b.byteLength >= bytes);
    return i < 0 ? undefined : this.#buffers.splice(i, 1)[0];
  }

  /** Keeps `buffer` for a later {@link take}, unless the shelf is full. */
  keep(buffer: ArrayBuffer): void {
    if (this.#buffers.length < this.max) this.#buffers.push(buffer);
  }
}
