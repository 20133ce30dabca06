import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import {
  assertDecodesOrRejects,
  assertGoldenVector,
  assertMatchesReference,
  assertSurvivesCutAndFlips,
  assertThrowsCodecError,
  cutsAndFlips,
  decodeSection,
  encodeSection,
  fromHex,
  pageBatch,
  type ReferenceCheck,
  toHex,
} from "./_codec_testing.ts";
import { EncoderChain } from "./chain.ts";
import type { CodecContext } from "./codec.ts";
import { codecById } from "./registry.ts";
import { rle } from "./rle.ts";
import { PAGE_SIZE } from "../plan.ts";

function ctx(pageSize = PAGE_SIZE, pageCount = 1): CodecContext {
  return { pageSize, pageCount, options: {} };
}

/** Little-endian bytes of a u32. */
function le(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

/** The rle format written the slow, obvious way, over byte quadruples: no length limit. */
function refEncode(page: Uint8Array): number[] {
  const words = page.length / 4;
  const word = (i: number) => Array.from(page.subarray(i * 4, i * 4 + 4));
  const same = (a: number, b: number) =>
    b >= 0 && b < words && word(a).every((v, k) => v === word(b)[k]);
  const inRun = (i: number) => same(i, i - 1) || same(i, i + 1);
  const out: number[] = [];
  let i = 0;
  while (i < words) {
    let j = i + 1;
    if (inRun(i)) {
      while (j < words && same(j, i)) j++;
      out.push(...le(j - i), ...word(i));
    } else {
      while (j < words && !inRun(j)) j++;
      out.push(...le((0x80000000 | (j - i)) >>> 0));
      for (let k = i; k < j; k++) out.push(...word(k));
    }
    i = j;
  }
  return out;
}

function encode(page: Uint8Array): Uint8Array | null {
  const enc = rle.createEncoder!(ctx(page.length));
  const out = new Uint8Array(rle.maxEncodedBytes!(page.length));
  const n = enc.encode(0, page, out);
  return n < 0 ? null : out.slice(0, n);
}

function decode(input: Uint8Array, pageSize: number): Uint8Array {
  const page = new Uint8Array(pageSize);
  rle.createDecoder!(ctx(pageSize)).decode(0, input, page);
  return page;
}

/** A page made of 32-bit words given as 4-byte hex strings. */
function pageOf(words: string[]): Uint8Array {
  return fromHex(words.join(" "));
}

/** `page` through the codec, beside the reference encoding of it. */
function againstReference(page: Uint8Array): ReferenceCheck {
  return {
    got: encode(page),
    want: refEncode(page),
    decode: (bytes: Uint8Array) => decode(bytes, page.length),
  };
}

/** Checks the encoder against the reference, and the decoder against the page. */
function checkRoundTrip(page: Uint8Array): void {
  assertMatchesReference(page, againstReference(page));
}

const A = "a1 a2 a3 a4";
const B = "b1 b2 b3 b4";
const C = "c1 c2 c3 c4";
const Z = "00 00 00 00";

// Golden vectors, from docs/codecs/rle.md.
const GOLDEN: { name: string; page: Uint8Array; hex: string | null }[] = [
  {
    name: "zero page",
    page: new Uint8Array(PAGE_SIZE),
    hex: "00 04 00 00 00 00 00 00",
  },
  {
    name: "colour-filled page",
    page: new Uint8Array(PAGE_SIZE).map((_, i) =>
      [0x11, 0x22, 0x33, 0x44][i & 3]
    ),
    hex: "00 04 00 00 11 22 33 44",
  },
  {
    name: "64-byte page: literal, run, literal, run",
    page: pageOf([A, ...Array(8).fill(Z), B, C, ...Array(5).fill(Z)]),
    hex:
      `01 00 00 80 ${A} 08 00 00 00 ${Z} 02 00 00 80 ${B} ${C} 05 00 00 00 ${Z}`,
  },
  {
    name: "24-byte page: run of 4, literal of 2 (20 bytes)",
    page: pageOf([A, A, A, A, B, C]),
    hex: `04 00 00 00 ${A} 02 00 00 80 ${B} ${C}`,
  },
  {
    name: "24-byte page: run of 3, literal of 3 (24 bytes: declined)",
    page: pageOf([A, A, A, B, C, A]),
    hex: null,
  },
  {
    name: "16-byte page: two runs of 2 (16 bytes: declined)",
    page: pageOf([A, A, B, B]),
    hex: null,
  },
  {
    name: "alternating words (declined)",
    page: pageOf([A, B, A, B, A, B, A, B]),
    hex: null,
  },
];

for (const g of GOLDEN) {
  Deno.test(`rle golden: ${g.name}`, () => {
    const check = againstReference(g.page);
    if (g.hex === null) {
      assert.equal(check.got, null);
      assert.ok(check.want.length >= g.page.length);
      return;
    }
    assertGoldenVector(g.page, g.hex, check);
  });
}

Deno.test("rle golden: a random page is declined", () => {
  const page = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 2654435761) >>> 24);
  assert.equal(encode(page), null);
});

Deno.test("rle property: pages of words from a small alphabet round-trip; -1 exactly when not smaller", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 3 }), {
        minLength: 1,
        maxLength: 1024,
      }),
      fc.array(fc.integer(), { minLength: 4, maxLength: 4 }),
      (picks, alphabet) => {
        const words = new Uint32Array(picks.map((k) => alphabet[k] >>> 0));
        checkRoundTrip(new Uint8Array(words.buffer));
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("rle property: random and adversarial pages", () => {
  const shapes: ((i: number, r: Uint8Array) => number)[] = [
    () => 0,
    () => 0xff,
    (i) => [0xde, 0xad, 0xbe, 0xef][i & 3],
    (i) => ((i >> 2) & 1) ? 0x55 : 0xaa, // alternating words: no runs
    (i) => ((i >> 3) & 1) ? 0x55 : 0xaa, // pairs of words: exactly the page size
    (i, r) => r[i % r.length], // random
    (i, r) => (i < 2048 ? 0 : r[i % r.length]), // half zero
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...shapes),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.array(
        fc.tuple(
          fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
          fc.integer({ min: 0, max: 255 }),
        ),
        {
          maxLength: 6,
        },
      ),
      (shape, r, edits) => {
        const page = new Uint8Array(PAGE_SIZE).map((_, i) => shape(i, r));
        for (const [at, v] of edits) page[at] = v;
        checkRoundTrip(page);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("rle: unaligned page and output views give the same bytes", () => {
  const page = pageOf([A, A, A, B, Z, Z, C, A, ...Array(24).fill(Z)]);
  const want = encode(page);
  assert.ok(want);
  const inBacking = new Uint8Array(page.length + 1);
  const unalignedPage = inBacking.subarray(1);
  unalignedPage.set(page);
  const outBacking = new Uint8Array(page.length + 3).fill(0xee);
  const out = outBacking.subarray(3, 3 + rle.maxEncodedBytes!(page.length));
  const n = rle.createEncoder!(ctx(page.length)).encode(0, unalignedPage, out);
  assert.equal(toHex(out.subarray(0, n)), toHex(want));
  assert.deepEqual(outBacking.subarray(0, 3), new Uint8Array(3).fill(0xee));

  const inputBacking = new Uint8Array(want.length + 2);
  inputBacking.set(want, 2);
  const pageBacking = new Uint8Array(page.length + 5);
  rle.createDecoder!(ctx(page.length)).decode(
    0,
    inputBacking.subarray(2),
    pageBacking.subarray(1, 1 + page.length),
  );
  assert.deepEqual(pageBacking.subarray(1, 1 + page.length), page);
});

Deno.test("rle: refuses an output buffer shorter than maxEncodedBytes", () => {
  const enc = rle.createEncoder!(ctx(64));
  assert.throws(
    () => enc.encode(0, new Uint8Array(64), new Uint8Array(8)),
    CodecError,
  );
  assert.throws(() => rle.createEncoder!(ctx(4098)), CodecError);
});

const PAGE64 = 64;
// Malformed input for 64-byte pages (16 words), each with the part of the message that says why.
const MALFORMED: [string, string][] = [
  ["", "cover 0 of 16 words"],
  ["10 00 00", "not a whole number"],
  ["10 00 00 00 00 00 00 00 00", "not a whole number"],
  ["00 00 00 00 00 00 00 00", "empty token"],
  ["00 00 00 80", "empty token"],
  ["11 00 00 00 00 00 00 00", "only 16 left"],
  ["10 00 01 00 00 00 00 00", "only 16 left"],
  [
    "0f 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00",
    "only 1 left in the page",
  ],
  ["10 00 00 00", "has no word"],
  ["0f 00 00 00 00 00 00 00", "cover 15 of 16 words"],
  [`0f 00 00 00 ${Z} 02 00 00 80 ${A}`, "only 1 left in the page"],
  [`0e 00 00 00 ${Z} 02 00 00 80 ${A}`, "needs 2 words, only 1 left"],
  [`10 00 00 00 ${Z} 01 00 00 00 ${Z}`, "only 0 left in the page"],
];

for (const [input, why] of MALFORMED) {
  Deno.test(`rle rejects malformed input: ${input || "(empty)"}`, () => {
    assertThrowsCodecError(() => decode(fromHex(input), PAGE64), why);
  });
}

Deno.test("rle rejects input not smaller than the page and a wrong-size output buffer", () => {
  const input = new Uint8Array(PAGE64);
  input.set(le((0x80000000 | 15) >>> 0));
  assertThrowsCodecError(
    () => decode(input, PAGE64),
    /not smaller than the page/,
  );
  const dec = rle.createDecoder!(ctx(PAGE64));
  assert.throws(
    () => dec.decode(0, fromHex("10 00 00 00 00 00 00 00"), new Uint8Array(60)),
    CodecError,
  );
});

Deno.test("rle fuzz: random input never escapes the page or throws anything but CodecError", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(16, 64, 4096),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer()), {
        maxLength: 24,
      }),
      fc.boolean(),
      fc.integer({ min: 0, max: 32 }),
      (ps, words, literalBits, offset) => {
        // Words that are often plausible headers, sometimes with the literal bit.
        const input = new Uint8Array(
          new Uint32Array(
            words.map((w) =>
              (literalBits && w < 20 ? w | 0x80000000 : w) >>> 0
            ),
          ).buffer,
        );
        const dec = rle.createDecoder!(ctx(ps));
        // The page at `offset` of a buffer with 64 guard bytes in all.
        const guard = { pageSize: ps, before: offset, after: 64 - offset };
        assertDecodesOrRejects(dec, input, guard);
        assertDecodesOrRejects(
          dec,
          input.subarray(0, Math.max(0, input.length - 1)),
          guard,
        );
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("rle fuzz: truncated and mutated valid encodings", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 2 }), {
        minLength: 64,
        maxLength: 64,
      }),
      cutsAndFlips(256),
      (picks, damage) => {
        const page = new Uint8Array(
          new Uint32Array(picks.map((k) => [0, 7, 0xffffffff][k])).buffer,
        );
        const valid = encode(page);
        if (!valid) return;
        const dec = rle.createDecoder!(ctx(page.length));
        assertSurvivesCutAndFlips(dec, valid, damage);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("rle in a chain [zero, rle, raw]: pages decode to what was sent", () => {
  const pageCount = 16;
  const chain = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
  chain.select([{ name: "zero" }, { name: "rle" }, { name: "raw" }]);
  const memory = new Uint8Array(pageCount * PAGE_SIZE);
  const pages = Array.from({ length: pageCount }, (_, p) => {
    const page = new Uint8Array(PAGE_SIZE);
    if (p % 4 === 1) page.fill(p); // colour fill: rle
    if (p % 4 === 2) page.fill(0x33, 100, 2000); // mostly runs: rle
    if (p % 4 === 3) {
      for (let i = 0; i < PAGE_SIZE; i++) {
        page[i] = (i * 31 + p) * 2654435761 >>> 24; // raw
      }
    }
    return page;
  });
  const want = [1, 2, 2, 0];
  const scratch = new Uint8Array(PAGE_SIZE);
  for (let p = 0; p < pageCount; p++) {
    const r = chain.encode(p, pages[p]);
    assert.equal(r.codecId, want[p % 4], `page ${p}`);
    const codec = codecById(r.codecId);
    assert.ok(codec);
    codec.createDecoder!(ctx(PAGE_SIZE, pageCount)).decode(
      p,
      chain.output.slice(0, r.length),
      scratch,
    );
    memory.set(scratch, p * PAGE_SIZE);
  }
  assert.deepEqual(memory, new Uint8Array(pages.flatMap((p) => [...p])));
});

Deno.test("rle options: it takes none, and names any it is given", () => {
  assert.deepEqual(rle.parseOptions({}), {});
  assertThrowsCodecError(
    () => rle.parseOptions({ level: 1 }),
    /Unknown rle option "level": rle takes no options/,
  );
});

Deno.test("rle section golden (docs/codecs/rle.md): a u32 length per claimed page, then the encodings", () => {
  const colour = new Uint8Array(PAGE_SIZE).map((_, i) =>
    [0x11, 0x22, 0x33, 0x44][i & 3]
  );
  const random = new Uint8Array(PAGE_SIZE).map((_, i) =>
    (i * 2654435761) >>> 24
  );
  const batch = pageBatch([colour, random, new Uint8Array(PAGE_SIZE)], [
    4,
    5,
    9,
  ]);
  const enc = rle.createBatchEncoder(ctx(PAGE_SIZE, 16));
  const { section, claimed } = encodeSection(rle, enc, batch);
  assert.deepEqual([...claimed], [1, 0, 1]); // the random page is declined
  const golden = "08 00 00 00 08 00 00 00 " + // lengths of pages 0 and 2
    "00 04 00 00 11 22 33 44 " + // page 0: a run of 1024 words 11 22 33 44
    "00 04 00 00 00 00 00 00"; // page 2: a run of 1024 zero words
  assert.equal(toHex(section), golden);
  const dec = rle.createBatchDecoder(ctx(PAGE_SIZE, 16));
  const back = decodeSection(dec, fromHex(golden), 2, PAGE_SIZE);
  assert.deepEqual(back.subarray(0, PAGE_SIZE), colour);
  assert.deepEqual(back.subarray(PAGE_SIZE), new Uint8Array(PAGE_SIZE));
  // A length past the section, lengths that leave bytes over, too few lengths.
  for (
    const bad of [
      "09 00 00 00 08 00 00 00 00 04 00 00 11 22 33 44 00 04 00 00 00 00 00 00",
      "04 00 00 00 08 00 00 00 00 04 00 00 11 22 33 44 00 04 00 00 00 00 00 00",
      "08 00 00 00 08 00 00 00 00 04 00 00 11 22 33 44 00 04 00 00 00 00 00 00 00",
      "08 00 00 00",
    ]
  ) {
    assertThrowsCodecError(
      () => decodeSection(dec, fromHex(bad), 2, PAGE_SIZE),
      /rle/,
    );
  }
});
