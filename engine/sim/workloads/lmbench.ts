import {
  fillAllocation,
  layout,
  pageOffset,
  region,
  wordsOf,
} from "./_layout.ts";
import {
  PAGE_SIZE,
  PAGE_WORDS,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

/** The write kernels of bw_mem that the writer cycles through, one per pass over the buffer. */
export const LMBENCH_OPS = ["bcopy", "fwr", "bzero"] as const;

function regions(pageCount: number): Region[] {
  return layout(pageCount, [["kernel", 0.02], ["src", 0.2], ["dst", 0.2]]);
}

/**
 * `lmbench`: bw_mem-style streaming bandwidth: sequential writes sweeping a
 * large destination buffer, wrapping around, one bw_mem kernel per pass.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lmbench } from "./lmbench.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * lmbench.init(memory, 1);
 * const dst = lmbench.regions(memory.length / 4096).find((r) =>
 *   r.name === "dst"
 * )!;
 * const dirtied: number[] = [];
 * lmbench.writer(memory, 1).step((pfn) => dirtied.push(pfn));
 * assert.deepEqual(dirtied, [dst.start]); // the sweep starts at its start
 * ```
 */
export const lmbench: Workload = {
  name: "lmbench",
  summary:
    "LMBench bw_mem: sequential page writes sweeping a 20% buffer (bcopy, fwr, bzero)",
  models:
    "LMBench's bw_mem, the seed report's memory-intensive load: two 20% buffers; the " +
    "benchmark streams over the destination page by page, wrapping around, and each pass runs " +
    "one write kernel in turn: bcopy (dst = src, so dirty pages duplicate source pages), fwr " +
    "(word stores of a constant, so all dirty pages are equal) and bzero (zero pages). Writes are " +
    "strictly sequential with the largest writable working set of all workloads, which defeats " +
    "pre-copy unless the link outruns the sweep; the default rate (8000 pages/s, 31 MiB/s) is far " +
    "below real bw_mem (GB/s) so that a 1 GiB VM still converges over 1 Gbit/s. Dedup and zero " +
    "detection catch what pass they can.",
  dirtyRate: 8000,
  regions,
  init(memory: Uint8Array, seed: number): void {
    const rs = regions(memory.length / PAGE_SIZE);
    fillAllocation(memory, seed, {
      regions: rs,
      allocation: "src",
      stream: 0x62776d65, // "bwme"
    });
    const src = region(rs, "src");
    const dst = region(rs, "dst");
    // A first bcopy pass has run: dst holds a copy of src.
    memory.copyWithin(
      pageOffset(dst.start),
      pageOffset(src.start),
      pageOffset(src.start + dst.count),
    );
  },
  writer(memory: Uint8Array): WorkloadWriter {
    const rs = regions(memory.length / PAGE_SIZE);
    const src = region(rs, "src");
    const dst = region(rs, "dst");
    const words = wordsOf(memory);
    let cursor = 0;
    let pass = 1;
    return {
      step(mark): void {
        if (dst.count === 0) return;
        const pfn = dst.start + cursor;
        const at = pageOffset(pfn);
        const op = LMBENCH_OPS[pass % LMBENCH_OPS.length];
        if (op === "bcopy") {
          memory.copyWithin(
            at,
            pageOffset(src.start + cursor),
            pageOffset(src.start + cursor) + PAGE_SIZE,
          );
        } else if (op === "fwr") {
          words.fill(pass, pfn * PAGE_WORDS, (pfn + 1) * PAGE_WORDS);
        } else memory.fill(0, at, at + PAGE_SIZE);
        mark(pfn);
        if (++cursor === dst.count) {
          cursor = 0;
          pass++;
        }
      },
    };
  },
};
