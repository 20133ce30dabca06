/**
 * Which channel carries a page: pfns are dealt to channels in blocks of
 * {@link BLOCK_PAGES} (1 MiB of 4 KiB pages), round robin. A pfn always goes
 * through the same channel, so its versions arrive in the order they were
 * sent (one channel is one ordered stream), a later version is never
 * overwritten by an earlier one, and each channel's stateful codecs (delta's
 * cache, dedup's store, zstd's window) see only their own pages, exactly as
 * the receiver's decoder of that channel does. Blocks keep neighbouring pages
 * together (runs compress and frame well) while spreading any region of
 * memory over every channel.
 *
 * @module
 */

/** Pages per block dealt to one channel (1 MiB of 4 KiB pages). */
export const BLOCK_PAGES = 256;

/**
 * The channel of `pfn` among `channels`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelOf } from "./partition.ts";
 *
 * assert.equal(channelOf(0, 2), 0);
 * assert.equal(channelOf(256, 2), 1); // blocks of 256 pages, round robin
 * assert.equal(channelOf(512, 2), 0);
 * ```
 */
export function channelOf(pfn: number, channels: number): number {
  return channels === 1 ? 0 : Math.floor(pfn / BLOCK_PAGES) % channels;
}

/**
 * Splits the ascending pfn list `pfns[0..count)` by channel; each part stays
 * ascending.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitByChannel } from "./partition.ts";
 *
 * const parts = splitByChannel(new Uint32Array([1, 300, 600]), 3, 2);
 * assert.deepEqual(parts, [new Uint32Array([1, 600]), new Uint32Array([300])]);
 * ```
 */
export function splitByChannel(
  pfns: Uint32Array,
  count: number,
  channels: number,
): Uint32Array[] {
  if (channels === 1) return [pfns.slice(0, count)];
  // The list ascends, so each block's pages sit together in it: find where
  // they end (one comparison per pfn) and move them as one piece. A round's
  // list is split on the main thread before any channel starts.
  const sizes = new Uint32Array(channels);
  for (let i = 0, j = 0; i < count; i = j) {
    j = blockEnd(pfns, count, i);
    sizes[channelOf(pfns[i], channels)] += j - i;
  }
  const parts = Array.from(sizes, (n) => new Uint32Array(n));
  const at = new Uint32Array(channels);
  for (let i = 0, j = 0; i < count; i = j) {
    j = blockEnd(pfns, count, i);
    const c = channelOf(pfns[i], channels);
    parts[c].set(pfns.subarray(i, j), at[c]);
    at[c] += j - i;
  }
  return parts;
}

/** The index after the last pfn of `pfns[i]`'s block in the ascending list `pfns[0..count)`. */
function blockEnd(pfns: Uint32Array, count: number, i: number): number {
  const end = (Math.floor(pfns[i] / BLOCK_PAGES) + 1) * BLOCK_PAGES;
  let j = i + 1;
  while (j < count && pfns[j] < end) j++;
  return j;
}
