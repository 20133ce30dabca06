/**
 * A byte source read into large shared slabs: `Deno.stdin.readable` hands
 * over small chunks (a pipe's 64 KiB at most), each a fresh buffer, and a
 * tunnel then pays an allocation, a zero-fill and page faults per chunk, and
 * a copy wherever a chunk must outlive the next. Here reads fill one slab
 * (a SharedArrayBuffer of `slabBytes`) from front to back and each chunk is
 * a view into it; a full slab is never written again, so a consumer may
 * keep views, and hand them to a Worker without a copy.
 *
 * @module
 */

/** Something with `read(p)`, as `Deno.stdin` or a `Deno.FsFile`. */
export interface ByteReader {
  /** Reads into `p`; the bytes read, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * A stream of `reader`'s bytes. Each chunk is whatever one read returned (a
 * read returns as soon as the reader has some bytes: nothing waits for a
 * slab to fill), a view into a SharedArrayBuffer slab of `slabBytes`
 * (default 1 MiB) that no later read overwrites. A read gets at least a
 * sixteenth of a slab; a slab with less room left is given up.
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
): ReadableStream<Uint8Array> {
  const least = Math.max(1, slabBytes >> 4);
  let slab: Uint8Array = new Uint8Array(0);
  let at = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (slab.length - at < least) {
        slab = new Uint8Array(new SharedArrayBuffer(slabBytes));
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
  });
}
