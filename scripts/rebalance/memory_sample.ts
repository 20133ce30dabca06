/**
 * A running VM's {@link MemoryProfile} from a sample of its pages, so that
 * predictions for live hosts count the policy's codecs too (without one, a
 * live VM is costed as incompressible: {@link UNKNOWN_MEMORY}).
 *
 * The sample: `pages` pages read as `pages / chunkPages` runs of
 * `chunkPages` contiguous pages, one run at a random place in each of as
 * many equal strata of guest-physical memory between 1 MiB and
 * {@link SAMPLE_LIMIT_BYTES} (or the VM's size, if smaller). That range is
 * RAM on both of QEMU's PC machine types whatever the VM's size (above it,
 * RAM may continue only past 4 GiB). The profile: the share of all-zero
 * pages, and per codec the ratio its batch encoder reaches on the non-zero
 * pages, encoded together as one batch of the engine's (a codec whose ratio
 * is not above 1 is left out: the model takes it to decline).
 *
 * What it cannot see: duplicates between pages far apart (`dedup` finds
 * few in a small sample, so its ratio is low), how the guest rewrites pages
 * (`delta` is not sampled), and memory above the sampled range.
 *
 * @module
 */

import { BatchEncoderChain } from "../../engine/codecs/batch_chain.ts";
import { PageBatchBuilder } from "../../engine/pipeline/page_batch.ts";
import { PAGE_SIZE } from "../../engine/plan.ts";
import { Prng } from "../../engine/sim/prng.ts";
import { isZeroPage } from "../../engine/zero_page.ts";
import type { MemoryProfile } from "./memory_model.ts";

/** Reads `size` bytes of guest-physical memory at `start` (e.g. `LibvirtDomain.memoryPeek`). */
export type PeekMemory = (start: number, size: number) => Uint8Array;

/** Where sampling starts: below 1 MiB lie the BIOS areas and the VGA hole. */
export const SAMPLE_START_BYTES = 2 ** 20;

/** Where sampling ends at most: 2 GiB, RAM on QEMU's pc and q35 machines at any VM size. */
export const SAMPLE_LIMIT_BYTES = 2 ** 31;

/** Contiguous pages per read by default (32 KiB: one call each); a sample is a whole number of reads. */
export const SAMPLE_CHUNK_PAGES = 8;

/** The codecs whose ratio a sample measures by default. */
export const SAMPLED_CODECS: readonly string[] = Object.freeze([
  "rle",
  "dedup",
  "lz4",
  "zstd",
]);

/** Options of {@link sampleMemoryProfile}. */
export interface MemorySampleOptions {
  /** Pages to read (default 256): a multiple of `chunkPages`. */
  readonly pages?: number;
  /** Contiguous pages per read (default {@link SAMPLE_CHUNK_PAGES}). */
  readonly chunkPages?: number;
  /** Seed of the places read (default 1). */
  readonly seed?: number;
  /** Codecs to measure (default {@link SAMPLED_CODECS}). */
  readonly codecs?: readonly string[];
}

/** What a sample measured: the profile, and what it read. */
export interface MemorySample {
  /** The profile (its `source` says how it was measured). */
  readonly profile: MemoryProfile;
  /** Pages read. */
  readonly pages: number;
  /** All-zero pages among them. */
  readonly zeroPages: number;
  /** Reads made (calls of the peek function). */
  readonly reads: number;
}

/**
 * Samples a VM's memory through `peek` and measures its profile: the share
 * of zero pages and each codec's ratio on the others.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleMemoryProfile } from "./memory_sample.ts";
 *
 * // A 64 MiB "guest" whose upper half is zero and whose lower half holds
 * // a byte ramp (what libvirt's test driver returns): lz4 squeezes it.
 * const memory = new Uint8Array(64 * 2 ** 20);
 * for (let i = 0; i < memory.length / 2; i++) memory[i] = i & 0xff;
 * const peek = (start: number, size: number) => memory.slice(start, start + size);
 * const s = sampleMemoryProfile(peek, memory.length, { pages: 256 });
 * assert.equal(s.pages, 256);
 * assert.ok(s.profile.zeroFraction > 0.3 && s.profile.zeroFraction < 0.7);
 * assert.ok(s.profile.ratios.lz4 > 20);
 * assert.match(s.profile.source, /^sampled 256 pages/);
 * ```
 *
 * @throws {RangeError} for a sample size that is not a positive multiple of
 *   `chunkPages`, or a VM too small to sample.
 * @throws whatever `peek` throws (e.g. a `LibvirtError`).
 */
export function sampleMemoryProfile(
  peek: PeekMemory,
  memoryBytes: number,
  options: MemorySampleOptions = {},
): MemorySample {
  const chunkPages = options.chunkPages ?? SAMPLE_CHUNK_PAGES;
  const pages = options.pages ?? 256;
  if (
    !Number.isInteger(chunkPages) || chunkPages < 1 ||
    !Number.isInteger(pages) || pages < chunkPages || pages % chunkPages !== 0
  ) {
    throw new RangeError(
      `Cannot sample ${pages} pages in runs of ${chunkPages}: expected a positive multiple of the run length`,
    );
  }
  const chunkBytes = chunkPages * PAGE_SIZE;
  const end = Math.min(memoryBytes, SAMPLE_LIMIT_BYTES);
  const runs = pages / chunkPages;
  const stratum = Math.floor((end - SAMPLE_START_BYTES) / runs / PAGE_SIZE) *
    PAGE_SIZE;
  if (stratum < chunkBytes) {
    throw new RangeError(
      `Cannot sample ${pages} pages of a ${memoryBytes}-byte VM: ${runs} runs of ${chunkBytes} bytes do not fit between 1 MiB and its end`,
    );
  }
  const rng = new Prng(options.seed ?? 1);
  const memory = new Uint8Array(pages * PAGE_SIZE);
  for (let r = 0; r < runs; r++) {
    const slack = (stratum - chunkBytes) / PAGE_SIZE;
    const start = SAMPLE_START_BYTES + r * stratum +
      rng.below(slack + 1) * PAGE_SIZE;
    const bytes = peek(start, chunkBytes);
    if (bytes.length !== chunkBytes) {
      throw new RangeError(
        `Reading ${chunkBytes} bytes of memory at 0x${
          start.toString(16)
        } gave ${bytes.length}`,
      );
    }
    memory.set(bytes, r * chunkBytes);
  }

  const nonZero: number[] = [];
  for (let p = 0; p < pages; p++) {
    if (!isZeroPage(memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE))) {
      nonZero.push(p);
    }
  }
  const ratios: Record<string, number> = {};
  if (nonZero.length > 0) {
    for (const name of options.codecs ?? SAMPLED_CODECS) {
      const batch = new PageBatchBuilder({
        pageSize: PAGE_SIZE,
        nonZeroPages: nonZero.length,
        maxPages: nonZero.length,
      });
      for (const p of nonZero) batch.addFrom(memory, p);
      const chain = new BatchEncoderChain({
        pageSize: PAGE_SIZE,
        pageCount: pages,
      });
      chain.select([{ name }]);
      const { payload } = chain.encode(batch, (n) => new Uint8Array(n));
      const ratio = (nonZero.length * PAGE_SIZE) / payload.length;
      // Two decimals, as the measured workload profiles are given.
      if (ratio > 1) ratios[name] = Math.round(ratio * 100) / 100;
    }
  }
  const zeroPages = pages - nonZero.length;
  return {
    profile: Object.freeze({
      zeroFraction: zeroPages / pages,
      ratios: Object.freeze(ratios),
      source: `sampled ${pages} pages (${runs} reads of ${
        chunkBytes / 1024
      } KiB) between 1 MiB and ${
        end >= 2 ** 30
          ? `${(end / 2 ** 30).toFixed(end % 2 ** 30 ? 1 : 0)} GiB`
          : `${Math.round(end / 2 ** 20)} MiB`
      }`,
    }),
    pages,
    zeroPages,
    reads: runs,
  };
}
