import assert from "node:assert/strict";
import {
  assertDeclinesIncompressiblePage,
  assertDecodesTo,
  assertRegistered,
  assertRejectsBadLengths,
  assertRoundTripsCompressiblePages,
  assertRoundTripsOrDeclinesRandomPages,
  assertSurvivesMutatedInput,
  assertThrowsCodecError,
  fromHex,
  goldenPage,
  roundTripWith,
} from "./_codec_testing.ts";
import { lz4 } from "./lz4.ts";

const PAGE = 4096;
const ctx = { pageSize: PAGE, pageCount: 16, options: {} };

/** docs/codecs/lz4.md's golden vector: the golden page as one LZ4 block. */
const GOLDEN = fromHex(
  "8f68616b6f6275210a0800ffffffe81f000100fffffffffffffffffffffff2500000000000",
);

const roundTrip = roundTripWith(lz4, [ctx]);

Deno.test("lz4 is registered as wire id 5", () => {
  assertRegistered(lz4, 5);
  assert.equal(lz4.maxEncodedBytes(PAGE), PAGE - 1);
});

Deno.test("lz4 golden vector decodes byte for byte", () => {
  assertDecodesTo(lz4.createDecoder(ctx), GOLDEN, goldenPage());
});

Deno.test("lz4 encodes the golden page and round trips it", () => {
  const n = roundTrip(goldenPage());
  assert.ok(n > 0 && n < 64, `encoded length ${n}`);
});

Deno.test("lz4 encodes the zero page in a few bytes", () => {
  const n = roundTrip(new Uint8Array(PAGE));
  assert.ok(n > 0 && n < 32);
});

Deno.test("lz4 round trips compressible pages (property)", () => {
  assertRoundTripsCompressiblePages(roundTrip);
});

Deno.test("lz4 round trips or declines random pages (property)", () => {
  assertRoundTripsOrDeclinesRandomPages(roundTrip);
});

Deno.test("lz4 declines an incompressible page and the chain sends it raw", () => {
  assertDeclinesIncompressiblePage(lz4, ctx);
});

/**
 * A page of text: words of a 16-word vocabulary in a fixed pseudo-random
 * order, so it compresses, and a faster (higher) acceleration finds fewer
 * of its matches.
 */
function textPage(): Uint8Array {
  const words =
    "hakobu page round dirty codec frame delta zero memory guest switchover policy link raw dedup chunk"
      .split(" ");
  const page = new Uint8Array(PAGE);
  let x = 1;
  for (let i = 0; i < PAGE;) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    for (const c of words[(x >>> 16) & 15] + " ") {
      if (i < PAGE) page[i++] = c.charCodeAt(0);
    }
  }
  return page;
}

Deno.test("lz4 acceleration is honoured: the same page compresses less as it rises", () => {
  const page = textPage();
  const sizes: number[] = [];
  for (const acceleration of [1, 8, 64, 65537]) {
    const out = new Uint8Array(PAGE);
    const n = lz4.createEncoder({ ...ctx, options: { acceleration } })
      .encode(0, page, out);
    sizes.push(n);
    if (n < 0) continue; // declined: raw sends it
    const back = new Uint8Array(PAGE);
    lz4.createDecoder(ctx).decode(0, out.subarray(0, n), back);
    assert.deepEqual(back, page, `acceleration ${acceleration}`);
  }
  // Here (liblz4 1.9): 1917, 2093 and 3184 bytes, then declined (-1) at
  // 65537; an encoder that ignored the option would give 1917 four times.
  const [a1, a8, a64, aMax] = sizes;
  assert.ok(
    a1 > 0 && a1 < a8 && a8 < a64 && (aMax < 0 || aMax > a64),
    `sizes at acceleration 1, 8, 64, 65537: ${sizes}`,
  );
});

Deno.test("lz4 acceleration is validated", () => {
  for (const acceleration of [0, -1, 1.5, "fast", 70000]) {
    assertThrowsCodecError(
      () => lz4.createEncoder({ ...ctx, options: { acceleration } }),
      /acceleration/,
    );
  }
});

Deno.test("lz4 decoder rejects bad lengths and short blocks", () => {
  assertRejectsBadLengths(lz4, ctx);
});

Deno.test("lz4 decoder: mutated and random input gives a page or a CodecError, never a write out of bounds", () => {
  assertSurvivesMutatedInput(lz4, ctx, { seeds: [GOLDEN] });
});
