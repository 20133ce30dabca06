import assert from "node:assert/strict";
import { isZeroPage } from "../zero_page.ts";
import { EncoderChain } from "./chain.ts";

// Guest memory beyond 4 GiB: byte offsets no longer fit 32 bits, so any
// `offset >>> 2` would wrap and read another page. The buffer is allocated
// lazily by the OS; only the pages touched here cost memory.
const FOUR_GIB = 2 ** 32;
const PAGE = 4096;

Deno.test("pages beyond 4 GiB of memory encode exactly like the same bytes at offset 0", () => {
  const big = new Uint8Array(new SharedArrayBuffer(FOUR_GIB + 4 * PAGE));
  const far = big.subarray(FOUR_GIB + 2 * PAGE, FOUR_GIB + 3 * PAGE);
  // Page 0 stays zero; the far page holds a pattern with runs and literals.
  for (let i = 0; i < PAGE; i += 4) far[i] = i % 64 === 0 ? 0 : 7;
  far[100] = 42;
  assert.equal(
    isZeroPage(far),
    false,
    "a non-zero page beyond 4 GiB read as zero",
  );
  assert.equal(isZeroPage(big.subarray(FOUR_GIB, FOUR_GIB + PAGE)), true);

  const near = far.slice(); // the same bytes in a small buffer
  for (
    const chain of [["rle"], ["zero", "dedup"], ["zero", "delta"], ["lz4"]]
  ) {
    const specs = chain.map((name) => ({ name }));
    const a = new EncoderChain({ pageSize: PAGE, pageCount: 8 });
    const b = new EncoderChain({ pageSize: PAGE, pageCount: 8 });
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
