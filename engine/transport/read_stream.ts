/**
 * A byte source read into large shared slabs: `Deno.stdin.readable` hands
 * over small chunks (a pipe's 64 KiB at most), each a fresh buffer, and a
 * tunnel then pays an allocation, a zero-fill and page faults per chunk, and
 * a copy wherever a chunk must outlive the next. Here reads fill one slab
 * (a SharedArrayBuffer of `slabBytes`) from front to back and each chunk is
 * a view into it; a full slab is never written again, so a consumer may
 * keep views, and hand them to a Worker without a copy. With `ring`, a
 * consumer that is done with each chunk soon (the stream tunnel's sender:
 * its parser and batches copy what they keep) lets a few slabs be reused in
 * turn instead: no fresh slab, zero-fill and page faults per MiB.
 *
 * @module
 */

/** Something with `read(p)`, as `Deno.stdin` or a `Deno.FsFile`. */
export interface ByteReader {
  /** Reads into `p`; the bytes read, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Options of {@link largeReads}. */
export interface LargeReadsOptions {
  /**
   * Reuse this many slabs in turn (at least 2) instead of a fresh slab
   * each time: a chunk's bytes then stay as they are only until the
   * consumer asked for `ring - 1` more chunks (reads are made only when
   * asked for: nothing is read ahead beyond the consumer's own `read()`
   * calls). Absent: fresh slabs, and no chunk is ever overwritten.
   */
  readonly ring?: number;
}

/**
 * A stream of `reader`'s bytes. Each chunk is whatever one read returned (a
 * read returns as soon as the reader has some bytes: nothing waits for a
 * slab to fill), a view into a SharedArrayBuffer slab of `slabBytes`
 * (default 1 MiB) that no later read overwrites. A read gets at least a
 * sixteenth of a slab; a slab with less room left is given up. With
 * `options.ring`, slabs are reused (see {@link LargeReadsOptions.ring}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { largeReads } from "./read_stream.ts";
 *
 * // A reader that hands out at most 1000 bytes per read, like a pipe.
 * const data = new Uint8Array(3000).fill(1);
 * let at = 0;
 * const reader = {
 *   read(p: Uint8Array): Promise<number | null> {
 *     const n = Math.min(p.length, 1000, data.length - at);
 *     p.set(data.subarray(at, at + n));
 *     at += n;
 *     return Promise.resolve(n === 0 ? null : n);
 *   },
 * };
 * const chunks = await Array.fromAsync(largeReads(reader, 4096));
 * assert.deepEqual(chunks.map((c) => c.length), [1000, 1000, 1000]);
 * assert.ok(chunks[0].buffer instanceof SharedArrayBuffer); // one slab
 * assert.equal(chunks[2].buffer, chunks[0].buffer);
 * ```
 */
export function largeReads(
  reader: ByteReader,
  slabBytes = 1 << 20,
  options: LargeReadsOptions = {},
): ReadableStream<Uint8Array> {
  const ring = options.ring;
  if (ring !== undefined && !(Number.isSafeInteger(ring) && ring >= 2)) {
    throw new RangeError(
      `largeReads: ring must be a whole number of slabs ≥ 2, got ${ring}`,
    );
  }
  const least = Math.max(1, slabBytes >> 4);
  let slab: Uint8Array = new Uint8Array(0);
  let at = 0;
  // With a ring: the slabs made so far, and the one in use. A chunk k in
  // slab s is overwritten only once every other slab took a read (each
  // starts on one), so by read k + ring at the earliest.
  const slabs: Uint8Array[] = [];
  let current = -1;
  const nextSlab = (): Uint8Array => {
    if (ring === undefined) {
      return new Uint8Array(new SharedArrayBuffer(slabBytes));
    }
    current = (current + 1) % ring;
    slabs[current] ??= new Uint8Array(new SharedArrayBuffer(slabBytes));
    return slabs[current];
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (slab.length - at < least) {
        slab = nextSlab();
        at = 0;
      }
      const n = await reader.read(slab.subarray(at));
      if (n === null) {
        controller.close();
        return;
      }
      controller.enqueue(slab.subarray(at, at + n));
      at += n;
    },
    // With a ring, a read only when the consumer asks for one: the stream's
    // own read-ahead would count against the ring's bound.
  }, ring === undefined ? undefined : { highWaterMark: 0 });
}
