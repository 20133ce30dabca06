/**
 * Test helpers shared by the codec tests (not exported from mod.ts): guarded
 * page buffers that catch writes out of bounds, hex for golden vectors, the
 * checks against a reference encoder for the per-page codecs, batches and
 * sections for the batch forms, and the round trip and fuzz checks that
 * every compressor (lz4, zstd) must pass on batches.
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import { PAGE_SIZE } from "../plan.ts";
import { parseBatchPayload } from "../wire/batch.ts";
import { decodeCodec, encodeCodec } from "../wire/messages.ts";
import { isZeroPage } from "../zero_page.ts";
import type { BatchDecoder, BatchEncoder, PageBatch } from "./batch.ts";
import { BatchDecoderSet } from "./batch_chain.ts";
import type { Codec, CodecContext, PageDecoder } from "./codec.ts";
import { codecById, codecByName, codecNames } from "./registry.ts";

/** The page size the codec tests use unless they say otherwise. */

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
 * rle.createDecoder!(ctx).decode(0, input, g.page);
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
 * assertDecodesTo(rle.createDecoder!(ctx), GOLDEN, page);
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

/**
 * The hex strings quoted in `docs/codecs/<codec>.md` (backticked, lower-case,
 * at least 8 digits): what a test checks its golden vectors against, so the
 * specification and the tests cannot drift apart.
 *
 * @example
 * ```ts
 * assert.ok((await docHexes("lz4")).includes(toHex(GOLDEN).replaceAll(" ", "")));
 * ```
 */
export async function docHexes(codec: string): Promise<string[]> {
  const url = new URL(`../../docs/codecs/${codec}.md`, import.meta.url);
  const text = await Deno.readTextFile(url);
  return [...text.matchAll(/`([0-9a-f]{8,})`/g)].map((m) => m[1]);
}

// ---------------------------------------------------------------- errors and registry

/**
 * Checks that `fn` throws a {@link CodecError} whose message contains `match`
 * (a string) or matches it (a RegExp).
 *
 * @example
 * ```ts
 * assertThrowsCodecError(() => lz4.parseOptions({ acceleration: 0 }), /acceleration/);
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

// ---------------------------------------------------------------- batches

/**
 * A {@link PageBatch} of copies of `pages`, with pfns `pfns` (default 0, 1,
 * 2, ...) and each page's zero flag found as `engine/pipeline/page_batch.ts`
 * finds it.
 *
 * @example
 * ```ts
 * const batch = pageBatch([goldenPage(), new Uint8Array(4096)]);
 * batch.zero; // Uint8Array [0, 1]
 * ```
 */
export function pageBatch(
  pages: readonly Uint8Array[],
  pfns?: readonly number[],
): PageBatch {
  const ps = pages.length > 0 ? pages[0].length : PAGE_SIZE;
  const bytes = new Uint8Array(pages.length * ps);
  const zero = new Uint8Array(pages.length);
  pages.forEach((p, i) => {
    assert.equal(p.length, ps, `page ${i} is ${p.length} bytes, not ${ps}`);
    bytes.set(p, i * ps);
    zero[i] = isZeroPage(p) ? 1 : 0;
  });
  return {
    count: pages.length,
    pageSize: ps,
    pfns: Float64Array.from(pfns ?? pages.map((_, i) => i)),
    pages: bytes,
    zero,
  };
}

/**
 * The pages `offered[0..n)` of `batch`, one after the other: what a
 * section of those pages must decode to.
 *
 * @example
 * ```ts
 * offeredPages(batch, new Uint32Array([1]), 1).length; // 4096
 * ```
 */
export function offeredPages(
  batch: PageBatch,
  offered: Uint32Array,
  n: number,
): Uint8Array {
  const ps = batch.pageSize;
  const out = new Uint8Array(n * ps);
  for (let k = 0; k < n; k++) {
    const i = offered[k];
    out.set(batch.pages.subarray(i * ps, (i + 1) * ps), k * ps);
  }
  return out;
}

/** What {@link encodeSection} got from an encoder. */
export interface EncodedSection {
  /** A copy of the section (`length` bytes). */
  readonly section: Uint8Array;
  /** 1 for each offered page the codec claimed. */
  readonly claimed: Uint8Array;
  /** Claimed pages. */
  readonly claims: number;
}

/**
 * Offers `offered[0..n)` of `batch` (default: every page) to `encoder`, into
 * an output of exactly `codec.maxSectionBytes(n)` bytes followed by guard
 * bytes, and checks that the encoder wrote nothing past that bound, that it
 * returns a length within it, and that it claims some page exactly when it
 * writes bytes (a codec with an empty section, `zero`, aside).
 *
 * @example
 * ```ts
 * const { section, claims } = encodeSection(lz4, enc, pageBatch([goldenPage()]));
 * ```
 */
export function encodeSection(
  codec: Codec,
  encoder: BatchEncoder,
  batch: PageBatch,
  offered: Uint32Array = Uint32Array.from(
    { length: batch.count },
    (_, i) => i,
  ),
  n: number = offered.length,
): EncodedSection {
  const max = codec.maxSectionBytes(n, batch.pageSize);
  const g = guardedPage(max, { before: 0, after: 64 });
  const claimed = new Uint8Array(n);
  const len = encoder.encode(batch, offered, n, claimed, g.page);
  g.assertIntact();
  assert.ok(
    Number.isInteger(len) && len >= 0 && len <= max,
    `${codec.name} section length ${len} is outside 0..${max}`,
  );
  const claims = claimed.reduce((a, b) => a + b, 0);
  assert.ok(claimed.every((c) => c === 0 || c === 1));
  if (!codec.zeroPages) {
    assert.equal(
      claims > 0,
      len > 0,
      `${codec.name} claimed ${claims} pages in a ${len}-byte section`,
    );
  }
  return { section: g.page.slice(0, len), claimed, claims };
}

/**
 * Decodes a section of `n` pages into a guarded buffer (pfns 0..n-1) and
 * returns a copy of the pages; the decoder may throw, but never writes
 * outside its `n` pages.
 *
 * @example
 * ```ts
 * const pages = decodeSection(lz4.createBatchDecoder(ctx), section, 2, 4096);
 * ```
 */
export function decodeSection(
  decoder: BatchDecoder,
  section: Uint8Array,
  n: number,
  pageSize: number,
  options: GuardOptions = {},
): Uint8Array {
  const g = guardedPage(n * pageSize, options);
  const which = Uint32Array.from({ length: n }, (_, k) => k);
  const pfns = Float64Array.from({ length: n }, (_, k) => k);
  try {
    decoder.decode(section, pfns, which, n, g.page);
  } finally {
    g.assertIntact();
  }
  return g.page.slice();
}

/**
 * Decodes a section into a guarded buffer: it may fill the pages or throw a
 * {@link CodecError}, but never throw anything else nor write outside its
 * `n` pages. What fuzzing a batch decoder checks on every input. Returns
 * whether it decoded.
 *
 * @example
 * ```ts
 * assertSectionDecodesOrRejects(lz4.createBatchDecoder(ctx), garbage, 2, 4096);
 * ```
 */
export function assertSectionDecodesOrRejects(
  decoder: BatchDecoder,
  section: Uint8Array,
  n: number,
  pageSize: number,
  options: GuardOptions = {},
): boolean {
  try {
    decodeSection(decoder, section, n, pageSize, options);
    return true;
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    return false;
  }
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
 * A page of text: words of a 16-word vocabulary in a pseudo-random order
 * given by `seed`, so it compresses, and a stronger setting (lower lz4
 * acceleration, higher zstd level) finds more of its matches.
 *
 * @example
 * ```ts
 * textPage(1).length; // 4096
 * ```
 */
export function textPage(seed = 1): Uint8Array {
  const words =
    "hakobu page round dirty codec frame delta zero memory guest switchover policy link raw dedup chunk"
      .split(" ");
  const page = new Uint8Array(PAGE_SIZE);
  let x = seed >>> 0;
  for (let i = 0; i < PAGE_SIZE;) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    for (const c of words[(x >>> 16) & 15] + " ") {
      if (i < PAGE_SIZE) page[i++] = c.charCodeAt(0);
    }
  }
  return page;
}

/**
 * A page of bytes from a seeded generator: incompressible.
 *
 * @example
 * ```ts
 * randomPage(7).length; // 4096
 * ```
 */
export function randomPage(seed: number): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  let a = seed >>> 0;
  for (let i = 0; i < PAGE_SIZE; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    page[i] = (t ^ (t >>> 14)) >>> 24;
  }
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

/** One page of a drawn batch: what it holds. */
type PageKind =
  | { kind: "compressible"; page: Uint8Array }
  | { kind: "random"; seed: number }
  | { kind: "zero" }
  | { kind: "text"; seed: number };

function pageOf(p: PageKind): Uint8Array {
  switch (p.kind) {
    case "compressible":
      return p.page;
    case "random":
      return randomPage(p.seed);
    case "zero":
      return new Uint8Array(PAGE_SIZE);
    case "text":
      return textPage(p.seed);
  }
}

/** A drawn batch: its pages, and which of them are offered to the codec. */
export interface DrawnBatch {
  /** The batch. */
  readonly batch: PageBatch;
  /** Offered page indexes, ascending. */
  readonly offered: Uint32Array;
  /** Whether every offered page is compressible (no random page among them). */
  readonly compressible: boolean;
}

/**
 * Batches of 1 to 24 pages (compressible, text, zero or random ones, with
 * ascending pfns that may skip), of which a non-empty subset is offered: the
 * pages an earlier codec of a chain did not claim.
 *
 * @example
 * ```ts
 * fc.assert(fc.property(drawnBatches(), ({ batch, offered }) => offered.length <= batch.count));
 * ```
 */
export function drawnBatches(
  options: { random?: boolean } = {},
): fc.Arbitrary<DrawnBatch> {
  const kinds: fc.Arbitrary<PageKind>[] = [
    compressiblePages().map((page) => ({ kind: "compressible", page })),
    fc.constant({ kind: "zero" }),
    fc.nat().map((seed) => ({ kind: "text", seed })),
  ];
  if (options.random ?? true) {
    kinds.push(fc.nat().map((seed) => ({ kind: "random", seed })));
  }
  return fc.array(
    fc.record({
      page: fc.oneof(...kinds),
      gap: fc.integer({ min: 1, max: 3 }),
      offered: fc.boolean(),
    }),
    { minLength: 1, maxLength: 24 },
  ).map((drawn) => {
    let pfn = -1;
    const pfns = drawn.map((d) => (pfn += d.gap));
    const batch = pageBatch(drawn.map((d) => pageOf(d.page)), pfns);
    let offered = drawn.flatMap((d, i) => d.offered ? [i] : []);
    if (offered.length === 0) offered = [drawn.length - 1];
    return {
      batch,
      offered: Uint32Array.from(offered),
      compressible: offered.every((i) => drawn[i].page.kind !== "random"),
    };
  });
}

/** What a compressor's batch round trip checks. */
export interface BatchRoundTripOptions {
  /** `"all-or-none"`: a claim takes every offered page (lz4); `"all"`: every batch is claimed (zstd). */
  readonly claims: "all-or-none" | "all";
  /** Drawn runs (default 60). */
  readonly numRuns?: number;
}

/**
 * Property: through one encoder and one decoder (a channel), a sequence of
 * drawn batches round trips: each section claims as `options.claims` says,
 * a batch of compressible pages is always claimed, and the decoder gives
 * back exactly the offered pages without writing outside them.
 *
 * @example
 * ```ts
 * assertRoundTripsBatches(lz4, ctx, { claims: "all-or-none" });
 * ```
 */
export function assertRoundTripsBatches(
  codec: Codec,
  ctx: CodecContext,
  options: BatchRoundTripOptions,
): void {
  fc.assert(
    fc.property(
      fc.array(drawnBatches(), { minLength: 1, maxLength: 4 }),
      (batches) => {
        const enc = codec.createBatchEncoder(ctx);
        const dec = codec.createBatchDecoder(ctx);
        for (const { batch, offered, compressible } of batches) {
          const n = offered.length;
          const { section, claims } = encodeSection(
            codec,
            enc,
            batch,
            offered,
          );
          if (options.claims === "all" || compressible) {
            assert.equal(claims, n, `${codec.name} declined a batch`);
          }
          if (claims === 0) continue;
          assert.equal(claims, n, `${codec.name} claimed part of a batch`);
          assert.deepEqual(
            decodeSection(dec, section, n, batch.pageSize),
            offeredPages(batch, offered, n),
          );
        }
      },
    ),
    { numRuns: options.numRuns ?? 60 },
  );
}

/** A valid section and what decodes it: the seed of {@link assertSurvivesMutatedSections}. */
export interface SectionSeed {
  /** The section. */
  readonly section: Uint8Array;
  /** Pages it holds. */
  readonly n: number;
  /** Sections (and their page counts) a decoder must take first (a stream's earlier batches). */
  readonly before?: readonly { section: Uint8Array; n: number }[];
}

/**
 * Fuzzes a codec's batch decoder with mutated, cut, extended and miscounted
 * (one page more or fewer) valid sections, and with random input: each
 * must give pages or a {@link CodecError}, never a write outside its pages.
 * Every input goes to a fresh decoder that first took the seed's `before`
 * sections.
 *
 * @example
 * ```ts
 * assertSurvivesMutatedSections(lz4, ctx, { seeds: [{ section: GOLDEN, n: 2 }] });
 * ```
 */
export function assertSurvivesMutatedSections(
  codec: Codec,
  ctx: CodecContext,
  options: { seeds: readonly SectionSeed[]; numRuns?: number },
): void {
  const ps = ctx.pageSize;
  const fresh = (seed: SectionSeed): BatchDecoder => {
    const dec = codec.createBatchDecoder(ctx);
    for (const b of seed.before ?? []) decodeSection(dec, b.section, b.n, ps);
    return dec;
  };
  const runs = options.numRuns ?? 1000;
  const mutation = fc.record({
    which: fc.nat(),
    flips: fc.array(
      fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      { maxLength: 6 },
    ),
    cut: fc.nat(),
    grow: fc.uint8Array({ maxLength: 16 }),
    pages: fc.integer({ min: -1, max: 1 }),
    offset: fc.integer({ min: 0, max: 32 }),
  });
  let rejected = 0;
  fc.assert(
    fc.property(
      mutation,
      ({ which, flips, cut, grow, pages, offset }) => {
        const seed = options.seeds[which % options.seeds.length];
        const base = seed.section;
        const input = new Uint8Array(base.length + grow.length);
        input.set(base);
        input.set(grow, base.length);
        for (const { at, value } of flips) input[at % input.length] = value;
        const cutTo = cut % 3 === 0 ? cut % (input.length + 1) : input.length;
        const n = Math.max(1, seed.n + pages);
        const ok = assertSectionDecodesOrRejects(
          fresh(seed),
          input.subarray(0, cutTo),
          n,
          ps,
          { before: offset, after: 64 - offset },
        );
        if (!ok) rejected++;
      },
    ),
    { numRuns: runs },
  );
  // The mutations are not all harmless: most are caught.
  assert.ok(rejected > runs / 4, `only ${rejected} of ${runs} rejected`);
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 2 * ps }),
      fc.integer({ min: 1, max: 3 }),
      (input, n) => {
        assertSectionDecodesOrRejects(
          codec.createBatchDecoder(ctx),
          input,
          n,
          ps,
        );
      },
    ),
    { numRuns: Math.ceil(runs / 4) },
  );
}

// ---------------------------------------------------------------- a channel's receiver

/** What {@link ChannelReceiver.receive} applied. */
export interface Received {
  /** Pages of the batch. */
  readonly count: number;
  /** Pages per codec id. */
  readonly claims: ReadonlyMap<number, number>;
}

/**
 * The receiving end of one channel as the receive core runs it, over a
 * memory image: every registered codec negotiated, CODEC frames announced
 * through their wire encoding, each BATCH payload validated, decoded into
 * the set's scratch, applied to memory, then told to the decoders.
 *
 * @example
 * ```ts
 * const rx = new ChannelReceiver(16);
 * rx.announce(chain.takeNewCodecs());
 * rx.receive(chain.encode(batch, (n) => new Uint8Array(n)).payload);
 * ```
 */
export class ChannelReceiver {
  /** Destination memory, all zero at first. */
  readonly memory: Uint8Array;
  /** The channel's decoders. */
  readonly set: BatchDecoderSet;
  readonly #pageSize: number;
  readonly #pageCount: number;

  /**
   * @param pageCount Pages of memory.
   * @param geometry Page size (default 4096) and the migration's channels.
   */
  constructor(
    pageCount: number,
    geometry: { pageSize?: number; channels?: number } = {},
  ) {
    const ps = geometry.pageSize ?? PAGE_SIZE;
    this.#pageSize = ps;
    this.#pageCount = pageCount;
    this.memory = new Uint8Array(pageCount * ps);
    const negotiated = new Map(
      codecNames().map((n) => [codecByName(n).id, codecByName(n)]),
    );
    this.set = new BatchDecoderSet(negotiated, {
      pageSize: ps,
      pageCount,
      channels: geometry.channels,
      current: (pfn) => this.memory.subarray(pfn * ps, (pfn + 1) * ps),
    });
  }

  /** Announces codecs as CODEC frames would (the sender's `takeNewCodecs()`). */
  announce(
    fresh: readonly {
      codec: Codec;
      options: Readonly<Record<string, unknown>>;
    }[],
  ): void {
    for (const { codec, options } of fresh) {
      this.set.announce(
        decodeCodec(
          encodeCodec({ id: codec.id, name: codec.name, options }),
        ),
        0,
      );
    }
  }

  /** Validates, decodes and applies one BATCH payload. */
  receive(payload: Uint8Array): Received {
    const ps = this.#pageSize;
    const parsed = parseBatchPayload(payload, {
      pageCount: this.#pageCount,
      knows: (id) => this.set.knows(id),
    });
    const decoded = this.set.decode(payload, parsed);
    const scratch = this.set.scratch;
    const claims = new Map<number, number>();
    for (let i = 0; i < parsed.count; i++) {
      const at = parsed.pfns[i] * ps;
      const slot = decoded.slotOf[i];
      if (slot < 0) this.memory.fill(0, at, at + ps);
      else this.memory.set(scratch.subarray(slot * ps, (slot + 1) * ps), at);
      const id = decoded.codecOf[i];
      claims.set(id, (claims.get(id) ?? 0) + 1);
    }
    this.set.applied(parsed, decoded, new Uint8Array(ps));
    return { count: parsed.count, claims };
  }
}
