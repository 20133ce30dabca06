import assert from "node:assert/strict";
import { PageBatchBuilder } from "../pipeline/page_batch.ts";
import { isZeroPage } from "../zero_page.ts";
import { BatchEncoderChain } from "./batch_chain.ts";
import { EncoderChain } from "./chain.ts";
import { PAGE_SIZE } from "../plan.ts";

// Guest memory beyond 4 GiB: byte offsets no longer fit 32 bits, so any
// `offset >>> 2` would wrap and read another page. The buffer is allocated
// lazily by the OS; only the pages touched here cost memory.
const FOUR_GIB = 2 ** 32;
const FAR_PFN = FOUR_GIB / PAGE_SIZE + 2;

/** 4 GiB + 4 pages, page 0 zero, the far page a pattern with runs and literals. */
function bigMemory(): { big: Uint8Array; far: Uint8Array } {
  const big = new Uint8Array(new SharedArrayBuffer(FOUR_GIB + 4 * PAGE_SIZE));
  const far = big.subarray(FAR_PFN * PAGE_SIZE, (FAR_PFN + 1) * PAGE_SIZE);
  for (let i = 0; i < PAGE_SIZE; i += 4) far[i] = i % 64 === 0 ? 0 : 7;
  far[100] = 42;
  return { big, far };
}

Deno.test("pages beyond 4 GiB of memory: zero-page test and per-page encoders read the right page", () => {
  const { big, far } = bigMemory();
  assert.equal(
    isZeroPage(far),
    false,
    "a non-zero page beyond 4 GiB read as zero",
  );
  assert.equal(isZeroPage(big.subarray(FOUR_GIB, FOUR_GIB + PAGE_SIZE)), true);

  // The per-page chain (what the GPU twins are checked against) reads guest
  // memory in place.
  const near = far.slice(); // the same bytes in a small buffer
  for (const chain of [["rle"], ["zero", "dedup"], ["zero", "delta"]]) {
    const specs = chain.map((name) => ({ name }));
    const a = new EncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
    const b = new EncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
    a.select(specs);
    b.select(specs);
    // Three sends, so delta has a cached version to encode against.
    for (let send = 0; send < 3; send++) {
      far[200 + send] ^= 0xff;
      near[200 + send] ^= 0xff;
      const ra = a.encode(3, far);
      const outA = a.output.slice(0, ra.length);
      const rb = b.encode(3, near);
      assert.equal(
        ra.codecId,
        rb.codecId,
        `${chain}: codec differs on send ${send}`,
      );
      assert.deepEqual(
        outA,
        b.output.slice(0, rb.length),
        `${chain}: bytes differ on send ${send}`,
      );
    }
  }
});

Deno.test("pages beyond 4 GiB of memory: a batch filled from them encodes exactly like the same bytes from a small image", () => {
  const { big, far } = bigMemory();
  const pageCount = FAR_PFN + 2;
  // The small image holds the far page's bytes at pfn 1, page 0 zero.
  const small = new Uint8Array(2 * PAGE_SIZE);
  for (
    const chain of [
      ["zero", "rle"],
      ["zero", "dedup"],
      ["zero", "delta"],
      ["zero", "lz4"],
      ["zstd"],
    ]
  ) {
    const specs = chain.map((name) => ({ name }));
    const a = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
    const b = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
    a.select(specs);
    b.select(specs);
    const fill = () =>
      new PageBatchBuilder({
        pageSize: PAGE_SIZE,
        nonZeroPages: 4,
        maxPages: 4,
      });
    for (let send = 0; send < 3; send++) {
      far[300 + send] ^= 0xff;
      small.set(far, PAGE_SIZE);
      const ba = fill();
      ba.addFrom(big, 0);
      ba.addFrom(big, FAR_PFN);
      const bb = fill();
      bb.addFrom(small, 0);
      bb.addFrom(small, 1);
      assert.deepEqual([...ba.zero.subarray(0, 2)], [1, 0]);
      assert.deepEqual(ba.pages, bb.pages);
      bb.pfns[1] = FAR_PFN; // the same pfns, so the same payload
      const pa = a.encode(ba, (n) => new Uint8Array(n)).payload;
      const pb = b.encode(bb, (n) => new Uint8Array(n)).payload;
      assert.deepEqual(pa, pb, `${chain}: payload differs on send ${send}`);
    }
  }
});
