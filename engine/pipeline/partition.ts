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
 * import { channelOf } from "./partition.ts";
 * channelOf(0, 2); // 0
 * channelOf(256, 2); // 1
 * channelOf(512, 2); // 0
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
 * import { splitByChannel } from "./partition.ts";
 * const parts = splitByChannel(new Uint32Array([1, 300, 600]), 3, 2);
 * [...parts[0]]; // [1, 600]
 * [...parts[1]]; // [300]
 * ```
 */
export function splitByChannel(
  pfns: Uint32Array,
  count: number,
  channels: number,
): Uint32Array[] {
  if (channels === 1) return [pfns.slice(0, count)];
  const sizes = new Uint32Array(channels);
  for (let i = 0; i < count; i++) sizes[channelOf(pfns[i], channels)]++;
  const parts = Array.from(sizes, (n) => new Uint32Array(n));
  const at = new Uint32Array(channels);
  for (let i = 0; i < count; i++) {
    const c = channelOf(pfns[i], channels);
    parts[c][at[c]++] = pfns[i];
  }
  return parts;
}
