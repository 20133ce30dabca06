import { deriveSeed, Prng } from "../prng.ts";
import { fillKernelText, layout, region, wordsOf } from "./_layout.ts";
import { scatteredWriter } from "./_scattered_writer.ts";
import {
  PAGE_SIZE,
  PAGE_WORDS,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

function regions(pageCount: number): Region[] {
  return layout(pageCount, [["kernel", 0.03], ["kernel-data", 0.005]]);
}

/**
 * `idle`: a booted guest doing nothing. About 3% of memory holds kernel text
 * and modules (unique, dense pages), 0.5% kernel data (slab objects, run
 * queues, timer wheels); the rest was never touched and is zero. A trickle of
 * small writes (timer ticks, statistics counters) lands in kernel data.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isZeroSpan } from "@hakobu/hakobu";
 * import { idle } from "./idle.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * idle.init(memory, 1);
 * const [kernel, data] = idle.regions(memory.length / 4096);
 * assert.deepEqual([kernel.name, data.name], ["kernel", "kernel-data"]);
 * // Past the kernel's data, memory was never touched.
 * assert.ok(isZeroSpan(memory.subarray((data.start + data.count) * 4096)));
 * ```
 */
export const idle: Workload = {
  name: "idle",
  summary:
    "Booted guest doing nothing: 3% kernel pages, rest zero, a trickle of small writes",
  models:
    "An idle Linux guest right after boot, the seed report's idle VM. The kernel image, " +
    "modules and early page cache fill a few percent of memory with dense unique pages; " +
    "everything else was never touched and reads as zero (a fresh VM's memory is zeroed by the " +
    "hypervisor). The only writes are timer interrupts, scheduler statistics and RCU " +
    "bookkeeping: a few tens of small writes per second into kernel data. Pre-copy converges in " +
    "one round; the first round is dominated by zero pages, the best case for zero/RLE codecs.",
  dirtyRate: 20,
  regions,
  init(memory: Uint8Array, seed: number): void {
    const rs = regions(memory.length / PAGE_SIZE);
    fillKernelText(memory, region(rs, "kernel"), seed);
    // Kernel data: sparse structures, about a quarter of each page in use.
    const data = region(rs, "kernel-data");
    const words = wordsOf(memory);
    const rng = new Prng(deriveSeed(seed, 0x64617461)); // "data"
    for (let p = data.start; p < data.start + data.count; p++) {
      rng.fill(words, p * PAGE_WORDS, p * PAGE_WORDS + PAGE_WORDS / 4);
    }
  },
  writer(memory: Uint8Array, seed: number): WorkloadWriter {
    const data = region(regions(memory.length / PAGE_SIZE), "kernel-data");
    // Counter and timer updates: 8 to 64 bytes, 8-byte aligned.
    return scatteredWriter(memory, data, {
      rng: new Prng(deriveSeed(seed, 0x69646c65)), // "idle"
      length: (rng) => (8 + rng.below(57)) & ~7,
      offset: (len, rng) => rng.below(PAGE_SIZE - len) & ~7,
    });
  },
};
