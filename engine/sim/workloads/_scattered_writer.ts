import { deriveSeed, Prng } from "../prng.ts";
import {
  fillAllocation,
  pageOffset,
  region,
  writeNonZeroBytes,
} from "./_layout.ts";
import {
  PAGE_SIZE,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

/** How a {@link scatteredWriter} shapes the fields it writes into a page. */
export interface ScatterOptions {
  /** The stream every choice is drawn from, in a fixed order per step. */
  readonly rng: Prng;
  /** Fields per write; one (and no draw) when left out. */
  readonly fields?: (rng: Prng) => number;
  /** Length in bytes of one field. */
  readonly length: (rng: Prng) => number;
  /**
   * Byte offset of a field of `len` bytes inside the page; when left out,
   * anywhere it fits: `rng.below(PAGE_SIZE - len + 1)`.
   */
  readonly offset?: (len: number, rng: Prng) => number;
}

/**
 * A writer that, per step, picks a random page of `target` and overwrites a
 * few small fields in it with random non-zero bytes, then marks the page.
 * Per step it draws, in order: the page, the field count (if `fields` is
 * given), then for each field its length, its offset and its bytes. Does
 * nothing when `target` is empty.
 *
 * @example
 * ```ts
 * import { Prng } from "../prng.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * const heap = { name: "heap", start: 0, count: 4096 };
 * const writer = scatteredWriter(memory, heap, {
 *   rng: new Prng(1),
 *   length: (rng) => 8 + rng.below(57),
 * });
 * writer.step((pfn) => console.log("dirtied", pfn));
 * ```
 */
export function scatteredWriter(
  memory: Uint8Array,
  target: Region,
  options: ScatterOptions,
): WorkloadWriter {
  const { rng, fields, length } = options;
  const offset = options.offset ??
    ((len: number, r: Prng): number => r.below(PAGE_SIZE - len + 1));
  return {
    step(mark): void {
      if (target.count === 0) return;
      const pfn = target.start + rng.below(target.count);
      const n = fields ? fields(rng) : 1;
      for (let f = 0; f < n; f++) {
        const len = length(rng);
        const off = offset(len, rng);
        writeNonZeroBytes(memory, pageOffset(pfn) + off, len, rng);
      }
      mark(pfn);
    },
  };
}

/** A {@link Workload}'s words and layout, and what {@link allocationWorkload} fills and writes. */
export interface AllocationWorkloadSpec
  extends Omit<Workload, "init" | "writer"> {
  /** The region `init` fills with random words (see `fillAllocation`). */
  readonly allocation: string;
  /** The seed's stream those words come from, e.g. `0x68656170` ("heap"). */
  readonly fillStream: number;
  /** The region the writer dirties. */
  readonly target: string;
  /** The seed's stream the writer draws from, e.g. `0x72616e64` ("rand"). */
  readonly writeStream: number;
  /** How the writer shapes its fields. */
  readonly scatter: Omit<ScatterOptions, "rng">;
}

/**
 * A workload of one process over one allocation of random words: `init`
 * fills `allocation`, the writer makes {@link scatteredWriter}'s small
 * writes over `target`.
 *
 * @example
 * ```ts
 * import { layout } from "./_layout.ts";
 *
 * const w = allocationWorkload({
 *   name: "heap", summary: "Random writes", models: "A heap", dirtyRate: 100,
 *   regions: (pages) => layout(pages, [["kernel", 0.02], ["heap", 0.5]]),
 *   allocation: "heap", fillStream: 1, target: "heap", writeStream: 2,
 *   scatter: { length: (rng) => 8 + rng.below(57) },
 * });
 * w.init(new Uint8Array(1 << 20), 1);
 * ```
 */
export function allocationWorkload(spec: AllocationWorkloadSpec): Workload {
  const { allocation, fillStream, target, writeStream, scatter, ...words } =
    spec;
  return {
    ...words,
    init(memory: Uint8Array, seed: number): void {
      fillAllocation(memory, seed, {
        regions: spec.regions(memory.length / PAGE_SIZE),
        allocation,
        stream: fillStream,
      });
    },
    writer(memory: Uint8Array, seed: number): WorkloadWriter {
      const pages = region(spec.regions(memory.length / PAGE_SIZE), target);
      return scatteredWriter(memory, pages, {
        ...scatter,
        rng: new Prng(deriveSeed(seed, writeStream)),
      });
    },
  };
}
