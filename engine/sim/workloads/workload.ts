/**
 * What a simulated workload is: initial memory content plus a writer that the
 * VM's worker calls in a loop, at the configured dirty rate, over shared
 * memory.
 *
 * @module
 */

import { PAGE_SIZE } from "../../plan.ts";

// The workloads take the page size from here, beside PAGE_WORDS.
export { PAGE_SIZE };

/** Words (`Uint32`) per page. */
export const PAGE_WORDS: number = PAGE_SIZE >>> 2;

/** A named run of pages in guest memory, e.g. the kernel's text or a heap. */
export interface Region {
  /** What lives there, e.g. `"kernel"`, `"heap"`, `"wal"`. */
  readonly name: string;
  /** First pfn. */
  readonly start: number;
  /** Number of pages (0 in a VM too small to hold it). */
  readonly count: number;
}

/**
 * Called by a writer after it finished writing the bytes of page `pfn`; the
 * worker then sets the page's dirty bit and counts the page write.
 */
export type MarkDirty = (pfn: number) => void;

/** A running workload: one logical write per {@link WorkloadWriter.step}. */
export interface WorkloadWriter {
  /**
   * Performs one logical write (a page fill, a value store, a transaction),
   * calling `mark(pfn)` after the bytes of each page it touched are written.
   * The worker checks for pause between steps, never inside one.
   */
  step(mark: MarkDirty): void;
}

/**
 * A simulated guest workload. Memory layout depends only on the page count;
 * content depends only on the seed; so a (size, workload, seed) triple always
 * produces the same initial image.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Workload, workloadByName } from "@hakobu/hakobu";
 *
 * const w: Workload = workloadByName("random");
 * const memory = new Uint8Array(16 << 20);
 * w.init(memory, 1);
 * const writer = w.writer(memory, 1);
 * const dirtied: number[] = [];
 * writer.step((pfn) => dirtied.push(pfn));
 * assert.equal(dirtied.length, 1); // one logical write, one page
 * ```
 */
export interface Workload {
  /** Registry name, e.g. `"memcached"`. */
  readonly name: string;
  /** One line for listings. */
  readonly summary: string;
  /** What real behaviour it models and why, for reports and the REPL. */
  readonly models: string;
  /** Default dirty rate in page writes per second. */
  readonly dirtyRate: number;
  /** The memory layout for a VM of `pageCount` pages. */
  regions(pageCount: number): readonly Region[];
  /** Writes the initial content into zeroed `memory`, deterministically from `seed`. */
  init(memory: Uint8Array, seed: number): void;
  /** A writer over `memory` (already initialised with the same seed). */
  writer(memory: Uint8Array, seed: number): WorkloadWriter;
}
