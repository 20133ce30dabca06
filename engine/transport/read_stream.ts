/**
 * A byte source read in large pieces: `Deno.stdin.readable` hands over
 * small chunks (a pipe's 64 KiB at most), and every chunk costs a read, a
 * parser call and a hash update; reading 1 MiB at a time costs a sixteenth.
 *
 * @module
 */

/** Something with `read(p)`, as `Deno.stdin` or a `Deno.FsFile`. */
export interface ByteReader {
  /** Reads into `p`; the bytes read, or null at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * A stream of `reader`'s bytes in chunks of up to `chunkBytes` (default
 * 1 MiB), each chunk a buffer of its own (a consumer may keep views into
 * it). A read returns as soon as the reader has some bytes: a chunk is
 * whatever one read returned, never waited for to fill.
 *
 * @example
 * ```ts ignore
 * const input = largeReads(Deno.stdin);
 * for await (const chunk of input) console.log(chunk.length);
 * ```
 */
export function largeReads(
  reader: ByteReader,
  chunkBytes = 1 << 20,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const buf = new Uint8Array(chunkBytes);
      const n = await reader.read(buf);
      if (n === null) controller.close();
      else controller.enqueue(n === chunkBytes ? buf : buf.slice(0, n));
    },
  });
}
