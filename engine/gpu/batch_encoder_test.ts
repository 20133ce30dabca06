import assert from "node:assert/strict";
import { ChannelReceiver } from "../codecs/_codec_testing.ts";
import { BatchEncoderChain } from "../codecs/batch_chain.ts";
import { EncoderChain } from "../codecs/chain.ts";
import { PageBatchBuilder } from "../pipeline/page_batch.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { GpuBatchEncoder, type GpuChain } from "./batch_encoder.ts";
import { PAGE_SIZE } from "../plan.ts";

/** A VM image whose pages hit every branch of every codec. */
function memory(pageCount: number, round: number): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let pfn = 0; pfn < pageCount; pfn++) {
    const kind = (pfn * 7 + (round > 1 ? pfn % 2 : 0)) % 6;
    let p: Uint8Array = new Uint8Array(PAGE_SIZE);
    if (kind === 1) p.fill(pfn & 0xff);
    if (kind === 2) p = bytesFrom(pfn + 1, PAGE_SIZE);
    if (kind === 3) p.set(bytesFrom(pfn + 5, 700), (pfn * 13) % 3000);
    if (kind === 4) {
      p = bytesFrom(pfn + 1, PAGE_SIZE);
      if (round > 0) { for (let b = 0; b < PAGE_SIZE; b += 2) p[b] ^= round; // alternating: delta declines
       }
    }
    if (kind === 5) {
      p = bytesFrom(pfn + 1, PAGE_SIZE);
      if (round > 0) p[(pfn * 31 + round) % PAGE_SIZE] ^= 0x40; // one byte: small delta
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
  const cpu = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
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
    pageSize: PAGE_SIZE,
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
      deltaOptions: { cacheBytes: 7 * PAGE_SIZE },
    });
  },
});

/**
 * Sends rounds of `memory` through the GPU encoder, framed by
 * `BatchEncoderChain.encodeWith` as the channel Workers frame them, beside
 * the CPU `BatchEncoderChain.encode` of the same batches; a receiver
 * decodes the GPU's payloads. Returns whether every payload was identical.
 */
async function framedLikeCpu(
  chain: GpuChain,
  pageCount: number,
  batchPages: number,
): Promise<boolean> {
  const specs = chain.map((name) => ({ name }));
  const gpuSide = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  const cpuSide = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  gpuSide.select(specs);
  cpuSide.select(specs);
  const rx = new ChannelReceiver(pageCount);
  const enc = new GpuBatchEncoder(gpu!.device, {
    chain,
    batch: batchPages,
    pageSize: PAGE_SIZE,
    pageCount,
  });
  const builder = new PageBatchBuilder({
    pageSize: PAGE_SIZE,
    nonZeroPages: batchPages,
    maxPages: batchPages,
  });
  builder.countZeroPages = true;
  const alloc = (n: number) => new Uint8Array(n);
  let same = true;
  try {
    for (let round = 0; round < 3; round++) {
      const mem = memory(pageCount, round);
      const image = new Uint8Array(pageCount * PAGE_SIZE);
      mem.forEach((p, pfn) => image.set(p, pfn * PAGE_SIZE));
      const pfns = mem.map((_, i) => i).filter((i) =>
        round === 0 || (i * (round + 3)) % 5 !== 0
      );
      for (let at = 0; at < pfns.length; at += batchPages) {
        const ps = pfns.slice(at, at + batchPages);
        builder.reset();
        for (const pfn of ps) builder.addFrom(image, pfn);
        const b = await enc.encode(ps, ps.map((p) => mem[p]));
        rx.announce(gpuSide.takeNewCodecs());
        const got = gpuSide.encodeWith(builder, b.codecIds, b.bytes, alloc);
        const want = cpuSide.encode(builder, alloc);
        same &&= got.payload.length === want.payload.length &&
          got.payload.every((x, i) => x === want.payload[i]);
        rx.receive(got.payload);
      }
      for (const pfn of pfns) {
        assert.deepEqual(
          rx.memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
          mem[pfn],
          `round ${round} pfn ${pfn}`,
        );
      }
    }
  } finally {
    enc.destroy();
  }
  return same;
}

Deno.test({
  name:
    "GpuBatchEncoder framed by BatchEncoderChain.encodeWith: zero → rle → raw payloads equal the CPU batch encode; zero → delta → raw decodes exactly",
  ignore: !hasAdapter,
  async fn() {
    assert.equal(await framedLikeCpu(["zero", "rle"], 100, 17), true);
    assert.equal(await framedLikeCpu(["rle"], 40, 40), true);
    // delta: the GPU follows the per-page cache (a page may evict another
    // inside a batch), the CPU batch form updates its cache after the
    // batch, so bytes may differ; the receiver must still get every page.
    await framedLikeCpu(["zero", "delta"], 100, 17);
  },
});
