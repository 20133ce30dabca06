import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import {
  assertSectionDecodesOrRejects,
  assertThrowsCodecError,
  decodeSection,
  encodeSection,
  fromHex,
  offeredPages,
  pageBatch,
  randomPage,
  toHex,
} from "./_codec_testing.ts";
import {
  gatherPages,
  pageSectionBytes,
  pageSectionDecoder,
  pageSectionEncoder,
} from "./batch.ts";
import type { PageDecoder, PageEncoder } from "./codec.ts";
import { raw } from "./raw.ts";
import { rle } from "./rle.ts";
import { zero } from "./zero.ts";
import { PAGE_SIZE } from "../plan.ts";

const ctx = { pageSize: PAGE_SIZE, pageCount: 64, options: {} };

/** A per-page codec for the adapters: claims a page whose first byte is odd, as that many copies of it. */
const odd: PageEncoder = {
  encode(_pfn, page, out) {
    if ((page[0] & 1) === 0) return -1;
    out.fill(page[0], 0, page[0]);
    return page[0];
  },
};
const oddDecoder: PageDecoder = {
  decode(pfn, input, page) {
    if (input.length === 0 || input.some((b) => b !== input.length)) {
      throw new CodecError("odd", `Cannot decode odd page ${pfn}`);
    }
    page.fill(0);
    page[0] = input.length;
  },
};

function oddPage(first: number): Uint8Array {
  const p = new Uint8Array(PAGE_SIZE);
  p[0] = first;
  return p;
}

Deno.test("gatherPages: a view of the batch when the offered pages are contiguous, else a copy in offered order", () => {
  const batch = pageBatch([randomPage(1), randomPage(2), randomPage(3)]);
  const scratch = new Uint8Array(3 * PAGE_SIZE);
  const all = gatherPages(batch, new Uint32Array([0, 1, 2]), 3, scratch);
  assert.equal(all.buffer, batch.pages.buffer);
  assert.equal(all.length, 3 * PAGE_SIZE);
  const tail = gatherPages(batch, new Uint32Array([1, 2]), 2, scratch);
  assert.equal(tail.buffer, batch.pages.buffer);
  assert.equal(tail.byteOffset, PAGE_SIZE);
  const gap = gatherPages(batch, new Uint32Array([0, 2]), 2, scratch);
  assert.equal(gap.buffer, scratch.buffer);
  assert.deepEqual(gap.subarray(0, PAGE_SIZE), randomPage(1));
  assert.deepEqual(gap.subarray(PAGE_SIZE), randomPage(3));
  // the first n of a longer offered list
  const one = gatherPages(batch, new Uint32Array([2, 0]), 1, scratch);
  assert.deepEqual(one, randomPage(3));
});

Deno.test("pageSectionEncoder: a u32 length per claimed page, then their encodings, in batch order; declined pages left for the next codec", () => {
  const enc = pageSectionEncoder(odd, 255);
  const batch = pageBatch([oddPage(3), oddPage(2), oddPage(1), oddPage(5)]);
  const out = new Uint8Array(pageSectionBytes(4, 255));
  const claimed = new Uint8Array(4);
  const n = enc.encode(batch, new Uint32Array([0, 1, 2, 3]), 4, claimed, out);
  assert.deepEqual([...claimed], [1, 0, 1, 1]);
  assert.equal(
    toHex(out.subarray(0, n)),
    "03 00 00 00 01 00 00 00 05 00 00 00 03 03 03 01 05 05 05 05 05",
  );
  // Nothing claimed: an empty section.
  claimed.fill(0);
  const none = enc.encode(batch, new Uint32Array([1]), 1, claimed, out);
  assert.equal(none, 0);
  assert.deepEqual([...claimed], [0, 0, 0, 0]);
  assert.equal(pageSectionBytes(4, 255), 4 * 259);
});

Deno.test("pageSectionDecoder: decodes the pages of a section into consecutive page slots", () => {
  const dec = pageSectionDecoder("odd", oddDecoder, PAGE_SIZE, 255);
  const section = fromHex(
    "03 00 00 00 01 00 00 00 05 00 00 00 03 03 03 01 05 05 05 05 05",
  );
  const got = decodeSection(dec, section, 3, PAGE_SIZE);
  assert.deepEqual(got.subarray(0, PAGE_SIZE), oddPage(3));
  assert.deepEqual(got.subarray(PAGE_SIZE, 2 * PAGE_SIZE), oddPage(1));
  assert.deepEqual(got.subarray(2 * PAGE_SIZE), oddPage(5));
});

Deno.test("pageSectionDecoder: bad lengths are CodecErrors naming the page, before anything past the section is read", () => {
  const dec = pageSectionDecoder("odd", oddDecoder, PAGE_SIZE, 4);
  const cases: [string, number, RegExp][] = [
    ["03 00 00", 1, /odd section of 3 bytes: its 1 page lengths alone need 4/],
    [
      "05 00 00 00 05 05 05 05 05",
      1,
      /odd page 0: its length 5 is over the 4-byte maximum/,
    ],
    ["03 00 00 00 03 03", 1, /past the 6-byte section/],
    ["01 00 00 00 01 07", 1, /1 bytes left after its 1 pages/],
    [
      "01 00 00 00 03 00 00 00 01 03 03",
      2,
      /odd page 1: its length 3 .* past the 11-byte section/,
    ],
    ["01 00 00 00 02", 1, /Cannot decode odd page 0/],
  ];
  for (const [hex, n, match] of cases) {
    assertThrowsCodecError(
      () => decodeSection(dec, fromHex(hex), n, PAGE_SIZE),
      match,
    );
  }
});

Deno.test("pageSectionEncoder/Decoder property: rle sections round trip for any offered subset; fuzzed sections only throw CodecError", () => {
  const enc = rle.createBatchEncoder(ctx);
  const dec = rle.createBatchDecoder(ctx);
  const page = fc.oneof(
    fc.nat(255).map((v) => new Uint8Array(PAGE_SIZE).fill(v)),
    fc.nat().map(randomPage),
    fc.tuple(fc.nat(255), fc.nat(PAGE_SIZE - 1)).map(([v, at]) => {
      const p = new Uint8Array(PAGE_SIZE);
      p[at] = v;
      return p;
    }),
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(page, fc.boolean()), { minLength: 1, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 3 }),
      (drawn, flips) => {
        const batch = pageBatch(drawn.map(([p]) => p));
        let offered = drawn.flatMap(([, o], i) => o ? [i] : []);
        if (offered.length === 0) offered = [0];
        const off = Uint32Array.from(offered);
        const { section, claimed } = encodeSection(rle, enc, batch, off);
        const mine = Uint32Array.from(offered.filter((_, k) => claimed[k]));
        const n = mine.length;
        if (n === 0) return;
        assert.deepEqual(
          decodeSection(dec, section, n, PAGE_SIZE),
          offeredPages(batch, mine, n),
        );
        const bad = section.slice();
        for (const [at, v] of flips) bad[at % bad.length] = v;
        assertSectionDecodesOrRejects(dec, bad, n, PAGE_SIZE);
      },
    ),
    { numRuns: 150 },
  );
});

// ---------------------------------------------------------------- zero and raw

Deno.test("zero: claims the batch's zero pages (as the batch found them), with an empty section", () => {
  const batch = pageBatch([
    new Uint8Array(PAGE_SIZE),
    randomPage(1),
    new Uint8Array(PAGE_SIZE),
  ]);
  const { section, claimed } = encodeSection(
    zero,
    zero.createBatchEncoder(ctx),
    batch,
  );
  assert.deepEqual([...claimed], [1, 0, 1]);
  assert.equal(section.length, 0);
  assert.equal(zero.maxSectionBytes(16384, PAGE_SIZE), 0);
  assert.equal(zero.zeroPages, true);
  const dec = zero.createBatchDecoder(ctx);
  const out = new Uint8Array(2 * PAGE_SIZE).fill(7);
  dec.decode(
    new Uint8Array(0),
    new Float64Array(2),
    new Uint32Array(2),
    2,
    out,
  );
  assert.ok(out.every((b) => b === 0));
  assertThrowsCodecError(
    () => decodeSection(dec, new Uint8Array(1), 1, PAGE_SIZE),
    /Cannot decode a zero section: expected no bytes, got 1/,
  );
});

Deno.test("raw: claims every offered page; its section is the pages one after the other", () => {
  const batch = pageBatch([randomPage(1), randomPage(2), randomPage(3)]);
  const off = new Uint32Array([0, 2]);
  const { section, claimed } = encodeSection(
    raw,
    raw.createBatchEncoder(ctx),
    batch,
    off,
  );
  assert.deepEqual([...claimed], [1, 1]);
  assert.deepEqual(section, offeredPages(batch, off, 2));
  assert.equal(raw.maxSectionBytes(3, PAGE_SIZE), 3 * PAGE_SIZE);
  const dec = raw.createBatchDecoder(ctx);
  assert.deepEqual(decodeSection(dec, section, 2, PAGE_SIZE), section);
  for (const bad of [section.subarray(1), new Uint8Array(3 * PAGE_SIZE)]) {
    assertThrowsCodecError(
      () => decodeSection(dec, bad, 2, PAGE_SIZE),
      /Cannot decode a raw section of \d+ bytes: expected 2 pages of 4096/,
    );
  }
});

Deno.test("zero and raw take no options, and name any they are given", () => {
  for (const codec of [zero, raw]) {
    assert.deepEqual(codec.parseOptions({}), {});
    assertThrowsCodecError(
      () => codec.parseOptions({ fast: true }),
      new RegExp(
        `Unknown ${codec.name} option "fast": ${codec.name} takes no options`,
      ),
    );
  }
});
