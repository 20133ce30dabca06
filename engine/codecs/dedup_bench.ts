/**
 * `deno bench -A engine/codecs/dedup_bench.ts`: dedup encode throughput on
 * 64 MiB of pages, half of them repeats of earlier pages, and the raw
 * fingerprint speed.
 */
import { fingerprint128 } from "./_fingerprint.ts";
import { DedupEncoder } from "./dedup.ts";
import { PAGE_SIZE } from "../plan.ts";

const PAGES = 16384; // 64 MiB
const memory = new Uint8Array(PAGES * PAGE_SIZE);
const words = new Uint32Array(memory.buffer);
let x = 0x12345678;
for (let i = 0; i < words.length; i++) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  words[i] = x;
}
// Every odd page repeats an earlier even page: 50% duplicates.
for (let p = 1; p < PAGES; p += 2) {
  const src = ((Math.imul(p, 0x9e3779b1) >>> 0) % p) & ~1;
  memory.copyWithin(p * PAGE_SIZE, src * PAGE_SIZE, (src + 1) * PAGE_SIZE);
}

function run(chunkBytes: number): void {
  const enc = new DedupEncoder({
    pageSize: PAGE_SIZE,
    pageCount: PAGES,
    options: { chunkBytes },
  });
  const out = new Uint8Array(PAGE_SIZE);
  for (let p = 0; p < PAGES; p++) {
    const page = memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    const n = enc.encode(p, page, out);
    enc.sent(p, page, n >= 0 ? 4 : 0);
  }
}

for (const chunkBytes of [4096, 1024]) {
  Deno.bench(
    `dedup encode+sent, 64 MiB, 50% duplicate pages, chunkBytes ${chunkBytes}`,
    {
      n: 5,
    },
    () => run(chunkBytes),
  );
}

Deno.bench("fingerprint128, 64 MiB in 4 KiB chunks", { n: 5 }, () => {
  const fp = new Uint32Array(4);
  for (let i = 0; i < words.length; i += 1024) {
    fingerprint128(words, i, 1024, fp);
  }
});
