import assert from "node:assert/strict";
import { codecByName } from "../codecs/registry.ts";
import { BatchEncoderChain } from "../codecs/batch_chain.ts";
import { DecoderPool } from "./decoder_pool.ts";
import { PageBatchBuilder } from "./page_batch.ts";
import type { DecodeReply } from "./_messages.ts";

type Pages = Extract<DecodeReply, { type: "pages" }>;

Deno.test("decoder pool, return mode: payload and pages buffers go round (given back, read into, decoded into) and every batch decodes to its own pages", async () => {
  const pageCount = 64;
  const source = new Uint8Array(pageCount * 4096);
  for (let i = 0; i < source.length; i++) source[i] = (i * 31) >> 6;
  const chain = new BatchEncoderChain({ pageSize: 4096, pageCount });
  chain.select([{ name: "zero" }, { name: "lz4" }]);
  const got: Pages[] = [];
  const pool: DecoderPool = DecoderPool.start({
    channels: 1,
    pageSize: 4096,
    pageCount,
    codecs: ["raw", "zero", "lz4"].map((name) => ({
      id: codecByName(name).id,
      name,
    })),
    onPages: (_c, m) => {
      // what the caller saw, copied now: a buffer handed on is not ours
      got.push({ ...m, pages: m.pages.slice() });
      pool.returnPages(0, m.pages);
    },
  });
  try {
    for (const { codec, options } of chain.takeNewCodecs()) {
      pool.codec(0, { id: codec.id, name: codec.name, options }, 0);
    }
    // Each batch: 8 pages, read into a buffer from payloadBuffer (as the
    // frame reader does), then handed over.
    for (let b = 0; b < 8; b++) {
      const batch = new PageBatchBuilder({
        pageSize: 4096,
        nonZeroPages: 256,
        maxPages: 1024,
      });
      for (let p = b * 8; p < b * 8 + 8; p++) batch.addFrom(source, p);
      const { payload } = chain.encode(batch, (n) => new Uint8Array(n));
      const into = pool.payloadBuffer(payload.length);
      assert.equal(into.length, payload.length);
      const capacity = into.buffer.byteLength;
      into.set(payload);
      await pool.batch(0, 0, into, 0);
      assert.equal(into.buffer.byteLength, 0); // transferred: given up here
      await pool.sync();
      // the channel gave it back: the next payload is read into it
      const again = pool.payloadBuffer(1);
      assert.equal(again.length, 1);
      assert.equal(again.buffer.byteLength, capacity);
    }
    assert.equal(got.length, 8);
    for (const [b, m] of got.entries()) {
      for (let i = 0; i < m.count; i++) {
        const pfn = m.pfns[i];
        assert.equal(pfn, b * 8 + i);
        assert.deepEqual(
          m.pages.subarray(m.slot[i] * 4096, (m.slot[i] + 1) * 4096),
          source.subarray(pfn * 4096, (pfn + 1) * 4096),
          `page ${pfn}`,
        );
      }
    }
  } finally {
    pool.close();
  }
});
