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

Deno.test("lz4 acceleration is honoured and validated", () => {
  const page = goldenPage();
  for (const acceleration of [1, 8, 65537]) {
    const out = new Uint8Array(PAGE);
    const enc = lz4.createEncoder({ ...ctx, options: { acceleration } });
    const n = enc.encode(0, page, out);
    if (acceleration === 1) assert.ok(n > 0);
    if (n < 0) continue; // declined: fine, raw sends it
    const back = new Uint8Array(PAGE);
    lz4.createDecoder(ctx).decode(0, out.subarray(0, n), back);
    assert.deepEqual(back, page);
  }
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
