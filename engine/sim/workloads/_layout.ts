import { deriveSeed, Prng } from "../prng.ts";
import { PAGE_SIZE, PAGE_WORDS, type Region } from "./workload.ts";

/**
 * Lays regions out back to back from pfn 0: each takes `fraction` of the
 * pages, rounded down to a multiple of `align` pages, clamped to what is left.
 */
export function layout(
  pageCount: number,
  parts: readonly (readonly [name: string, fraction: number, align?: number])[],
): Region[] {
  const out: Region[] = [];
  let next = 0;
  for (const [name, fraction, align = 1] of parts) {
    let count = Math.floor(pageCount * fraction);
    count -= count % align;
    const room = pageCount - next;
    if (count > room) count = room - (room % align);
    out.push({ name, start: next, count });
    next += count;
  }
  return out;
}

/** The region called `name`; throws if the layout has none (a programming error). */
export function region(regions: readonly Region[], name: string): Region {
  const r = regions.find((x) => x.name === name);
  if (!r) throw new Error(`Unknown region "${name}"`);
  return r;
}

/** 32-bit words view of the whole memory (signed: the fast kind for V8 stores). */
export function wordsOf(memory: Uint8Array): Int32Array {
  return new Int32Array(memory.buffer, memory.byteOffset, memory.length / 4);
}

/**
 * Fills pages with kernel-text-like content: dense, non-zero, high-entropy
 * bytes with the skew of machine code (many 0x00/0xff/0x48 bytes), unique per
 * page with overwhelming probability.
 */
export function fillKernelText(
  memory: Uint8Array,
  r: Region,
  seed: number,
): void {
  const words = wordsOf(memory);
  const rng = new Prng(deriveSeed(seed, 0x6b65726e)); // "kern"
  const from = r.start * PAGE_WORDS;
  const to = (r.start + r.count) * PAGE_WORDS;
  rng.fill(words, from, to);
  // Skew: every 4th word keeps only its low bytes, as immediates and
  // displacements in x86 code are mostly small.
  for (let i = from; i < to; i += 4) words[i] &= 0x0000ffff;
}

/** Fills pages with uniformly random words. */
export function fillRandom(memory: Uint8Array, r: Region, rng: Prng): void {
  const words = wordsOf(memory);
  rng.fill(words, r.start * PAGE_WORDS, (r.start + r.count) * PAGE_WORDS);
}

/**
 * Initial image of a process holding one allocation of random words: kernel
 * text in region `"kernel"`, then uniformly random words in region
 * `allocation`, drawn from stream `stream` of `seed`.
 *
 * @example
 * ```ts
 * import { PAGE_SIZE } from "./workload.ts";
 *
 * const memory = new Uint8Array(16 << 20);
 * const rs = layout(memory.length / PAGE_SIZE, [["kernel", 0.02], ["heap", 0.75]]);
 * fillAllocation(memory, 1, { regions: rs, allocation: "heap", stream: 0x68656170 });
 * ```
 */
export function fillAllocation(
  memory: Uint8Array,
  seed: number,
  options: {
    /** The workload's layout for this memory size. */
    readonly regions: readonly Region[];
    /** Name of the region to fill with random words. */
    readonly allocation: string;
    /** Tag that selects the random stream, e.g. `0x68656170` ("heap"). */
    readonly stream: number;
  },
): void {
  fillKernelText(memory, region(options.regions, "kernel"), seed);
  fillRandom(
    memory,
    region(options.regions, options.allocation),
    new Prng(deriveSeed(seed, options.stream)),
  );
}

/** Writes `len` random non-zero bytes at byte offset `off`. */
export function writeNonZeroBytes(
  memory: Uint8Array,
  off: number,
  len: number,
  rng: Prng,
): void {
  for (let i = 0; i < len; i += 4) {
    let r = rng.next();
    for (let k = 0; k < 4 && i + k < len; k++, r >>>= 8) {
      memory[off + i + k] = (r & 0xff) || 0x5a;
    }
  }
}

/** Byte offset of page `pfn`. */
export function pageOffset(pfn: number): number {
  return pfn * PAGE_SIZE;
}
