import assert from "node:assert/strict";
import { PAGE_SIZE } from "../../engine/plan.ts";
import { Prng } from "../../engine/sim/prng.ts";
import {
  SAMPLE_LIMIT_BYTES,
  SAMPLE_START_BYTES,
  sampleMemoryProfile,
} from "./memory_sample.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** A peek over `fill(start, size)`, recording where it read. */
function recorder(fill: (start: number, size: number) => Uint8Array) {
  const reads: [number, number][] = [];
  return {
    reads,
    peek: (start: number, size: number) => {
      reads.push([start, size]);
      return fill(start, size);
    },
  };
}

Deno.test("memory sample: reads whole pages, one run per stratum, between 1 MiB and 2 GiB", () => {
  for (const memoryBytes of [64 * MiB, 3 * GiB, 16 * GiB]) {
    const r = recorder((_, size) => new Uint8Array(size));
    const s = sampleMemoryProfile(r.peek, memoryBytes, {
      pages: 256,
      chunkPages: 8,
      seed: 7,
    });
    assert.equal(s.reads, 32);
    assert.equal(r.reads.length, 32);
    const end = Math.min(memoryBytes, SAMPLE_LIMIT_BYTES);
    const stratum = (end - SAMPLE_START_BYTES) / 32;
    r.reads.forEach(([start, size], i) => {
      assert.equal(size, 8 * PAGE_SIZE);
      assert.equal(start % PAGE_SIZE, 0);
      assert.ok(start >= SAMPLE_START_BYTES, `${start}`);
      assert.ok(start + size <= end, `${start} + ${size} > ${end}`);
      // run i lies in stratum i: the sample covers the whole range
      const k = Math.floor((start - SAMPLE_START_BYTES) / stratum);
      assert.ok(k === i || k === i - 1, `run ${i} in stratum ${k}`);
    });
    // equal seeds read the same places, others not
    const again = recorder((_, size) => new Uint8Array(size));
    sampleMemoryProfile(again.peek, memoryBytes, { pages: 256, seed: 7 });
    assert.deepEqual(again.reads, r.reads);
    const other = recorder((_, size) => new Uint8Array(size));
    sampleMemoryProfile(other.peek, memoryBytes, { pages: 256, seed: 8 });
    assert.notDeepEqual(other.reads, r.reads);
  }
});

Deno.test("memory sample: zero memory is all zero pages and gives no codec ratio", () => {
  const s = sampleMemoryProfile((_, n) => new Uint8Array(n), 512 * MiB);
  assert.equal(s.pages, 256);
  assert.equal(s.zeroPages, 256);
  assert.equal(s.profile.zeroFraction, 1);
  assert.deepEqual(s.profile.ratios, {});
});

Deno.test("memory sample: random memory has no zero pages and no codec gains", () => {
  const rng = new Prng(3);
  const s = sampleMemoryProfile((_, n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      new DataView(b.buffer).setUint32(i, rng.next());
    }
    return b;
  }, 1 * GiB);
  assert.equal(s.profile.zeroFraction, 0);
  assert.deepEqual(s.profile.ratios, {}, JSON.stringify(s.profile.ratios));
});

Deno.test("memory sample: the zero share and the ratios follow the memory's content", () => {
  // Every other 32 KiB run is zero; the others hold text-like bytes.
  const memory = new Uint8Array(256 * MiB);
  const words = new TextEncoder().encode(
    "the quick brown fox jumps over the lazy dog; ".repeat(1000),
  );
  for (let at = 0; at < memory.length; at += 64 * 1024) {
    memory.set(words.subarray(0, 32 * 1024), at);
  }
  const s = sampleMemoryProfile(
    (start, n) => memory.slice(start, start + n),
    memory.length,
    { pages: 512, seed: 2 },
  );
  assert.ok(
    s.profile.zeroFraction > 0.3 && s.profile.zeroFraction < 0.7,
    `${s.profile.zeroFraction}`,
  );
  assert.equal(s.zeroPages, Math.round(s.profile.zeroFraction * 512));
  assert.ok(s.profile.ratios.lz4 > 5, JSON.stringify(s.profile.ratios));
  assert.ok(s.profile.ratios.zstd >= s.profile.ratios.lz4);
  assert.equal(s.profile.ratios.delta, undefined, "delta is not sampled");
});

Deno.test("memory sample: bad sizes and short reads are errors that say so", () => {
  const zero = (_: number, n: number) => new Uint8Array(n);
  assert.throws(
    () => sampleMemoryProfile(zero, GiB, { pages: 100, chunkPages: 8 }),
    /Cannot sample 100 pages in runs of 8: expected a positive multiple/,
  );
  assert.throws(
    () => sampleMemoryProfile(zero, 1.5 * MiB, { pages: 256 }),
    /Cannot sample 256 pages of a 1572864-byte VM/,
  );
  assert.throws(
    () => sampleMemoryProfile((_, n) => new Uint8Array(n - 1), GiB),
    /Reading 32768 bytes of memory at 0x[0-9a-f]+ gave 32767/,
  );
});
