import assert from "node:assert/strict";
import { EncoderChain } from "../codecs/chain.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { GpuBatchEncoder, type GpuChain } from "./batch_encoder.ts";

const PS = 4096;

/** A VM image whose pages hit every branch of every codec. */
function memory(pageCount: number, round: number): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let pfn = 0; pfn < pageCount; pfn++) {
    const kind = (pfn * 7 + (round > 1 ? pfn % 2 : 0)) % 6;
    let p: Uint8Array = new Uint8Array(PS);
    if (kind === 1) p.fill(pfn & 0xff);
    if (kind === 2) p = bytesFrom(pfn + 1, PS);
    if (kind === 3) p.set(bytesFrom(pfn + 5, 700), (pfn * 13) % 3000);
    if (kind === 4) {
      p = bytesFrom(pfn + 1, PS);
      if (round > 0) { for (let b = 0; b < PS; b += 2) p[b] ^= round; // alternating: delta declines
       }
    }
    if (kind === 5) {
      p = bytesFrom(pfn + 1, PS);
      if (round > 0) p[(pfn * 31 + round) % PS] ^= 0x40; // one byte: small delta
    }
    pages.push(p);
  }
  return pages;
}

async function compareChains(
  chain: GpuChain,
  options: {
    pageCount: number;
    batch: number;
    rounds: number;
    deltaOptions?: Record<string, unknown>;
  },
): Promise<void> {
  const { pageCount, batch, rounds } = options;
  const cpu = new EncoderChain({ pageSize: PS, pageCount });
  cpu.select(
    chain.map((name) =>
      name === "delta" && options.deltaOptions
        ? { name, options: options.deltaOptions }
        : { name }
    ),
  );
  const enc = new GpuBatchEncoder(gpu!.device, {
    chain,
    batch,
    pageSize: PS,
    pageCount,
    deltaOptions: options.deltaOptions,
  });
  try {
    for (let round = 0; round < rounds; round++) {
      const mem = memory(pageCount, round);
      // Round 0 sends every page; later rounds a scattered subset, in pfn order.
      const pfns = mem.map((_, i) => i).filter((i) =>
        round === 0 || (i * (round + 3)) % 5 !== 0
      );
      // All batches submitted before any is awaited: the in-flight path.
      const pending: Promise<
        { pfns: number[]; b: Awaited<ReturnType<GpuBatchEncoder["encode"]>> }
      >[] = [];
      for (let at = 0; at < pfns.length; at += batch) {
        const ps = pfns.slice(at, at + batch);
        pending.push(
          enc.encode(ps, ps.map((p) => mem[p])).then((b) => ({ pfns: ps, b })),
        );
      }
      for (const { pfns: ps, b } of await Promise.all(pending)) {
        ps.forEach((pfn, i) => {
          const r = cpu.encode(pfn, mem[pfn]);
          const want = cpu.output.subarray(0, r.length);
          assert.equal(
            b.codecIds[i],
            r.codecId,
            `round ${round} pfn ${pfn} codec`,
          );
          assert.deepEqual(b.bytes(i), want, `round ${round} pfn ${pfn} bytes`);
        });
      }
    }
  } finally {
    enc.destroy();
  }
}

Deno.test({
  name:
    "GpuBatchEncoder: zero → rle → raw equals EncoderChain (batches of 1, 3, 257 with a partial last batch)",
  ignore: !hasAdapter,
  async fn() {
    await compareChains(["zero", "rle"], {
      pageCount: 40,
      batch: 1,
      rounds: 1,
    });
    await compareChains(["zero", "rle"], {
      pageCount: 100,
      batch: 3,
      rounds: 2,
    });
    await compareChains(["rle"], { pageCount: 300, batch: 257, rounds: 1 });
    await compareChains(["zero"], { pageCount: 50, batch: 16, rounds: 1 });
  },
});

Deno.test({
  name:
    "GpuBatchEncoder: zero → delta → raw equals EncoderChain across rounds, cache evictions included",
  ignore: !hasAdapter,
  async fn() {
    await compareChains(["zero", "delta"], {
      pageCount: 300,
      batch: 257,
      rounds: 3,
    });
    // A 7-slot cache: pages evict each other inside and across batches.
    await compareChains(["delta"], {
      pageCount: 60,
      batch: 3,
      rounds: 3,
      deltaOptions: { cacheBytes: 7 * PS },
    });
  },
});
