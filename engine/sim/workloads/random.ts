import { layout } from "./_layout.ts";
import { allocationWorkload } from "./_scattered_writer.ts";
import type { Region, Workload } from "./workload.ts";

function regions(pageCount: number): Region[] {
  return layout(pageCount, [["kernel", 0.02], ["heap", 0.75]]);
}

/**
 * `random`: random small writes all over a large allocation (75% of memory).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { random } from "./random.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * random.init(memory, 1);
 * const heap = random.regions(memory.length / 4096).find((r) =>
 *   r.name === "heap"
 * )!;
 * random.writer(memory, 1).step((pfn) => {
 *   assert.ok(pfn >= heap.start && pfn < heap.start + heap.count);
 * });
 * ```
 */
export const random: Workload = allocationWorkload({
  name: "random",
  summary:
    "Random 8-64 byte writes anywhere in a 75% allocation of random data",
  models:
    "The seed report's random-access synthetic load: a process holds a large allocation " +
    "(75% of memory, initialised with random data, like a hash table or an in-memory index) and " +
    "updates 8-64 bytes at random places. Writes have no locality, so the working set is the " +
    "whole allocation and pages are rarely rewritten within a round; each dirty page differs " +
    "from its previous version in a few bytes only, which is what delta compression (XBZRLE) " +
    "exploits while zero detection and dedup find nothing.",
  dirtyRate: 3000,
  regions,
  allocation: "heap",
  fillStream: 0x68656170, // "heap"
  target: "heap",
  writeStream: 0x72616e64, // "rand"
  scatter: { length: (rng) => 8 + rng.below(57) },
});
