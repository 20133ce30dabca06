import assert from "node:assert/strict";
import { CodecError } from "../errors.ts";
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
import { WINDOW_LOG_MAX } from "./_zstd_stream.ts";
import { zstd } from "./zstd.ts";
import { PAGE_SIZE } from "../plan.ts";
import { concatBytes } from "../bytes.ts";

const ctx = {
  pageSize: PAGE_SIZE,
  pageCount: 64,
  options: zstd.parseOptions({}),
};

/**
 * docs/codecs/zstd.md's golden vectors (libzstd 1.5.4, level 1): a
 * channel's first two sections, each a batch of the golden page. The first
 * opens the stream's frame (magic, a frame header without content size) and
 * holds one compressed block; the second is one block that copies the page
 * from the first batch (offset 4096) — the stream spans batches.
 */
const GOLDEN_1 = fromHex(
  "28b52ffd0048a400004868616b6f6275210a000200fcc3f9a2feaac205",
);
const GOLDEN_2 = fromHex("7c00000004400080a81ff0fbc55b7fff150c");

Deno.test("zstd is registered as wire id 6, batch form only, bounded by ZSTD_compressBound", () => {
  assertRegistered(zstd, 6);
  assert.equal(zstd.createEncoder, undefined);
  assert.equal(zstd.createDecoder, undefined);
  assert.equal(zstd.cheapZeroPages, true);
  assert.equal(zstd.maxSectionBytes(1, PAGE_SIZE), 4096 + 16 + 62 + 64);
  assert.equal(zstd.maxSectionBytes(256, PAGE_SIZE), 1048576 + 4096 + 64);
  assert.equal(WINDOW_LOG_MAX, 23);
});

Deno.test("zstd golden vectors decode byte for byte, in order, by one channel's decoder", () => {
  const dec = zstd.createBatchDecoder(ctx);
  assert.deepEqual(decodeSection(dec, GOLDEN_1, 1, PAGE_SIZE), goldenPage());
  assert.deepEqual(decodeSection(dec, GOLDEN_2, 1, PAGE_SIZE), goldenPage());
});

Deno.test("zstd golden vectors are the ones docs/codecs/zstd.md gives", async () => {
  const quoted = await docHexes("zstd");
  for (const golden of [GOLDEN_1, GOLDEN_2]) {
    assert.ok(quoted.includes(toHex(golden).replaceAll(" ", "")));
  }
});

Deno.test("zstd encodes the golden batches as the golden vectors (libzstd 1.5.4)", () => {
  const enc = zstd.createBatchEncoder(ctx);
  const first = encodeSection(zstd, enc, pageBatch([goldenPage()]));
  assert.equal(toHex(first.section), toHex(GOLDEN_1));
  const second = encodeSection(zstd, enc, pageBatch([goldenPage()]));
  assert.equal(toHex(second.section), toHex(GOLDEN_2));
});

Deno.test("zstd decoding out of order fails: a later section needs the earlier ones", () => {
  // Without the first section there is no frame header to start from.
  assertThrowsCodecError(
    () => decodeSection(zstd.createBatchDecoder(ctx), GOLDEN_2, 1, PAGE_SIZE),
    /zstd section of 1 pages: malformed/,
  );
  // Nor does the first section make sense twice in one stream.
  const dec = zstd.createBatchDecoder(ctx);
  decodeSection(dec, GOLDEN_1, 1, PAGE_SIZE);
  assert.throws(() => decodeSection(dec, GOLDEN_1, 1, PAGE_SIZE), CodecError);
  // Skipping a section: the third refers back to the second's pages, and
  // without them never gives the right pages back.
  const enc = zstd.createBatchEncoder(ctx);
  const a = encodeSection(zstd, enc, pageBatch([textPage(1)])).section;
  encodeSection(zstd, enc, pageBatch([textPage(2)]));
  const c = encodeSection(zstd, enc, pageBatch([textPage(2)])).section;
  const skipping = zstd.createBatchDecoder(ctx);
  decodeSection(skipping, a, 1, PAGE_SIZE);
  let got: Uint8Array | undefined;
  try {
    got = decodeSection(skipping, c, 1, PAGE_SIZE);
  } catch (e) {
    assert.ok(e instanceof CodecError);
  }
  assert.notDeepEqual(got, textPage(2));
});

Deno.test("zstd keeps one stream per channel: a repeated batch costs almost nothing the second time", () => {
  const batch = pageBatch(
    Array.from({ length: 64 }, (_, i) => randomPage(100 + i)),
  );
  const enc = zstd.createBatchEncoder(ctx);
  const dec = zstd.createBatchDecoder(ctx);
  const first = encodeSection(zstd, enc, batch).section;
  const second = encodeSection(zstd, enc, batch).section;
  // 256 KiB of random bytes do not compress; the same bytes again are one
  // long match into the window (here: 262156 bytes, then 25).
  assert.ok(first.length > 64 * PAGE_SIZE, `first ${first.length}`);
  assert.ok(second.length < 200, `second ${second.length}`);
  // A fresh stream (another channel) has nothing to refer to.
  const other = encodeSection(zstd, zstd.createBatchEncoder(ctx), batch);
  assert.ok(other.section.length > 64 * PAGE_SIZE);
  assert.deepEqual(decodeSection(dec, first, 64, PAGE_SIZE), batch.pages);
  assert.deepEqual(decodeSection(dec, second, 64, PAGE_SIZE), batch.pages);
});

Deno.test("zstd claims every page it is offered, incompressible ones too, and only those", () => {
  const enc = zstd.createBatchEncoder(ctx);
  const dec = zstd.createBatchDecoder(ctx);
  const batch = pageBatch(
    [randomPage(1), goldenPage(), randomPage(2), new Uint8Array(PAGE_SIZE)],
    [0, 5, 6, 7],
  );
  const offered = new Uint32Array([0, 2, 3]);
  const { section, claimed } = encodeSection(zstd, enc, batch, offered);
  assert.deepEqual([...claimed], [1, 1, 1]);
  // two random pages cost a few block headers more than raw
  assert.ok(section.length < 3 * PAGE_SIZE, `${section.length}`);
  assert.deepEqual(
    decodeSection(dec, section, 3, PAGE_SIZE),
    concatBytes([randomPage(1), randomPage(2), new Uint8Array(PAGE_SIZE)]),
  );
});

Deno.test("zstd round trips batches through one channel's stream (property)", () => {
  assertRoundTripsBatches(zstd, ctx, { claims: "all", numRuns: 40 });
});

Deno.test("zstd level is honoured: the same batch shrinks as it rises, and round trips", () => {
  const batch = pageBatch(Array.from({ length: 16 }, (_, i) => textPage(i)));
  const levels = [-5, 1, 3, 19];
  const sizes: number[] = [];
  for (const level of levels) {
    const c = { ...ctx, options: zstd.parseOptions({ level }) };
    const { section } = encodeSection(zstd, zstd.createBatchEncoder(c), batch);
    sizes.push(section.length);
    // The decoder needs no level.
    assert.deepEqual(
      decodeSection(zstd.createBatchDecoder(ctx), section, 16, PAGE_SIZE),
      batch.pages,
      `level ${level}`,
    );
  }
  // Here (libzstd 1.5.4): 14145, 12367, 11422 and 8758 bytes of 65536; an
  // encoder that ignored the level would give one size four times.
  assert.ok(
    sizes.every((n, i) => i === 0 || n < sizes[i - 1]),
    `sizes at levels ${levels}: ${sizes}`,
  );
});

Deno.test("zstd levels 20 to 22 keep the window within what a decoder accepts (2^23)", () => {
  // A frame header's window descriptor (byte 5 here: no single segment)
  // gives the window as 2^(10 + exponent) plus mantissa eighths; the
  // decoder refuses frames over 2^23, which levels 20-22 would otherwise
  // declare (2^25 to 2^27).
  const batch = pageBatch([textPage(1), goldenPage()]);
  for (const level of [1, 19, 20, 22]) {
    const c = { ...ctx, options: zstd.parseOptions({ level }) };
    const { section } = encodeSection(zstd, zstd.createBatchEncoder(c), batch);
    assert.equal(section[4] & 0x20, 0, "no single-segment frame");
    const windowLog = 10 + (section[5] >> 3);
    assert.ok(windowLog <= 23, `level ${level}: window 2^${windowLog}`);
    assert.deepEqual(
      decodeSection(zstd.createBatchDecoder(ctx), section, 2, PAGE_SIZE),
      batch.pages,
      `level ${level}`,
    );
  }
});

Deno.test("zstd parseOptions fills the default and names a bad or unknown option", () => {
  assert.deepEqual(zstd.parseOptions({}), { level: 1 });
  assert.deepEqual(zstd.parseOptions({ level: -5 }), { level: -5 });
  for (const level of [23, 1.5, "1", -200000, true]) {
    assertThrowsCodecError(
      () => zstd.parseOptions({ level }),
      new RegExp(`zstd option level "${String(level)}"`),
    );
  }
  // protocol 1's backend option is gone: the stream needs libzstd
  assertThrowsCodecError(
    () => zstd.parseOptions({ backend: "node" }),
    /Unknown zstd option "backend": zstd takes "level"/,
  );
  assertThrowsCodecError(
    () => zstd.createBatchEncoder({ ...ctx, options: { level: 23 } }),
    /level/,
  );
});

Deno.test("zstd decoder rejects an empty section, a corrupt one, and one holding more or fewer bytes than its pages", () => {
  const two = encodeSection(
    zstd,
    zstd.createBatchEncoder(ctx),
    pageBatch([goldenPage(), textPage(3)]),
  ).section;
  const reject = (section: Uint8Array, n: number, match: RegExp) =>
    assertThrowsCodecError(
      () => decodeSection(zstd.createBatchDecoder(ctx), section, n, PAGE_SIZE),
      match,
    );
  reject(new Uint8Array(0), 1, /zstd section of 1 pages: it is empty/);
  reject(two, 1, /zstd section of 1 pages: it holds more than 4096 bytes/);
  reject(two, 3, /it decodes to 8192 bytes, expected 12288/);
  const corrupt = two.slice();
  corrupt[0] ^= 0xff; // the magic
  reject(
    corrupt,
    2,
    /malformed at byte 0 .*zstd says "Unknown frame descriptor"/,
  );
  reject(two.subarray(0, two.length - 5), 2, /decodes to \d+ bytes/);
  // A valid two-page section still decodes as two pages.
  assert.deepEqual(
    decodeSection(zstd.createBatchDecoder(ctx), two, 2, PAGE_SIZE),
    concatBytes([goldenPage(), textPage(3)]),
  );
});

Deno.test("zstd decoder: mutated and random sections give pages or a CodecError, never a write out of bounds", () => {
  const enc = zstd.createBatchEncoder(ctx);
  const b1 = pageBatch([textPage(1), goldenPage(), new Uint8Array(PAGE_SIZE)]);
  const b2 = pageBatch([textPage(2), textPage(1)]);
  const s1 = encodeSection(zstd, enc, b1).section;
  const s2 = encodeSection(zstd, enc, b2).section;
  assertSurvivesMutatedSections(zstd, ctx, {
    seeds: [
      { section: GOLDEN_1, n: 1 },
      { section: GOLDEN_2, n: 1, before: [{ section: GOLDEN_1, n: 1 }] },
      { section: s1, n: 3 },
      { section: s2, n: 2, before: [{ section: s1, n: 3 }] },
    ],
    numRuns: 600,
  });
});
