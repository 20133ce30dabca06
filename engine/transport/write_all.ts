/**
 * {@link writeAll}: `write` until every byte is out. Deno's `Conn.write`
 * and `FsFile.write` may write fewer bytes than asked (a pipe, a FIFO or a
 * socket buffer fills up).
 *
 * @module
 */

/** Anything with Deno's `write(p) → bytes written`. */
export interface ByteWriter {
  /** Writes some of `p`; resolves with how many bytes went out. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * Writes all of `bytes` to `w`, looping over short writes.
 *
 * @example
 * ```ts
 * const f = await Deno.open("/tmp/out.bin", { write: true, create: true });
 * await writeAll(f, new Uint8Array(1 << 20));
 * f.close();
 * ```
 */
export async function writeAll(
  w: ByteWriter,
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}
