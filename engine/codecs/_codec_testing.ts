/**
 * Test helpers shared by the codec tests (not exported from mod.ts): guarded
 * page buffers that catch writes out of bounds, hex for golden vectors, the
 * checks against a reference encoder, and the round trip, decline and fuzz
 * checks that every compressor (lz4, zstd) must pass.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import { EncoderChain } from "./chain.ts";
import type { Codec, CodecContext, PageDecoder } from "./codec.ts";
import { codecById, codecByName } from "./registry.ts";

/** The page size the codec tests use unless they say otherwise. */
const PAGE_SIZE = 4096;

/** The value of every guard byte around a {@link guardedPage}. */
export const GUARD_BYTE = 0xa5;

// ---------------------------------------------------------------- bytes

/**
 * Lower-case hex of bytes, one space between bytes: what golden-vector
 * assertions compare, so that a failure shows the bytes.
 *
 * @example
 * ```ts
 * toHex([0x80, 0x01]); // "80 01"
 * ```
 */
export function toHex(bytes: ArrayLike<number>): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ");
}

/**
 * Bytes from hex of two digits a byte, in groups of whole bytes that
 * whitespace may separate.
 *
 * @example
 * ```ts
 * fromHex("e9 07 01 01"); // Uint8Array [0xe9, 0x07, 0x01, 0x01]
 * fromHex("8f6861"); // Uint8Array [0x8f, 0x68, 0x61]
 * ```
 */
export function fromHex(text: string): Uint8Array {
  const groups = text.split(/\s+/).filter(Boolean);
  if (!groups.every((g) => /^([0-9a-f]{2})+$/i.test(g))) {
    throw new Error(
      `Cannot parse hex "${text}": expected two hex digits a byte`,
    );
  }
  return Uint8Array.from(
    groups.join("").match(/../g) ?? [],
    (b) => parseInt(b, 16),
  );
}

// ---------------------------------------------------------------- guarded pages

/** A page-sized view with guard bytes either side of it in one buffer. */
export interface GuardedPage {
  /** The view to decode into. */
  readonly page: Uint8Array;
  /** Fails, naming the first guard byte changed, when anything was written outside {@link page}. */
  assertIntact(): void;
}

/** Where the guard bytes go around a {@link GuardedPage}. */
export interface GuardOptions {
  /** Guard bytes before the page (so also the page's offset in its buffer); default 16. */
  readonly before?: number;
  /** Guard bytes after the page; default 16. */
  readonly after?: number;
}

/**
 * A page of `pageSize` bytes inside a buffer filled with {@link GUARD_BYTE},
 * to catch a decoder writing out of bounds.
 *
 * @example
 * ```ts
 * const g = guardedPage(4096);
 * lz4.createDecoder(ctx).decode(0, input, g.page);
 * g.assertIntact();
 * ```
 */
export function guardedPage(
  pageSize: number,
  options: GuardOptions = {},
): GuardedPage {
  const { before = 16, after = 16 } = options;
  const buf = new Uint8Array(before + pageSize + after).fill(GUARD_BYTE);
  return {
    page: buf.subarray(before, before + pageSize),
    assertIntact() {
      for (let i = 0; i < before; i++) {
        assert.equal(buf[i], GUARD_BYTE, `guard byte ${i} overwritten`);
      }
      for (let i = before + pageSize; i < buf.length; i++) {
        assert.equal(buf[i], GUARD_BYTE, `guard byte ${i} overwritten`);
      }
    },
  };
}

/** How {@link assertDecodesOrRejects} decodes. */
export interface DecodeOptions extends GuardOptions {
  /** Size of the page to decode into. */
  readonly pageSize: number;
  /** Page frame number passed to the decoder; default 0. */
  readonly pfn?: number;
}

/**
 * Decodes `input` into a guarded page: the decoder may fill the page or throw
 * a {@link CodecError}, but never throw anything else nor write outside the
 * page. What fuzzing a decoder checks on every input.
 *
 * @example
 * ```ts
 * assertDecodesOrRejects(rle.createDecoder(ctx), garbage, { pageSize: 4096 });
 * ```
 */
export function assertDecodesOrRejects(
  decoder: PageDecoder,
  input: Uint8Array,
  options: DecodeOptions,
): void {
  const g = guardedPage(options.pageSize, options);
  try {
    decoder.decode(options.pfn ?? 0, input, g.page);
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
  }
  g.assertIntact();
}

/** How {@link assertSurvivesCutAndFlips} damages a valid encoding. */
export interface CutAndFlips extends DecodeOptions {
  /** The cut copy keeps `cut % (length + 1)` bytes. */
  readonly cut: number;
  /** `[at, value]`: the flipped copy has `value` at `at % length`. */
  readonly flips: readonly (readonly [number, number])[];
}

/**
 * Draws {@link CutAndFlips} for pages of `pageSize`: any cut, up to 4 flips,
 * and the page at an offset of 0 to 32 bytes in a buffer with 64 guard bytes
 * in all, so that unaligned views are fuzzed too.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(cutsAndFlips(256), (damage) => {
 *   assertSurvivesCutAndFlips(dec, valid, damage);
 * }));
 * ```
 */
export function cutsAndFlips(pageSize: number): fc.Arbitrary<CutAndFlips> {
  return fc.record({
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
      maxLength: 4,
    }),
    cut: fc.nat(),
    offset: fc.integer({ min: 0, max: 32 }),
  }).map(({ flips, cut, offset }) => ({
    pageSize,
    before: offset,
    after: 64 - offset,
    cut,
    flips,
  }));
}

/**
 * Decodes a cut copy and a flipped copy of a valid encoding with
 * {@link assertDecodesOrRejects}: a page or a {@link CodecError}, never a
 * write outside the page.
 *
 * @example
 * ```ts
 * assertSurvivesCutAndFlips(dec, valid, { pageSize: 64, cut: 5, flips: [[0, 0xff]] });
 * ```
 */
export function assertSurvivesCutAndFlips(
  decoder: PageDecoder,
  valid: Uint8Array,
  options: CutAndFlips,
): void {
  assertDecodesOrRejects(
    decoder,
    valid.subarray(0, options.cut % (valid.length + 1)),
    options,
  );
  const flipped = valid.slice();
  for (const [at, v] of options.flips) flipped[at % flipped.length] = v;
  assertDecodesOrRejects(decoder, flipped, options);
}

/**
 * Decodes `input` into a guarded page and checks it gives exactly `want`.
 *
 * @example
 * ```ts
 * assertDecodesTo(lz4.createDecoder(ctx), GOLDEN, goldenPage());
 * ```
 */
export function assertDecodesTo(
  decoder: PageDecoder,
  input: Uint8Array,
  want: Uint8Array,
): void {
  const g = guardedPage(want.length);
  decoder.decode(0, input, g.page);
  assert.deepEqual(g.page, want);
  g.assertIntact();
}

// ---------------------------------------------------------------- errors and registry

/**
 * Checks that `fn` throws a {@link CodecError} whose message contains `match`
 * (a string) or matches it (a RegExp).
 *
 * @example
 * ```ts
 * assertThrowsCodecError(() => lz4.createEncoder({ ...ctx, options: { acceleration: 0 } }), /acceleration/);
 * ```
 */
export function assertThrowsCodecError(
  fn: () => unknown,
  match: string | RegExp,
): void {
  assert.throws(
    fn,
    (e: unknown) =>
      e instanceof CodecError &&
      (typeof match === "string"
        ? e.message.includes(match)
        : match.test(e.message)),
  );
}

/**
 * Checks that the registry finds `codec` by its name and by wire id `id`.
 *
 * @example
 * ```ts
 * assertRegistered(lz4, 5);
 * ```
 */
export function assertRegistered(codec: Codec, id: number): void {
  assert.equal(codecByName(codec.name), codec);
  assert.equal(codecById(id), codec);
}

// ---------------------------------------------------------------- reference encoders

/** A codec's encoding of a page beside the encoding a slow reference encoder gives. */
export interface ReferenceCheck {
  /** The codec's encoding, or null where it declined the page. */
  readonly got: Uint8Array | null;
  /** The reference encoding, written with no length limit. */
  readonly want: readonly number[];
  /** Decodes an encoding back to the page, as the receiver would. */
  readonly decode: (encoded: Uint8Array) => Uint8Array;
}

/**
 * Checks a codec against its reference encoder: it declines exactly when the
 * reference encoding is not smaller than the page; otherwise it writes the
 * same bytes, and they decode back to `page`.
 *
 * @example
 * ```ts
 * assertMatchesReference(page, {
 *   got: encode(page),
 *   want: refEncode(page),
 *   decode: (bytes) => decode(bytes, page.length),
 * });
 * ```
 */
export function assertMatchesReference(
  page: Uint8Array,
  check: ReferenceCheck,
): void {
  const { got, want, decode } = check;
  if (want.length >= page.length) {
    assert.equal(
      got,
      null,
      `expected a decline for a ${want.length}-byte encoding`,
    );
    return;
  }
  assert.ok(got, `expected a ${want.length}-byte encoding, got a decline`);
  assert.equal(toHex(got), toHex(want));
  assert.deepEqual(decode(got), page);
}

/**
 * Checks a golden vector (hex, as the codec's doc gives it): the codec
 * writes exactly `golden` for `page`, so does the reference encoder, and
 * `golden` decodes to `page`.
 *
 * @example
 * ```ts
 * assertGoldenVector(new Uint8Array(4096), "00 04 00 00 00 00 00 00", {
 *   got: encode(page),
 *   want: refEncode(page),
 *   decode: (bytes) => decode(bytes, 4096),
 * });
 * ```
 */
export function assertGoldenVector(
  page: Uint8Array,
  golden: string,
  check: ReferenceCheck,
): void {
  const { got, want, decode } = check;
  assert.ok(got);
  assert.equal(toHex(got), toHex(fromHex(golden)));
  assert.equal(toHex(want), toHex(got));
  assert.deepEqual(decode(fromHex(golden)), page);
}

// ---------------------------------------------------------------- compressors

/**
 * The golden page of docs/codecs/lz4.md and docs/codecs/zstd.md:
 * "hakobu!\n" x 128, then 3072 zero bytes.
 *
 * @example
 * ```ts
 * goldenPage().length; // 4096
 * ```
 */
export function goldenPage(): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  const text = new TextEncoder().encode("hakobu!\n");
  for (let i = 0; i < 1024; i++) page[i] = text[i % 8];
  return page;
}

/**
 * Pages that compress: runs of a few byte values, as guest memory often holds.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(compressiblePages(), (page) => page.length === 4096));
 * ```
 */
export function compressiblePages(): fc.Arbitrary<Uint8Array> {
  return fc.array(
    fc.record({
      value: fc.integer({ min: 0, max: 255 }),
      run: fc.integer({ min: 1, max: 600 }),
    }),
    { minLength: 1, maxLength: 40 },
  ).map((runs) => {
    const page = new Uint8Array(PAGE_SIZE);
    let at = 0;
    for (let i = 0; at < PAGE_SIZE; i = (i + 1) % runs.length) {
      const { value, run } = runs[i];
      page.fill(value, at, Math.min(PAGE_SIZE, at + run));
      at += run;
    }
    return page;
  });
}

/** Round trips one page; returns the first encoder's length, or -1 where it declined. */
export type RoundTrip = (page: Uint8Array) => number;

/**
 * A round trip through `codec`: encodes a page with an encoder for each
 * context and, where one claims it, checks the encoding is smaller than the
 * page and that a decoder for each context gives the page back without
 * writing outside it. The encoders and decoders are made once and reused.
 *
 * @example
 * ```ts
 * const roundTrip = roundTripWith(lz4, [ctx]);
 * roundTrip(goldenPage()); // 29
 * ```
 */
export function roundTripWith(
  codec: Codec,
  contexts: readonly CodecContext[],
): RoundTrip {
  const encoders = contexts.map((c) => codec.createEncoder(c));
  const decoders = contexts.map((c) => codec.createDecoder(c));
  return (page) => {
    const out = new Uint8Array(page.length);
    const lengths = encoders.map((enc) => {
      const n = enc.encode(3, page, out);
      if (n >= 0) {
        assert.ok(n < page.length);
        for (const dec of decoders) {
          const g = guardedPage(page.length);
          dec.decode(3, out.slice(0, n), g.page);
          assert.deepEqual(g.page, page);
          g.assertIntact();
        }
      }
      return n;
    });
    return lengths[0];
  };
}

/**
 * Property: every compressible page is claimed and round trips.
 *
 * @example
 * ```ts
 * assertRoundTripsCompressiblePages(roundTripWith(lz4, [ctx]));
 * ```
 */
export function assertRoundTripsCompressiblePages(roundTrip: RoundTrip): void {
  fc.assert(
    fc.property(compressiblePages(), (page) => {
      assert.ok(roundTrip(page) > 0);
    }),
    { numRuns: 200 },
  );
}

/**
 * Property: every random page is declined or round trips.
 *
 * @example
 * ```ts
 * assertRoundTripsOrDeclinesRandomPages(roundTripWith(lz4, [ctx]));
 * ```
 */
export function assertRoundTripsOrDeclinesRandomPages(
  roundTrip: RoundTrip,
): void {
  const randomPage = fc.uint8Array({
    minLength: PAGE_SIZE,
    maxLength: PAGE_SIZE,
  });
  fc.assert(fc.property(randomPage, (page) => void roundTrip(page)), {
    numRuns: 100,
  });
}

/**
 * Checks that `codec` declines a random page, and that a chain of `codec`
 * then raw sends that page raw (id 0) and the golden page with `codec`.
 *
 * @example
 * ```ts
 * assertDeclinesIncompressiblePage(lz4, ctx);
 * ```
 */
export function assertDeclinesIncompressiblePage(
  codec: Codec,
  ctx: CodecContext,
): void {
  const page = new Uint8Array(ctx.pageSize);
  crypto.getRandomValues(page);
  assert.equal(
    codec.createEncoder(ctx).encode(0, page, new Uint8Array(ctx.pageSize)),
    -1,
  );
  const chain = new EncoderChain({ pageSize: ctx.pageSize, pageCount: 1 });
  chain.select([{ name: codec.name }, { name: "raw" }]);
  assert.equal(chain.encode(0, page).codecId, 0);
  assert.equal(chain.encode(0, goldenPage()).codecId, codec.id);
}

/**
 * Checks that a decoder of `codec` rejects an empty input, an input as long
 * as the page, a short garbage block, and a page buffer that is too small.
 *
 * @example
 * ```ts
 * assertRejectsBadLengths(lz4, ctx);
 * ```
 */
export function assertRejectsBadLengths(
  codec: Codec,
  ctx: CodecContext,
): void {
  const dec = codec.createDecoder(ctx);
  const page = new Uint8Array(ctx.pageSize);
  assert.throws(() => dec.decode(0, new Uint8Array(0), page), CodecError);
  assert.throws(
    () => dec.decode(0, new Uint8Array(ctx.pageSize), page),
    CodecError,
  );
  // A valid block of fewer bytes than a page.
  const small = new Uint8Array(ctx.pageSize);
  const n = codec.createEncoder(ctx).encode(
    0,
    new Uint8Array(ctx.pageSize),
    small,
  );
  assert.ok(n > 0);
  const half = new Uint8Array(64);
  assert.throws(
    () => dec.decode(0, half.subarray(0, 20).fill(0x10), page),
    CodecError,
  );
  assert.throws(
    () => dec.decode(0, small.subarray(0, n), new Uint8Array(100)),
    CodecError,
  );
}

/** What {@link assertSurvivesMutatedInput} starts from and decodes with. */
export interface MutationOptions {
  /** Valid encodings to mutate (golden vectors); encodings of compressible pages are added. */
  readonly seeds: readonly Uint8Array[];
  /** A decoder is made for each context and given every input; default `[ctx]`. */
  readonly decodeWith?: readonly CodecContext[];
}

/**
 * Fuzzes `codec`'s decoders with mutated, cut and extended valid encodings
 * and with random input: each must give a page or a {@link CodecError},
 * never a write out of bounds.
 *
 * @example
 * ```ts
 * assertSurvivesMutatedInput(lz4, ctx, { seeds: [GOLDEN] });
 * ```
 */
export function assertSurvivesMutatedInput(
  codec: Codec,
  ctx: CodecContext,
  options: MutationOptions,
): void {
  const pageSize = ctx.pageSize;
  const decoders = (options.decodeWith ?? [ctx]).map((c) =>
    codec.createDecoder(c)
  );
  const valid: Uint8Array[] = [...options.seeds];
  fc.assert(
    fc.property(compressiblePages(), (page) => {
      const out = new Uint8Array(pageSize);
      const n = codec.createEncoder(ctx).encode(0, page, out);
      if (n > 0) valid.push(out.slice(0, n));
    }),
    { numRuns: 30 },
  );
  const mutation = fc.record({
    which: fc.nat(),
    flips: fc.array(
      fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      { minLength: 1, maxLength: 6 },
    ),
    cut: fc.nat(),
    grow: fc.uint8Array({ maxLength: 16 }),
  });
  fc.assert(
    fc.property(mutation, ({ which, flips, cut, grow }) => {
      const base = valid[which % valid.length];
      const input = new Uint8Array(base.length + grow.length);
      input.set(base);
      input.set(grow, base.length);
      for (const { at, value } of flips) input[at % input.length] = value;
      const cutTo = cut % 3 === 0 ? 1 + (cut % input.length) : input.length;
      for (const dec of decoders) {
        assertDecodesOrRejects(
          dec,
          input.subarray(0, Math.min(cutTo, pageSize - 1)),
          { pageSize },
        );
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: pageSize - 1 }),
      (input) => {
        for (const dec of decoders) {
          assertDecodesOrRejects(dec, input, { pageSize });
        }
      },
    ),
    { numRuns: 500 },
  );
}
