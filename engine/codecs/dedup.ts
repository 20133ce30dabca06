import { CodecError } from "../errors.ts";
import { ChunkStore } from "./_chunk_store.ts";
import { fingerprint128, type FingerprintFn } from "./_fingerprint.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";
import {
  type BatchDecoder,
  type BatchEncoder,
  type DecodedPages,
  type PageBatch,
  pageSectionBytes,
  PageSectionReader,
} from "./batch.ts";

/** Wire id of `dedup`. */
const DEDUP_ID = 4;
/** Chunk kinds, one byte each in the encoding. */
const KIND_LITERAL = 0;
const KIND_REFERENCE = 1;
const KIND_ZERO = 2;
/** Allowed `chunkBytes` values. */
const CHUNK_SIZES: readonly number[] = [512, 1024, 2048, 4096];
/** Default `storeBytes`: 256 MiB. */
const DEFAULT_STORE_BYTES = 256 * 1024 * 1024;
/** References are u32 ages, so a store holds at most this many chunks. */
const MAX_SLOTS = 0xffff_ffff;
const OPTION_NAMES: readonly string[] = ["chunkBytes", "storeBytes"];

/** Options of the `dedup` codec, as a policy's codec spec carries them. */
export interface DedupOptions {
  /** Chunk size in bytes: 512, 1024, 2048 or 4096 (default 4096, one page). */
  readonly chunkBytes?: number;
  /** Bytes of chunk data the content store holds on each side (default 256 MiB). */
  readonly storeBytes?: number;
}

/** Test hooks: not part of a policy. */
export interface DedupTesting {
  /** Replaces the fingerprint function (tests inject a weak one to force collisions). */
  readonly fingerprint?: FingerprintFn;
}

interface Config {
  readonly pageSize: number;
  readonly chunkBytes: number;
  readonly chunkWords: number;
  readonly chunks: number;
  readonly capacity: number;
  /** Header byte: log2(chunkBytes) − 9. */
  readonly header: number;
}

function optionError(name: string, value: unknown, detail: string): CodecError {
  return new CodecError(
    "dedup",
    `Cannot use dedup option "${name}" ${JSON.stringify(value)}: ${detail}`,
  );
}

function configure(ctx: CodecContext): Config {
  const opts = ctx.options ?? {};
  for (const key of Object.keys(opts)) {
    if (!OPTION_NAMES.includes(key)) {
      throw optionError(
        key,
        opts[key],
        `unknown option; dedup accepts ${
          OPTION_NAMES.map((n) => `"${n}"`).join(", ")
        }`,
      );
    }
  }
  const pageSize = ctx.pageSize;
  const chunkBytes = opts.chunkBytes ?? 4096;
  if (
    typeof chunkBytes !== "number" || !CHUNK_SIZES.includes(chunkBytes) ||
    chunkBytes > pageSize || pageSize % chunkBytes !== 0
  ) {
    throw optionError(
      "chunkBytes",
      chunkBytes,
      `expected one of ${
        CHUNK_SIZES.join(", ")
      } that divides the page size ${pageSize}`,
    );
  }
  const storeBytes = opts.storeBytes ?? DEFAULT_STORE_BYTES;
  if (
    typeof storeBytes !== "number" || !Number.isSafeInteger(storeBytes) ||
    storeBytes < chunkBytes || storeBytes / chunkBytes > MAX_SLOTS
  ) {
    throw optionError(
      "storeBytes",
      storeBytes,
      `expected an integer from ${chunkBytes} (one chunk) to ${MAX_SLOTS} chunks of ${chunkBytes} bytes`,
    );
  }
  // each channel keeps its own store, in its share of the budget
  const channels = Math.max(1, ctx.channels ?? 1);
  return {
    pageSize,
    chunkBytes,
    chunkWords: chunkBytes >>> 2,
    chunks: pageSize / chunkBytes,
    capacity: Math.max(1, Math.floor(storeBytes / channels / chunkBytes)),
    header: Math.log2(chunkBytes) - 9,
  };
}

function isZeroChunk(
  words: Uint32Array,
  start: number,
  count: number,
): boolean {
  let acc = 0;
  for (let i = start, end = start + count; i < end; i += 4) {
    acc |= words[i] | words[i + 1] | words[i + 2] | words[i + 3];
    if (acc !== 0) return false;
  }
  return acc === 0;
}

/**
 * Gives 32-bit word access to pages without allocating per page: a view over
 * the page's whole buffer is cached per buffer, and an unaligned page is
 * copied into an aligned scratch page.
 */
class PageWords {
  #buffer: ArrayBufferLike | undefined;
  #view: Uint32Array = new Uint32Array(0);
  readonly #scratch: Uint32Array;
  readonly #scratchBytes: Uint8Array;
  /** Words of the last page passed to {@link of}. */
  words: Uint32Array = new Uint32Array(0);
  /** Index in {@link words} of that page's first word. */
  base = 0;

  constructor(pageSize: number) {
    this.#scratch = new Uint32Array(pageSize >>> 2);
    this.#scratchBytes = new Uint8Array(this.#scratch.buffer);
  }

  of(page: Uint8Array): void {
    if ((page.byteOffset & 3) !== 0) {
      this.#scratchBytes.set(page);
      this.words = this.#scratch;
      this.base = 0;
      return;
    }
    if (
      page.buffer !== this.#buffer ||
      this.#view.length < Math.floor((page.byteOffset + page.length) / 4)
    ) {
      this.#buffer = page.buffer;
      this.#view = new Uint32Array(
        page.buffer,
        0,
        Math.floor(page.buffer.byteLength / 4),
      );
    }
    this.words = this.#view;
    this.base = page.byteOffset / 4;
  }
}

function checkPage(
  cfg: Config,
  what: string,
  pfn: number,
  page: Uint8Array,
): void {
  if (page.length !== cfg.pageSize) {
    throw new CodecError(
      "dedup",
      `Cannot ${what} page ${pfn}: expected ${cfg.pageSize} bytes, got ${page.length}`,
    );
  }
}

/**
 * What each half of `dedup` shows of its content store (tests compare the
 * two): chunks inserted, bytes allocated, and a held chunk by age.
 */
export interface DedupStoreView {
  /** Chunks inserted since creation (including evicted ones). */
  readonly count: number;
  /** Bytes allocated for chunk data now; at most the `storeBytes` option. */
  readonly bytes: number;
  /** A copy of the chunk inserted `age` insertions ago, if still held. */
  copy(age: number): Uint8Array | undefined;
}

/**
 * The sender's half of `dedup`. Keeps the content store and a fingerprint
 * index over it; {@link sent} inserts every page the chain sends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DedupEncoder } from "@hakobu/hakobu";
 *
 * const enc = new DedupEncoder({ pageSize: 4096, pageCount: 2, options: {} });
 * const page = new Uint8Array(4096).fill(9);
 * const out = new Uint8Array(4096);
 * assert.equal(enc.encode(0, page, out), -1); // nothing to refer to yet
 * enc.sent(0, page, 0); // raw sent it; the store now holds it
 * // Header, one kind byte (reference), its u32 age 1:
 * assert.equal(enc.encode(1, page, out), 6);
 * assert.deepEqual(out.subarray(0, 6), new Uint8Array([3, 1, 1, 0, 0, 0]));
 * ```
 */
export class DedupEncoder implements PageEncoder {
  readonly #cfg: Config;
  readonly #store: ChunkStore;
  readonly #fingerprint: FingerprintFn;
  readonly #pw: PageWords;
  /** Fingerprint index: direct-mapped, lossy; 4 words per entry. */
  readonly #indexFp: Uint32Array;
  /** Insertion number + 1 of each index entry's chunk; 0 = empty. */
  readonly #indexSeq: Float64Array;
  readonly #mask: number;
  readonly #fp = new Uint32Array(4);
  /** Per chunk of the last encoded page: kind, age, fingerprint. */
  readonly #kinds: Uint8Array;
  readonly #ages: Uint32Array;
  readonly #fps: Uint32Array;
  #lastPage: Uint8Array | undefined;
  #lastPfn = -1;
  #lastClaimed = false;

  /**
   * Creates an encoder with an empty chunk store.
   *
   * @param ctx Codec context; `options` may hold {@link DedupOptions}.
   * @param testing Test hooks only.
   * @throws {CodecError} when an option is unknown or out of range.
   */
  constructor(ctx: CodecContext, testing: DedupTesting = {}) {
    const cfg = configure(ctx);
    this.#cfg = cfg;
    this.#store = new ChunkStore(cfg.capacity, cfg.chunkWords);
    this.#fingerprint = testing.fingerprint ?? fingerprint128;
    this.#pw = new PageWords(cfg.pageSize);
    let entries = 16;
    while (entries < cfg.capacity * 2 && entries < 1 << 30) entries *= 2;
    this.#indexFp = new Uint32Array(entries * 4);
    this.#indexSeq = new Float64Array(entries);
    this.#mask = entries - 1;
    this.#kinds = new Uint8Array(cfg.chunks);
    this.#ages = new Uint32Array(cfg.chunks);
    this.#fps = new Uint32Array(cfg.chunks * 4);
  }

  /** The content store, read-only. */
  get store(): DedupStoreView {
    return this.#store;
  }

  /** Encodes `page` as chunk references, zero chunks and literals; -1 when no chunk repeats. */
  encode(pfn: number, page: Uint8Array, out: Uint8Array): number {
    const n = this.encodeWith(pfn, page, out, this.#kinds, this.#fps);
    this.#lastPage = page;
    this.#lastPfn = pfn;
    this.#lastClaimed = n >= 0;
    return n;
  }

  /**
   * {@link encode} that leaves each chunk's kind and fingerprint in `kinds`
   * (one per chunk) and `fps` (four words per chunk), for a later
   * {@link record} of the same page: the batch form encodes a whole batch
   * before it records any of it.
   */
  encodeWith(
    pfn: number,
    page: Uint8Array,
    out: Uint8Array,
    kinds: Uint8Array,
    fps: Uint32Array,
  ): number {
    const cfg = this.#cfg;
    checkPage(cfg, "encode dedup", pfn, page);
    const pw = this.#pw;
    pw.of(page);
    const { words, base } = pw;
    const cw = cfg.chunkWords;
    const fp = this.#fp;
    let hits = 0;
    for (let c = 0; c < cfg.chunks; c++) {
      const start = base + c * cw;
      if (isZeroChunk(words, start, cw)) {
        kinds[c] = KIND_ZERO;
        hits++;
        continue;
      }
      this.#fingerprint(words, start, cw, fp);
      fps[c * 4] = fp[0];
      fps[c * 4 + 1] = fp[1];
      fps[c * 4 + 2] = fp[2];
      fps[c * 4 + 3] = fp[3];
      const age = this.#lookup(words, start);
      if (age > 0) {
        kinds[c] = KIND_REFERENCE;
        this.#ages[c] = age;
        hits++;
      } else {
        kinds[c] = KIND_LITERAL;
      }
    }
    if (hits === 0) return -1;

    out[0] = cfg.header;
    let pos = 1;
    for (let c = 0; c < cfg.chunks; c++) out[pos++] = kinds[c];
    const cb = cfg.chunkBytes;
    for (let c = 0; c < cfg.chunks; c++) {
      const k = kinds[c];
      if (k === KIND_REFERENCE) {
        const age = this.#ages[c];
        out[pos] = age & 0xff;
        out[pos + 1] = (age >>> 8) & 0xff;
        out[pos + 2] = (age >>> 16) & 0xff;
        out[pos + 3] = age >>> 24;
        pos += 4;
      } else if (k === KIND_LITERAL) {
        const src = c * cb;
        out.set(page.subarray(src, src + cb), pos); // memcpy; one view per literal
        pos += cb;
      }
    }
    return pos;
  }

  /** Inserts the chunks of a sent page into the store, as the receiver's `applied` will. */
  sent(pfn: number, page: Uint8Array, codecId: number): void {
    const cfg = this.#cfg;
    checkPage(cfg, "record sent", pfn, page);
    const same = this.#lastPage === page && this.#lastPfn === pfn;
    const claimed = this.#lastClaimed;
    this.#lastPage = undefined;
    if (codecId === DEDUP_ID && (!same || !claimed)) {
      throw new CodecError(
        "dedup",
        `Cannot record sent dedup page ${pfn}: it was not the page dedup encoded last`,
      );
    }
    this.record(
      page,
      codecId,
      same ? this.#kinds : null,
      same ? this.#fps : null,
    );
  }

  /**
   * Inserts the chunks of a sent page: a dedup page's literal chunks (its
   * `kinds` from {@link encodeWith}), any other page's non-zero chunks
   * (with the fingerprints `encodeWith` already took when dedup declined
   * it, else hashed now).
   */
  record(
    page: Uint8Array,
    codecId: number,
    kinds: Uint8Array | null,
    fps: Uint32Array | null,
  ): void {
    const cfg = this.#cfg;
    const pw = this.#pw;
    pw.of(page);
    const { words, base } = pw;
    const cw = cfg.chunkWords;
    const fp = this.#fp;
    if (codecId === DEDUP_ID) {
      for (let c = 0; c < cfg.chunks; c++) {
        if (kinds![c] !== KIND_LITERAL) continue;
        fp[0] = fps![c * 4];
        fp[1] = fps![c * 4 + 1];
        fp[2] = fps![c * 4 + 2];
        fp[3] = fps![c * 4 + 3];
        this.#insert(words, base + c * cw);
      }
      return;
    }
    // Another codec sent the page: insert every non-zero chunk. When dedup
    // declined this very page, its fingerprints are already known.
    for (let c = 0; c < cfg.chunks; c++) {
      const start = base + c * cw;
      if (kinds) {
        if (kinds[c] === KIND_ZERO) continue;
        fp[0] = fps![c * 4];
        fp[1] = fps![c * 4 + 1];
        fp[2] = fps![c * 4 + 2];
        fp[3] = fps![c * 4 + 3];
      } else {
        if (isZeroChunk(words, start, cw)) continue;
        this.#fingerprint(words, start, cw, fp);
      }
      this.#insert(words, start);
    }
  }

  /** Age of a held chunk equal to `words[start..]`, proven byte for byte; 0 when none. */
  #lookup(words: Uint32Array, start: number): number {
    const fp = this.#fp;
    const e = fp[0] & this.#mask;
    const seq1 = this.#indexSeq[e];
    if (seq1 === 0) return 0;
    const ix = this.#indexFp;
    if (
      ix[e * 4] !== fp[0] || ix[e * 4 + 1] !== fp[1] ||
      ix[e * 4 + 2] !== fp[2] || ix[e * 4 + 3] !== fp[3]
    ) return 0;
    const store = this.#store;
    const age = store.count - (seq1 - 1);
    const off = store.offsetOf(age); // -1 once the slot was overwritten
    if (off < 0) return 0;
    // A fingerprint match is only a candidate: prove equality.
    const ring = store.ring;
    for (let i = 0, n = this.#cfg.chunkWords; i < n; i++) {
      if (ring[off + i] !== words[start + i]) return 0;
    }
    return age;
  }

  /** Inserts one chunk whose fingerprint is in `#fp`. */
  #insert(words: Uint32Array, start: number): void {
    const store = this.#store;
    const fp = this.#fp;
    const e = fp[0] & this.#mask;
    this.#indexFp[e * 4] = fp[0];
    this.#indexFp[e * 4 + 1] = fp[1];
    this.#indexFp[e * 4 + 2] = fp[2];
    this.#indexFp[e * 4 + 3] = fp[3];
    this.#indexSeq[e] = store.count + 1;
    store.insert(words, start);
  }
}

/**
 * The receiver's half of `dedup`. Mirrors the sender's content store: its
 * {@link applied} hook inserts the same chunks in the same order. It never
 * hashes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DedupDecoder } from "@hakobu/hakobu";
 *
 * const dec = new DedupDecoder({ pageSize: 4096, pageCount: 2, options: {} });
 * const page = new Uint8Array(4096).fill(9);
 * dec.applied(0, page, 0); // raw applied it
 * const out = new Uint8Array(4096);
 * dec.decode(1, new Uint8Array([3, 1, 1, 0, 0, 0]), out); // a reference, age 1
 * assert.deepEqual(out, page);
 * ```
 */
export class DedupDecoder implements PageDecoder {
  readonly #cfg: Config;
  readonly #store: ChunkStore;
  readonly #pw: PageWords;
  readonly #kinds: Uint8Array;
  #lastPage: Uint8Array | undefined;
  #lastPfn = -1;

  /**
   * Creates a decoder with an empty chunk store.
   *
   * @param ctx Codec context; `options` may hold {@link DedupOptions} and
   *   must match the sender's `chunkBytes`.
   * @throws {CodecError} when an option is unknown or out of range.
   */
  constructor(ctx: CodecContext) {
    const cfg = configure(ctx);
    this.#cfg = cfg;
    this.#store = new ChunkStore(cfg.capacity, cfg.chunkWords);
    this.#pw = new PageWords(cfg.pageSize);
    this.#kinds = new Uint8Array(cfg.chunks);
  }

  /** The content store, read-only. */
  get store(): DedupStoreView {
    return this.#store;
  }

  /** Validates the whole encoding, then fills `page`. */
  decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
    this.decodeWith(pfn, input, page, this.#kinds);
    this.#lastPage = page;
    this.#lastPfn = pfn;
  }

  /**
   * {@link decode} that leaves each chunk's kind in `kinds`, for a later
   * {@link record} of the same page (the batch form decodes a whole batch
   * before it records any of it).
   */
  decodeWith(
    pfn: number,
    input: Uint8Array,
    page: Uint8Array,
    kinds: Uint8Array,
  ): void {
    const cfg = this.#cfg;
    checkPage(cfg, "decode dedup", pfn, page);
    const n = cfg.chunks;
    const fail = (detail: string): CodecError =>
      new CodecError("dedup", `Cannot decode dedup page ${pfn}: ${detail}`);
    if (input.length < 1 + n) {
      throw fail(
        `expected at least ${
          1 + n
        } bytes (header and ${n} chunk kinds), got ${input.length}`,
      );
    }
    const header = input[0];
    if (header !== cfg.header) {
      throw fail(
        (header & ~3) !== 0
          ? `header byte ${header} has reserved bits set`
          : `the sender uses chunkBytes ${
            512 << header
          }, this receiver ${cfg.chunkBytes}: both sides need the same dedup options`,
      );
    }
    let expected = 1 + n;
    let reused = 0;
    for (let c = 0; c < n; c++) {
      const k = input[1 + c];
      if (k === KIND_LITERAL) expected += cfg.chunkBytes;
      else if (k === KIND_REFERENCE) {
        expected += 4;
        reused++;
      } else if (k === KIND_ZERO) reused++;
      else throw fail(`chunk ${c} has unknown kind ${k}`);
    }
    if (reused === 0) {
      throw fail(
        "no chunk is a reference or zero (dedup never sends such a page)",
      );
    }
    if (input.length !== expected) {
      throw fail(
        `the chunk kinds need ${expected} bytes, got ${input.length}` +
          (input.length < expected ? " (truncated)" : " (trailing bytes)"),
      );
    }
    const store = this.#store;
    for (let c = 0, pos = 1 + n; c < n; c++) {
      const k = input[1 + c];
      if (k === KIND_REFERENCE) {
        const age = readU32(input, pos);
        if (store.offsetOf(age) < 0) {
          throw fail(
            `chunk ${c} refers to age ${age}, but the store holds ${store.held} chunks (capacity ${store.capacity})`,
          );
        }
        pos += 4;
      } else if (k === KIND_LITERAL) {
        pos += cfg.chunkBytes;
      }
    }
    // Everything checked: write.
    const cb = cfg.chunkBytes;
    const ringBytes = new Uint8Array(store.ring.buffer);
    for (let c = 0, pos = 1 + n; c < n; c++) {
      const k = input[1 + c];
      kinds[c] = k;
      const dst = c * cb;
      if (k === KIND_REFERENCE) {
        const off = store.offsetOf(readU32(input, pos)) * 4;
        page.set(ringBytes.subarray(off, off + cb), dst);
        pos += 4;
      } else if (k === KIND_LITERAL) {
        page.set(input.subarray(pos, pos + cb), dst);
        pos += cb;
      } else {
        page.fill(0, dst, dst + cb);
      }
    }
  }

  /** Inserts the chunks of an applied page into the store, as the sender's `sent` did. */
  applied(pfn: number, page: Uint8Array, codecId: number): void {
    const cfg = this.#cfg;
    checkPage(cfg, "record applied", pfn, page);
    const same = this.#lastPage === page && this.#lastPfn === pfn;
    this.#lastPage = undefined;
    if (codecId === DEDUP_ID && !same) {
      throw new CodecError(
        "dedup",
        `Cannot record applied dedup page ${pfn}: it was not the page dedup decoded last`,
      );
    }
    this.record(page, codecId, this.#kinds);
  }

  /**
   * Inserts the chunks of an applied page: a dedup page's literal chunks
   * (its `kinds` from {@link decodeWith}), any other page's non-zero chunks.
   */
  record(page: Uint8Array, codecId: number, kinds: Uint8Array): void {
    const cfg = this.#cfg;
    const pw = this.#pw;
    pw.of(page);
    const { words, base } = pw;
    const cw = cfg.chunkWords;
    const store = this.#store;
    if (codecId === DEDUP_ID) {
      for (let c = 0; c < cfg.chunks; c++) {
        if (kinds[c] === KIND_LITERAL) store.insert(words, base + c * cw);
      }
      return;
    }
    for (let c = 0; c < cfg.chunks; c++) {
      const start = base + c * cw;
      if (!isZeroChunk(words, start, cw)) store.insert(words, start);
    }
  }
}

function readU32(b: Uint8Array, pos: number): number {
  return (b[pos] | (b[pos + 1] << 8) | (b[pos + 2] << 16) |
    (b[pos + 3] << 24)) >>> 0;
}

/**
 * `dedup`: fixed-size chunk deduplication. A chunk whose bytes the receiver
 * already holds travels as a 4-byte reference (its age in a content store
 * both sides keep in step), an all-zero chunk as nothing; a page with no
 * such chunk is declined so the chain's next codec gets it. Options:
 * {@link DedupOptions}. Format and store rule: docs/codecs/dedup.md.
 *
 * Encoded form: a header byte (log2(chunkBytes) − 9), one kind byte per
 * chunk (0 literal, 1 reference, 2 zero), then per chunk in order: a
 * literal's bytes, a reference's u32 little-endian age, nothing for zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dedup } from "@hakobu/hakobu";
 *
 * const ctx = { pageSize: 4096, pageCount: 4, options: { chunkBytes: 1024 } };
 * const enc = dedup.createEncoder!(ctx);
 * const dec = dedup.createDecoder!(ctx);
 * // Page 0 goes raw; page 1 repeats its first chunk and is zero after it.
 * const page0 = new Uint8Array(4096).fill(5);
 * const page1 = new Uint8Array(4096).fill(5, 0, 1024);
 * enc.sent?.(0, page0, 0);
 * dec.applied?.(0, page0, 0);
 * const out = new Uint8Array(dedup.maxEncodedBytes!(4096));
 * const len = enc.encode(1, page1, out);
 * assert.equal(len, 1 + 4 + 4); // header, 4 kinds, one u32 reference
 * const got = new Uint8Array(4096);
 * dec.decode(1, out.subarray(0, len), got);
 * assert.deepEqual(got, page1);
 * ```
 */
export const dedup: Codec = {
  id: DEDUP_ID,
  name: "dedup",
  cheapZeroPages: true,
  readsBatch: true,
  summary:
    "fixed-size chunk deduplication against content the receiver holds; declines pages with no repeat",
  parseOptions(options) {
    const cfg = configure({ pageSize: 4096, pageCount: 1, options });
    return {
      chunkBytes: cfg.chunkBytes,
      storeBytes: cfg.capacity * cfg.chunkBytes,
    };
  },
  decoderStateBytes(options, ctx): number {
    // The store's ring: at most capacity chunks (`_chunk_store.ts`).
    const cfg = configure({ ...ctx, options });
    return cfg.capacity * cfg.chunkBytes;
  },
  maxEncodedBytes,
  maxSectionBytes(pages: number, pageSize: number): number {
    return pageSectionBytes(pages, maxEncodedBytes(pageSize));
  },
  createEncoder(ctx: CodecContext): PageEncoder {
    return new DedupEncoder(ctx);
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    return new DedupDecoder(ctx);
  },
  createBatchEncoder(ctx: CodecContext): BatchEncoder {
    return new DedupBatchEncoder(new DedupEncoder(ctx), ctx);
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    return new DedupBatchDecoder(new DedupDecoder(ctx), ctx);
  },
};

function maxEncodedBytes(pageSize: number): number {
  // Worst claimed page: 512-byte chunks, all literal but one reference.
  return Math.max(6, pageSize - 512 + 5 + (pageSize >>> 9));
}

/**
 * The batch form of the encoder. Its section is the per-page form
 * (`batch.ts`: a u32 length per claimed page, then the pages). The store
 * follows the batch page by page, as the per-page chain did: before a page
 * is encoded, every earlier page of the batch is in the store, whichever
 * codec carries it (dedup `readsBatch`; the receiver decodes dedup's section
 * last, with the other pages in hand).
 */
class DedupBatchEncoder implements BatchEncoder {
  readonly #enc: DedupEncoder;
  readonly #max: number;
  readonly #kinds: Uint8Array;
  readonly #fps: Uint32Array;
  /** The last encode recorded its batch (sent() then has nothing to do). */
  #recorded = false;

  constructor(enc: DedupEncoder, ctx: CodecContext) {
    this.#enc = enc;
    const chunks = configure(ctx).chunks;
    this.#max = maxEncodedBytes(ctx.pageSize);
    this.#kinds = new Uint8Array(chunks);
    this.#fps = new Uint32Array(chunks * 4);
  }

  encode(
    batch: PageBatch,
    offered: Uint32Array,
    n: number,
    claimed: Uint8Array,
    out: Uint8Array,
  ): number {
    const ps = batch.pageSize;
    const page = (i: number) => batch.pages.subarray(i * ps, (i + 1) * ps);
    const view = new DataView(out.buffer, out.byteOffset, out.length);
    let lengths = 0;
    let body = n * 4;
    let next = 0; // the batch's next page to record
    for (let k = 0; k < n; k++) {
      const i = offered[k];
      // pages an earlier codec claimed: their chunks first, in order
      for (; next < i; next++) this.#enc.record(page(next), -1, null, null);
      const len = this.#enc.encodeWith(
        batch.pfns[i],
        page(i),
        out.subarray(body, body + this.#max),
        this.#kinds,
        this.#fps,
      );
      // a declined page goes with a later codec of the chain, as it is
      this.#enc.record(
        page(i),
        len < 0 ? -1 : DEDUP_ID,
        this.#kinds,
        this.#fps,
      );
      next = i + 1;
      if (len < 0) continue;
      claimed[k] = 1;
      view.setUint32(lengths, len, true);
      lengths += 4;
      body += len;
    }
    for (; next < batch.count; next++) {
      this.#enc.record(page(next), -1, null, null);
    }
    this.#recorded = true;
    if (lengths === 0) return 0;
    out.copyWithin(lengths, n * 4, body);
    return lengths + body - n * 4;
  }

  sent(batch: PageBatch, codecOf: Uint8Array): void {
    if (this.#recorded) {
      this.#recorded = false;
      return;
    }
    // Not offered anything this batch (not in the chain, or every page
    // claimed before it): the batch still goes into the store.
    const ps = batch.pageSize;
    for (let i = 0; i < batch.count; i++) {
      this.#enc.record(
        batch.pages.subarray(i * ps, (i + 1) * ps),
        codecOf[i],
        null,
        null,
      );
    }
  }
}

/**
 * The batch form of the decoder: runs after every other section of the
 * batch (dedup `readsBatch`), walks the batch in page order, and keeps the
 * store exactly as the encoder did: each earlier page, decoded by whichever
 * codec, goes in before a dedup page that may refer to it.
 */
class DedupBatchDecoder implements BatchDecoder {
  readonly #dec: DedupDecoder;
  readonly #max: number;
  readonly #ps: number;
  readonly #kinds: Uint8Array;
  readonly #none: Uint8Array;
  /** The last decode recorded its batch (applied() then has nothing to do). */
  #recorded = false;

  constructor(dec: DedupDecoder, ctx: CodecContext) {
    this.#dec = dec;
    const chunks = configure(ctx).chunks;
    this.#max = maxEncodedBytes(ctx.pageSize);
    this.#ps = ctx.pageSize;
    this.#kinds = new Uint8Array(chunks);
    this.#none = new Uint8Array(chunks);
  }

  decode(
    section: Uint8Array,
    pfns: Float64Array,
    which: Uint32Array,
    n: number,
    out: Uint8Array,
    batch?: DecodedPages,
  ): void {
    const ps = this.#ps;
    const bodies = new PageSectionReader("dedup", section, n, this.#max);
    const other = (i: number): Uint8Array => {
      if (!batch) {
        throw new CodecError(
          "dedup",
          "Cannot decode a dedup section without the batch's other pages",
        );
      }
      return batch.page(i);
    };
    let next = 0;
    for (let k = 0; k < n; k++) {
      const i = which[k];
      for (; next < i; next++) this.#dec.record(other(next), -1, this.#none);
      const pfn = pfns[i];
      const page = out.subarray(k * ps, (k + 1) * ps);
      this.#dec.decodeWith(pfn, bodies.next(k, pfn), page, this.#kinds);
      this.#dec.record(page, DEDUP_ID, this.#kinds);
      next = i + 1;
    }
    bodies.end();
    const count = batch?.count ?? next;
    for (; next < count; next++) this.#dec.record(other(next), -1, this.#none);
    this.#recorded = true;
  }

  applied(
    _pfns: Float64Array,
    count: number,
    page: (i: number) => Uint8Array,
    codecOf: Uint8Array,
  ): void {
    if (this.#recorded) {
      this.#recorded = false;
      return;
    }
    for (let i = 0; i < count; i++) {
      this.#dec.record(page(i), codecOf[i], this.#none);
    }
  }
}
