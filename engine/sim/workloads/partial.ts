import { layout, region } from "./_layout.ts";
import { allocationWorkload } from "./_scattered_writer.ts";
import type { Region, Workload } from "./workload.ts";

function regions(pageCount: number): Region[] {
  const rs = layout(pageCount, [["kernel", 0.02], ["allocation", 0.6]]);
  const alloc = region(rs, "allocation");
  // The hot window: 10% of memory (a sixth of the allocation), a quarter in.
  const count = Math.min(Math.floor(pageCount * 0.1), alloc.count);
  const start = alloc.start + Math.floor((alloc.count - count) / 4);
  return [...rs, { name: "hot", start, count }];
}

/**
 * `partial`: updates only a hot window (10% of memory) of a 60% allocation,
 * with small writes inside each page.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { partial } from "./partial.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * partial.init(memory, 1);
 * const hot = partial.regions(memory.length / 4096).find((r) =>
 *   r.name === "hot"
 * )!;
 * partial.writer(memory, 1).step((pfn) => {
 *   assert.ok(pfn >= hot.start && pfn < hot.start + hot.count);
 * });
 * ```
 */
export const partial: Workload = allocationWorkload({
  name: "partial",
  summary: "Small updates confined to a hot 10% window of a 60% allocation",
  models:
    "The seed report's partial-update synthetic load: a process allocates a large buffer " +
    "(60% of memory, random content) but keeps updating only part of it, a hot window of 10% " +
    "of memory, a few small fields (16-128 bytes) per page per write, like the hot rows of a " +
    "table or the active part of a heap. The writable working set is small and fixed, so " +
    "pre-copy converges once the cold 50% is sent, and the same pages are rewritten round after " +
    "round with small changes: the case for delta compression against the previously sent page.",
  dirtyRate: 3000,
  regions,
  allocation: "allocation",
  fillStream: 0x616c6c6f, // "allo"
  target: "hot",
  writeStream: 0x70617274, // "part"
  scatter: {
    fields: (rng) => 1 + rng.below(4),
    length: (rng) => 16 + rng.below(113),
  },
});
