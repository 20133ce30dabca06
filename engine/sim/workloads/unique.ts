import { deriveSeed, Prng } from "../prng.ts";
import { layout, wordsOf } from "./_layout.ts";
import {
  PAGE_SIZE,
  PAGE_WORDS,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

/** Marker in word 3 of every coloured page ("COLR"). */
const COLOUR_MAGIC = 0x524c4f43;

function regions(pageCount: number): Region[] {
  return layout(pageCount, [["coloured", 1]]);
}

/**
 * Colours page `pfn` for `generation`: a 16-byte header (pfn, generation,
 * seed, magic) then pseudo-random words from (seed, pfn, generation). The pfn
 * in the header makes any two pages differ.
 */
function colour(
  words: Int32Array,
  pfn: number,
  generation: number,
  seed: number,
): void {
  const base = pfn * PAGE_WORDS;
  words[base] = pfn;
  words[base + 1] = generation;
  words[base + 2] = seed;
  words[base + 3] = COLOUR_MAGIC;
  new Prng(deriveSeed(seed, pfn, generation)).fill(
    words,
    base + 4,
    base + PAGE_WORDS,
  );
}

/**
 * `unique`: the seed report's worst case. Every page of memory is coloured so
 * that all pages differ pairwise, and writes recolour random pages with a new
 * generation so they stay distinct (from each other and from what was sent).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex, rangeDigests } from "@hakobu/hakobu";
 * import { unique } from "./unique.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * unique.init(memory, 1);
 * const pages = memory.length / 4096;
 * const digests = rangeDigests(memory, 4096, 0, pages); // one SHA-256 per page
 * const distinct = new Set<string>();
 * for (let p = 0; p < pages; p++) {
 *   distinct.add(hex(digests.subarray(p * 32, p * 32 + 32)));
 * }
 * assert.equal(distinct.size, pages); // every page differs from every other
 * ```
 */
export const unique: Workload = {
  name: "unique",
  summary:
    "Worst case: every page coloured differently, random pages recoloured",
  models:
    "The seed report's worst case: a process that colours every page so that all pages " +
    "differ. Each page carries a header (pfn, generation) and high-entropy content derived from " +
    "(seed, pfn, generation), so no page is zero, no two pages are equal, a rewritten page shares " +
    "nothing with its previous version and general compressors find nothing. Zero detection, " +
    "delta and dedup all fail; only their overhead shows (the report measured 1.2x with RLE).",
  dirtyRate: 5000,
  regions,
  init(memory: Uint8Array, seed: number): void {
    const words = wordsOf(memory);
    const n = memory.length / PAGE_SIZE;
    for (let pfn = 0; pfn < n; pfn++) colour(words, pfn, 0, seed);
  },
  writer(memory: Uint8Array, seed: number): WorkloadWriter {
    const words = wordsOf(memory);
    const n = memory.length / PAGE_SIZE;
    const rng = new Prng(deriveSeed(seed, 0x756e6971)); // "uniq"
    return {
      step(mark): void {
        const pfn = rng.below(n);
        colour(words, pfn, (words[pfn * PAGE_WORDS + 1] + 1) >>> 0, seed);
        mark(pfn);
      },
    };
  },
};
