import assert from "node:assert/strict";
import {
  assertRegistered,
  assertRoundTripsBatches,
  assertSurvivesMutatedSections,
  assertThrowsCodecError,
  decodeSection,
  docHexes,
  encodeSection,
  fromHex,
  goldenPage,
  pageBatch,
  randomPage,
  textPage,
  toHex,
} from "./_codec_testing.ts";
import { BatchEncoderChain } from "./batch_chain.ts";
import { lz4 } from "./lz4.ts";
import { PAGE_SIZE } from "../plan.ts";
import { concatBytes } from "../bytes.ts";

const ctx = {
  pageSize: PAGE_SIZE,
  pageCount: 64,
  options: lz4.parseOptions({}),
};
const ZERO = new Uint8Array(PAGE_SIZE);

/**
 * docs/codecs/lz4.md's golden vectors (liblz4 1.9.4, acceleration 1): a
 * batch of the golden page then a zero page as one LZ4 block (54 bytes for
 * 8192), and the golden page alone (37 bytes; the block of protocol 1's
 * per-page form, unchanged).
 */
const GOLDEN_2 = fromHex(
  "8f68616b6f6275210a0800ffffffe81f000100" +
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffff03500000000000",
);
const GOLDEN_1 = fromHex(
  "8f68616b6f6275210a0800ffffffe81f000100fffffffffffffffffffffff2500000000000",
);

Deno.test("lz4 is registered as wire id 5, batch form only, bounded by LZ4_COMPRESSBOUND", () => {
  assertRegistered(lz4, 5);
  assert.equal(lz4.createEncoder, undefined);
  assert.equal(lz4.createDecoder, undefined);
  assert.equal(lz4.cheapZeroPages, true);
  // n + n/255 + 16 for n bytes of pages
  assert.equal(lz4.maxSectionBytes(1, PAGE_SIZE), 4096 + 16 + 16);
  assert.equal(lz4.maxSectionBytes(256, PAGE_SIZE), 1048576 + 4112 + 16);
});

Deno.test("lz4 golden vectors decode byte for byte", () => {
  const dec = lz4.createBatchDecoder(ctx);
  assert.deepEqual(
    decodeSection(dec, GOLDEN_2, 2, PAGE_SIZE),
    concatBytes([goldenPage(), ZERO]),
  );
  assert.deepEqual(decodeSection(dec, GOLDEN_1, 1, PAGE_SIZE), goldenPage());
});

Deno.test("lz4 golden vectors are the ones docs/codecs/lz4.md gives", async () => {
  const quoted = await docHexes("lz4");
  for (const golden of [GOLDEN_2, GOLDEN_1]) {
    assert.ok(quoted.includes(toHex(golden).replaceAll(" ", "")));
  }
});

Deno.test("lz4 encodes the golden batches as the golden vectors (liblz4 1.9.4)", () => {
  const enc = lz4.createBatchEncoder(ctx);
  const two = encodeSection(lz4, enc, pageBatch([goldenPage(), ZERO]));
  assert.equal(toHex(two.section), toHex(GOLDEN_2));
  assert.deepEqual([...two.claimed], [1, 1]);
  // Each batch is one block of its own: the same batch again, same bytes.
  const again = encodeSection(lz4, enc, pageBatch([goldenPage(), ZERO]));
  assert.equal(toHex(again.section), toHex(GOLDEN_2));
  const one = encodeSection(lz4, enc, pageBatch([goldenPage()]));
  assert.equal(toHex(one.section), toHex(GOLDEN_1));
});

Deno.test("lz4 compresses the offered pages only, as one block of them in batch order", () => {
  const enc = lz4.createBatchEncoder(ctx);
  const dec = lz4.createBatchDecoder(ctx);
  const batch = pageBatch(
    [randomPage(1), goldenPage(), randomPage(2), ZERO],
    [3, 4, 9, 10],
  );
  // An earlier codec took pages 0 and 2: the block holds pages 1 and 3,
  // the same block as for a batch of those two pages alone.
  const offered = new Uint32Array([1, 3]);
  const { section, claimed } = encodeSection(lz4, enc, batch, offered);
  assert.deepEqual([...claimed], [1, 1]);
  assert.equal(toHex(section), toHex(GOLDEN_2));
  assert.deepEqual(
    decodeSection(dec, section, 2, PAGE_SIZE),
    concatBytes([goldenPage(), ZERO]),
  );
});

Deno.test("lz4 claims all or none: a batch it cannot shrink is declined and raw sends it", () => {
  const enc = lz4.createBatchEncoder(ctx);
  const random = pageBatch([randomPage(1), randomPage(2), randomPage(3)]);
  const none = encodeSection(lz4, enc, random);
  assert.equal(none.claims, 0);
  assert.equal(none.section.length, 0);
  // One compressible page among random ones: the block of all three is
  // smaller than the three pages, so lz4 claims all three.
  const mixed = pageBatch([randomPage(1), goldenPage(), randomPage(3)]);
  const all = encodeSection(lz4, enc, mixed);
  assert.deepEqual([...all.claimed], [1, 1, 1]);
  assert.ok(all.section.length < 3 * PAGE_SIZE);

  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 64 });
  chain.select([{ name: "lz4" }]);
  assert.deepEqual(chain.active, ["lz4", "raw"]);
  const declined = chain.encode(random, (n) => new Uint8Array(n));
  assert.deepEqual([...declined.claims], [[0, 3]]);
  const claimed = chain.encode(mixed, (n) => new Uint8Array(n));
  assert.deepEqual([...claimed.claims], [[5, 3]]);
});

Deno.test("lz4 round trips batches through one channel (property)", () => {
  assertRoundTripsBatches(lz4, ctx, { claims: "all-or-none" });
});

Deno.test("lz4 acceleration is honoured: the same batch compresses less as it rises", () => {
  const batch = pageBatch(Array.from({ length: 16 }, (_, i) => textPage(i)));
  const want = batch.pages;
  const sizes: number[] = [];
  for (const acceleration of [1, 8, 64, 65537]) {
    const c = { ...ctx, options: lz4.parseOptions({ acceleration }) };
    const { section, claims } = encodeSection(
      lz4,
      lz4.createBatchEncoder(c),
      batch,
    );
    sizes.push(section.length);
    if (claims === 0) continue; // declined: raw sends it
    assert.deepEqual(
      decodeSection(lz4.createBatchDecoder(ctx), section, 16, PAGE_SIZE),
      want,
      `acceleration ${acceleration}`,
    );
  }
  // Here (liblz4 1.9.4): 29629, 29789 and 31786 bytes of 65536, then
  // declined (0) at 65537; an encoder that ignored the option would give
  // 29629 four times.
  const [a1, a8, a64, aMax] = sizes;
  assert.ok(
    a1 > 0 && a1 < a8 && a8 < a64 && (aMax === 0 || aMax > a64),
    `sizes at acceleration 1, 8, 64, 65537: ${sizes}`,
  );
});

Deno.test("lz4 parseOptions fills the default and names a bad or unknown option", () => {
  assert.deepEqual(lz4.parseOptions({}), { acceleration: 1 });
  assert.deepEqual(lz4.parseOptions({ acceleration: 64 }), {
    acceleration: 64,
  });
  for (const acceleration of [0, -1, 1.5, "fast", 70000]) {
    assertThrowsCodecError(
      () => lz4.parseOptions({ acceleration }),
      new RegExp(`lz4 option acceleration "${String(acceleration)}"`),
    );
  }
  assertThrowsCodecError(
    () => lz4.parseOptions({ level: 3 }),
    /Unknown lz4 option "level": lz4 takes "acceleration"/,
  );
  // The encoder checks its options too (a context not from parseOptions).
  assertThrowsCodecError(
    () => lz4.createBatchEncoder({ ...ctx, options: { acceleration: 0 } }),
    /acceleration/,
  );
});

Deno.test("lz4 decoder rejects empty, too long, short and wrong-size blocks without writing outside its pages", () => {
  const dec = lz4.createBatchDecoder(ctx);
  const reject = (section: Uint8Array, n: number, match: RegExp) =>
    assertThrowsCodecError(
      () => decodeSection(dec, section, n, PAGE_SIZE),
      match,
    );
  reject(new Uint8Array(0), 1, /expected 1 to 4095 bytes, got 0/);
  reject(new Uint8Array(PAGE_SIZE), 1, /expected 1 to 4095 bytes, got 4096/);
  reject(new Uint8Array(20).fill(0x10), 1, /malformed LZ4 block/);
  // The two-page block as one page (too many bytes) or three (too few).
  reject(GOLDEN_2, 1, /malformed LZ4 block/);
  reject(GOLDEN_2, 3, /decodes to 8192 bytes, expected 12288/);
  // The one-page block cut short.
  reject(GOLDEN_1.subarray(0, 30), 1, /lz4 section of 1 pages/);
});

Deno.test("lz4 decoder: mutated and random sections give pages or a CodecError, never a write out of bounds", () => {
  const batch = pageBatch([textPage(1), goldenPage(), ZERO, textPage(2)]);
  const { section } = encodeSection(lz4, lz4.createBatchEncoder(ctx), batch);
  assertSurvivesMutatedSections(lz4, ctx, {
    seeds: [
      { section: GOLDEN_2, n: 2 },
      { section: GOLDEN_1, n: 1 },
      { section, n: 4 },
    ],
  });
});
