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
 * import assert from "node:assert/strict";
 * import { writeAll } from "@hakobu/hakobu";
 *
 * // A writer that takes at most 100 bytes a call, like a full pipe.
 * const writes: number[] = [];
 * const pipe = {
 *   write(p: Uint8Array): Promise<number> {
 *     writes.push(Math.min(p.length, 100));
 *     return Promise.resolve(writes.at(-1)!);
 *   },
 * };
 * await writeAll(pipe, new Uint8Array(250));
 * assert.deepEqual(writes, [100, 100, 50]);
 * ```
 */
export async function writeAll(
  w: ByteWriter,
  bytes: Uint8Array,
): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await w.write(bytes.subarray(off));
}
