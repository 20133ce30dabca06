import { deriveSeed, Prng } from "../prng.ts";
import {
  fillKernelText,
  layout,
  pageOffset,
  region,
  wordsOf,
} from "./_layout.ts";
import {
  PAGE_SIZE,
  type Region,
  type Workload,
  type WorkloadWriter,
} from "./workload.ts";

/** Chunk sizes of the small slab classes: memcached's default growth factor 1.25 from 96 bytes. */
const SMALL_CHUNKS = [
  96,
  120,
  152,
  192,
  240,
  304,
  384,
  480,
  600,
  752,
  944,
  1184,
  1480,
  1856,
  2320,
  2904,
  3632,
] as const;
/**
 * Relative popularity of the small classes (share of slab pages), shaped
 * like Facebook's ETC pool: most values are a few hundred bytes.
 */
const SMALL_WEIGHTS = [
  2,
  3,
  4,
  6,
  8,
  9,
  9,
  8,
  7,
  6,
  5,
  4,
  3,
  3,
  2,
  2,
  2,
] as const;
/** Chunk of the large class: 16 pages, for 64 KiB values (rendered fragments, blobs). */
const LARGE_CHUNK = 16 * PAGE_SIZE;
/** Share of slab pages that belong to the large class. */
const LARGE_SHARE = 0.45;
/** Number of popular large values stored under many keys. */
const POPULAR = 8;
/** Share of large items that hold one of the popular values. */
const POPULAR_SHARE = 0.7;
/** Share of item writes that store a large value. */
const LARGE_WRITES = 0.05;
/** Item header (48 bytes, like memcached's item struct) plus a 16-byte key. */
const ITEM_HEAD = 64;
const KEY_OFFSET = 48;

function slabPages(pageCount: number): number {
  return pageCount * 0.1 >= 16 * 256 ? 256 : 16; // 1 MiB slab pages once there is room for 16
}

function regions(pageCount: number): Region[] {
  return layout(pageCount, [
    ["kernel", 0.02],
    ["pagecache", 0.015],
    ["slabs", 0.1, slabPages(pageCount)],
  ]);
}

/** Which class each slab page belongs to: an index into SMALL_CHUNKS, or -1 for the large class. */
function slabClasses(slabCount: number, seed: number): Int8Array {
  const rng = new Prng(deriveSeed(seed, 0x736c6162)); // "slab"
  const total = SMALL_WEIGHTS.reduce((a, b) => a + b, 0);
  const classes = new Int8Array(slabCount);
  for (let s = 0; s < slabCount; s++) {
    if (rng.float() < LARGE_SHARE) {
      classes[s] = -1;
      continue;
    }
    let pick = rng.below(total);
    let c = 0;
    while (pick >= SMALL_WEIGHTS[c]) pick -= SMALL_WEIGHTS[c++];
    classes[s] = c;
  }
  return classes;
}

/** The popular large values, identical in init and writer for a seed. */
function popularValues(seed: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let k = 0; k < POPULAR; k++) {
    const v = new Int32Array((LARGE_CHUNK - ITEM_HEAD) >>> 2);
    new Prng(deriveSeed(seed, 0x706f7075, k)).fill(v, 0, v.length, {
      mask: 0x3f3f3f3f,
      add: 0x20202020,
    });
    out.push(v);
  }
  return out;
}

/** Memory, its slab layout and the item writer shared by init and the LRU writer. */
class Slabs {
  readonly memory: Uint8Array;
  readonly words: Int32Array;
  readonly slabs: Region;
  readonly pagesPerSlab: number;
  readonly classes: Int8Array;
  readonly small: number[] = [];
  readonly large: number[] = [];
  readonly popular: Int32Array[];
  readonly rng: Prng;
  clock = 1;
  cas = 1;

  constructor(memory: Uint8Array, seed: number, stream: number) {
    this.memory = memory;
    this.words = wordsOf(memory);
    const pageCount = memory.length / PAGE_SIZE;
    this.slabs = region(regions(pageCount), "slabs");
    this.pagesPerSlab = slabPages(pageCount);
    this.classes = slabClasses(this.slabs.count / this.pagesPerSlab, seed);
    this.classes.forEach((c, s) => (c < 0 ? this.large : this.small).push(s));
    this.popular = popularValues(seed);
    this.rng = new Prng(deriveSeed(seed, stream));
  }

  chunkSize(slab: number): number {
    const c = this.classes[slab];
    return c < 0 ? LARGE_CHUNK : SMALL_CHUNKS[c];
  }

  chunksPerSlab(slab: number): number {
    return Math.floor((this.pagesPerSlab * PAGE_SIZE) / this.chunkSize(slab));
  }

  /** Stores a fresh item in chunk `chunk` of slab `slab`; returns its byte range. */
  store(slab: number, chunk: number): [number, number] {
    const { memory, words, rng } = this;
    const c = this.classes[slab];
    const size = this.chunkSize(slab);
    const at = pageOffset(this.slabs.start + slab * this.pagesPerSlab) +
      chunk * size;
    let nbytes: number;
    if (c < 0) nbytes = LARGE_CHUNK - ITEM_HEAD - 2;
    else {
      const lo = c === 0 ? 8 : SMALL_CHUNKS[c - 1] - ITEM_HEAD - 1;
      nbytes = lo + rng.below(size - ITEM_HEAD - 2 - lo + 1);
    }
    const key = rng.next();
    const w = at / 4; // chunks are 8-byte aligned; `at` can exceed 2^32 in big VMs
    words[w] = rng.next() & ~7; // next (an address)
    words[w + 1] = rng.next() & ~7; // prev
    words[w + 2] = this.clock; // time
    words[w + 3] = 0; // exptime
    words[w + 4] = nbytes + 2; // nbytes includes "\r\n"
    words[w + 5] = 1 | (0x02 << 16) | ((c < 0 ? SMALL_CHUNKS.length : c) << 24); // refcount, ITEM_LINKED, class
    words[w + 6] = 16; // nkey
    words[w + 7] = this.cas++; // cas
    words[w + 8] = 0;
    words[w + 9] = key; // hash value
    words[w + 10] = 0;
    words[w + 11] = 0;
    const hexKey = key.toString(16).padStart(8, "0");
    const keyText = `key:${hexKey}:0000`.slice(0, 16);
    for (let i = 0; i < 16; i++) {
      memory[at + KEY_OFFSET + i] = keyText.charCodeAt(i);
    }
    const v = (at + ITEM_HEAD) / 4;
    if (c < 0 && rng.float() < POPULAR_SHARE) {
      words.set(this.popular[rng.below(POPULAR)], v);
    } else {
      rng.fill(words, v, v + Math.ceil(nbytes / 4), {
        mask: 0x3f3f3f3f,
        add: 0x20202020,
      });
    }
    memory[at + ITEM_HEAD + nbytes] = 0x0d;
    memory[at + ITEM_HEAD + nbytes + 1] = 0x0a;
    return [at, at + ITEM_HEAD + nbytes + 2];
  }
}

/**
 * `memcached`: an in-memory key-value cache. Mostly zero memory, slab pages
 * of items with realistic value sizes, popular large values stored under many
 * keys (duplicate pages), and LRU churn storing new items into slab chunks.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isZeroPage } from "@hakobu/hakobu";
 * import { memcached } from "./memcached.ts";
 *
 * const memory = new Uint8Array(64 << 20);
 * memcached.init(memory, 1);
 * let zeroPages = 0;
 * for (let at = 0; at < memory.length; at += 4096) {
 *   if (isZeroPage(memory.subarray(at, at + 4096))) zeroPages++;
 * }
 * assert.ok(zeroPages > memory.length / 4096 / 2); // mostly zero memory
 * ```
 */
export const memcached: Workload = {
  name: "memcached",
  summary:
    "Key-value cache: ~88% zero pages, slab classes, duplicate large values, LRU churn",
  models:
    "Memcached, one of the seed report's real applications, shaped after a measured 1 GiB " +
    "Linux + memcached guest (88% zero pages; zero + page dedup left about 10% of memory). 2% is " +
    "kernel text, 1.5% page cache holding copies of kernel pages (module files), 10% slab pages " +
    "(1 MiB each, 16 pages in small VMs) split into memcached's slab classes (96 B to 3.6 KiB " +
    "chunks, growth factor 1.25, popularity shaped like Facebook's ETC pool) plus a 64 KiB class; " +
    "70% of large items hold one of 8 popular values (the same rendered fragment cached under " +
    "many keys), so their value pages are duplicates. Slabs are 80-100% full; the rest of memory " +
    "was never touched. Writes are LRU churn: a new item (48-byte header, key, value) replaces " +
    "the one in a random chunk, 5% of them large. Zero detection removes most of the first " +
    "round, dedup the duplicate values, delta the small in-page item changes.",
  dirtyRate: 2000,
  regions,
  init(memory: Uint8Array, seed: number): void {
    const rs = regions(memory.length / PAGE_SIZE);
    const kernel = region(rs, "kernel");
    fillKernelText(memory, kernel, seed);
    const cache = region(rs, "pagecache");
    const pick = new Prng(deriveSeed(seed, 0x63616368)); // "cach"
    for (
      let p = cache.start;
      p < cache.start + cache.count && kernel.count > 0;
      p++
    ) {
      const src = pageOffset(kernel.start + pick.below(kernel.count));
      memory.copyWithin(pageOffset(p), src, src + PAGE_SIZE);
    }
    const slabs = new Slabs(memory, seed, 0x696e6974); // "init"
    for (let s = 0; s < slabs.classes.length; s++) {
      const chunks = slabs.chunksPerSlab(s);
      const used = Math.max(
        1,
        Math.floor(chunks * (0.8 + 0.2 * slabs.rng.float())),
      );
      for (let k = 0; k < used; k++) slabs.store(s, k);
    }
  },
  writer(memory: Uint8Array, seed: number): WorkloadWriter {
    const slabs = new Slabs(memory, seed, 0x6c727577); // "lruw"
    slabs.clock = 1000;
    const { rng } = slabs;
    return {
      step(mark): void {
        const large = slabs.large.length > 0 &&
          (slabs.small.length === 0 || rng.float() < LARGE_WRITES);
        const list = large ? slabs.large : slabs.small;
        if (list.length === 0) return;
        const slab = list[rng.below(list.length)];
        const [from, to] = slabs.store(
          slab,
          rng.below(slabs.chunksPerSlab(slab)),
        );
        for (let p = Math.floor(from / PAGE_SIZE); p * PAGE_SIZE < to; p++) {
          mark(p);
        }
        if ((slabs.cas & 255) === 0) slabs.clock++;
      },
    };
  },
};
