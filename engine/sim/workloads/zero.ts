import { layout, pageOffset, region } from "./_layout.ts";
import { fillKernelText } from "./_layout.ts";
import {
  PAGE_SIZE,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

function regions(pageCount: number): Region[] {
  return layout(pageCount, [["kernel", 0.02], ["heap", 0.9]]);
}

/**
 * `zero`: the seed report's best case. A process walks a large allocation and
 * fills every page with zeros, so every dirtied page is an all-zero page.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isZeroPage } from "@hakobu/hakobu";
 * import { zero } from "./zero.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * zero.init(memory, 1);
 * memory.fill(1); // pretend the heap held data
 * zero.writer(memory, 1).step((pfn) => {
 *   assert.ok(isZeroPage(memory.subarray(pfn * 4096, pfn * 4096 + 4096)));
 * });
 * ```
 */
export const zero: Workload = {
  name: "zero",
  summary: "Best case: a process keeps filling a 90% allocation with zeros",
  models:
    "The seed report's best case: a process that fills the VM's memory pages with zeros " +
    "(think calloc/memset of a huge buffer, or a guest balloon scrubbing freed pages). 2% is " +
    "kernel text, 90% is the process's heap, which it sweeps sequentially, zeroing one page per " +
    "write. Every dirty page is an all-zero page, so a zero/RLE codec sends a few bytes per page " +
    "while raw migration sends 4 KiB: this is where the report measured up to 4x with RLE.",
  dirtyRate: 5000,
  regions,
  init(memory: Uint8Array, seed: number): void {
    fillKernelText(
      memory,
      region(regions(memory.length / PAGE_SIZE), "kernel"),
      seed,
    );
  },
  writer(memory: Uint8Array): WorkloadWriter {
    const heap = region(regions(memory.length / PAGE_SIZE), "heap");
    let cursor = 0;
    return {
      step(mark): void {
        if (heap.count === 0) return;
        const pfn = heap.start + cursor;
        memory.fill(0, pageOffset(pfn), pageOffset(pfn) + PAGE_SIZE);
        mark(pfn);
        cursor = cursor + 1 === heap.count ? 0 : cursor + 1;
      },
    };
  },
};
