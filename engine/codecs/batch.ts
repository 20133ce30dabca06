/**
 * Codecs over batches of pages (protocol 2): the sender hands a codec the
 * pages of a batch that no earlier codec of the chain claimed, and the codec
 * writes one **section** for the pages it claims; the receiver hands the
 * codec its section and gets those pages back, in batch order. A general
 * compressor thus sees a whole batch at once (ratio, one FFI call), and a
 * per-page codec keeps its page format inside a section
 * ({@link pageSectionEncoder}).
 *
 * State rules, the same on both sides, so that stateful codecs stay exact:
 * an encoder sees its state as it was after the previous batch and updates
 * it in {@link BatchEncoder.sent} once the whole batch is framed; a decoder
 * sees its state as after the previous batch and updates it in
 * {@link BatchDecoder.applied} once the whole batch is applied. A pfn
 * appears at most once per batch (`engine/wire/batch.ts`). One exception,
 * declared with `Codec.readsBatch` (dedup): such a codec may also refer to
 * the batch's earlier pages, whichever codec carries them; its encoder
 * updates its state page by page, in batch order, as it encodes, and its
 * decoder runs after every other section of the batch, with their pages in
 * hand, doing the same.
 *
 * @module
 */

import { CodecError } from "../errors.ts";
import type { PageDecoder, PageEncoder } from "./codec.ts";

/**
 * The pages of one batch as the sender holds them: a private copy, so what
 * a codec encodes and what a stateful codec remembers are the same bytes
 * even while the guest writes.
 */
export interface PageBatch {
  /** Pages in the batch. */
  readonly count: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** pfn of page `i` (strictly ascending). */
  readonly pfns: Float64Array;
  /** Page `i` at `[i * pageSize, (i + 1) * pageSize)`. */
  readonly pages: Uint8Array;
  /** 1 where page `i` is all zero (found once, when the batch was filled). */
  readonly zero: Uint8Array;
}

/** The sender's half of a codec over batches. One per channel; may keep state across batches. */
export interface BatchEncoder {
  /**
   * Offered the pages `offered[0..n)` (indexes into `batch`, ascending) that
   * no earlier codec claimed, encodes those it claims into `out` and sets
   * `claimed[k] = 1` for each claimed `offered[k]` (`claimed` is all zero on
   * entry). Returns the section's length; 0 with nothing marked declines
   * every page. `out` holds at least `maxSectionBytes(n)` bytes.
   */
  encode(
    batch: PageBatch,
    offered: Uint32Array,
    n: number,
    claimed: Uint8Array,
    out: Uint8Array,
  ): number;
  /**
   * Told, once the batch is framed, which codec (wire id) took each page,
   * so that a stateful encoder mirrors what the receiver will hold.
   */
  sent?(batch: PageBatch, codecOf: Uint8Array): void;
}

/**
 * The pages of a batch other codecs decoded, for a `readsBatch` decoder:
 * page `i`'s bytes (all zero for a zero page); asked only for pages that
 * are not the decoder's own.
 */
export interface DecodedPages {
  /** Pages in the batch. */
  readonly count: number;
  /** Page `i` of the batch, decoded. */
  page(i: number): Uint8Array;
}

/** The receiver's half of a codec over batches. One per channel; mirrors its encoder. */
export interface BatchDecoder {
  /**
   * Decodes `section` into `n` pages: page `k` of the section (the batch's
   * page `which[k]`, pfn `pfns[which[k]]`) goes to
   * `out[k * pageSize .. (k + 1) * pageSize)`. Checks every length and
   * offset before writing and throws {@link CodecError} on malformed input;
   * writes nothing outside `out`'s first `n` pages.
   */
  decode(
    section: Uint8Array,
    pfns: Float64Array,
    which: Uint32Array,
    n: number,
    out: Uint8Array,
    batch?: DecodedPages,
  ): void;
  /**
   * Told, once the whole batch is applied, every page of it: page `i` is
   * pfn `pfns[i]`, its bytes `page(i)`, decoded by codec `codecOf[i]`.
   */
  applied?(
    pfns: Float64Array,
    count: number,
    page: (i: number) => Uint8Array,
    codecOf: Uint8Array,
  ): void;
}

/**
 * The offered pages `offered[0..n)` of `batch`, one after the other: a view
 * of the batch itself when they are already contiguous (every page offered),
 * else a copy into `into` (grown when too small; the returned view's buffer
 * is the one to pass next time).
 */
export function gatherPages(
  batch: PageBatch,
  offered: Uint32Array,
  n: number,
  into: Uint8Array,
): Uint8Array {
  const ps = batch.pageSize;
  if (n > 0 && offered[n - 1] - offered[0] === n - 1) {
    const first = offered[0];
    return batch.pages.subarray(first * ps, (first + n) * ps);
  }
  for (let k = 0; k < n; k++) {
    const i = offered[k];
    into.set(batch.pages.subarray(i * ps, (i + 1) * ps), k * ps);
  }
  return into.subarray(0, n * ps);
}

/** Bytes of a per-page section for `n` pages of at most `maxPage` encoded bytes each. */
export function pageSectionBytes(n: number, maxPage: number): number {
  return n * (4 + maxPage);
}

/**
 * A {@link BatchEncoder} over a per-page encoder: its section is
 * `u32 length` per claimed page (little-endian), then the pages' encoded
 * bytes in batch order (`docs/wire-format.md`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rle } from "@hakobu/hakobu";
 * import { pageSectionEncoder } from "./batch.ts";
 *
 * const ctx = { pageSize: 4096, pageCount: 8, options: {} };
 * const maxPage = rle.maxEncodedBytes!(4096);
 * const enc = pageSectionEncoder(rle.createEncoder!(ctx), maxPage);
 * const batch = {
 *   count: 2,
 *   pageSize: 4096,
 *   pfns: new Float64Array([3, 5]),
 *   pages: new Uint8Array(2 * 4096).fill(0xab),
 *   zero: new Uint8Array(2),
 * };
 * const claimed = new Uint8Array(2);
 * const out = new Uint8Array(2 * (4 + maxPage));
 * const len = enc.encode(batch, new Uint32Array([0, 1]), 2, claimed, out);
 * assert.deepEqual(claimed, new Uint8Array([1, 1]));
 * assert.equal(len, 2 * 4 + 2 * 8); // two u32 lengths, then two 8-byte pages
 * ```
 */
export function pageSectionEncoder(
  page: PageEncoder,
  maxPage: number,
): BatchEncoder {
  return {
    encode(batch, offered, n, claimed, out) {
      const ps = batch.pageSize;
      // lengths first: claim count is unknown until every page was tried
      let lengths = 0;
      let bodies = 0;
      let body = n * 4; // bodies start after room for every length; packed below
      const view = new DataView(out.buffer, out.byteOffset, out.length);
      for (let k = 0; k < n; k++) {
        const i = offered[k];
        const bytes = batch.pages.subarray(i * ps, (i + 1) * ps);
        // a page gets its bound, never the room of the pages after it
        const len = page.encode(
          batch.pfns[i],
          bytes,
          out.subarray(body, body + maxPage),
        );
        if (len < 0) continue;
        claimed[k] = 1;
        view.setUint32(lengths, len, true);
        lengths += 4;
        body += len;
        bodies += len;
      }
      if (lengths === 0) return 0;
      // close the gap between the lengths and the bodies
      out.copyWithin(lengths, n * 4, n * 4 + bodies);
      return lengths + bodies;
    },
    ...(page.sent
      ? {
        sent(batch: PageBatch, codecOf: Uint8Array) {
          const ps = batch.pageSize;
          for (let i = 0; i < batch.count; i++) {
            page.sent!(
              batch.pfns[i],
              batch.pages.subarray(i * ps, (i + 1) * ps),
              codecOf[i],
            );
          }
        },
      }
      : {}),
  };
}

/**
 * Reads a section written by {@link pageSectionEncoder} (or laid out like
 * one): its `n` u32 page lengths, then the bodies. Every bound is checked
 * here, with one wording for all codecs: the length table fits, each body
 * is at most `maxPage` bytes and inside the section, nothing is left over.
 *
 * @example
 * ```ts ignore
 * const bodies = new PageSectionReader("rle", section, n, 4096);
 * for (let k = 0; k < n; k++) decodePage(bodies.next(k, pfns[which[k]]));
 * bodies.end();
 * ```
 */
export class PageSectionReader {
  readonly #name: string;
  readonly #section: Uint8Array;
  readonly #view: DataView;
  readonly #n: number;
  readonly #maxPage: number;
  #at: number;

  /**
   * @param name The codec, for messages.
   * @param section The section's bytes.
   * @param n Pages in the section.
   * @param maxPage Largest body a page may have, in bytes.
   * @throws {CodecError} when the length table alone does not fit.
   */
  constructor(name: string, section: Uint8Array, n: number, maxPage: number) {
    if (section.length < n * 4) {
      throw new CodecError(
        name,
        `Cannot decode a ${name} section of ${section.length} bytes: its ${n} page lengths alone need ${
          n * 4
        }`,
      );
    }
    this.#name = name;
    this.#section = section;
    this.#view = new DataView(
      section.buffer,
      section.byteOffset,
      section.length,
    );
    this.#n = n;
    this.#maxPage = maxPage;
    this.#at = n * 4;
  }

  /**
   * The body of the section's `k`th page, read in order; `pfn` names it in
   * a failure.
   *
   * @throws {CodecError} when its length is over the maximum or past the section.
   */
  next(k: number, pfn: number): Uint8Array {
    const len = this.#view.getUint32(k * 4, true);
    const section = this.#section;
    if (len > this.#maxPage || len > section.length - this.#at) {
      throw new CodecError(
        this.#name,
        `Cannot decode ${this.#name} page ${pfn}: its length ${len} is over the ${this.#maxPage}-byte maximum or past the ${section.length}-byte section`,
      );
    }
    const body = section.subarray(this.#at, this.#at + len);
    this.#at += len;
    return body;
  }

  /**
   * Checks that the pages read used the whole section.
   *
   * @throws {CodecError} naming the bytes left over.
   */
  end(): void {
    if (this.#at !== this.#section.length) {
      throw new CodecError(
        this.#name,
        `Cannot decode a ${this.#name} section: ${
          this.#section.length - this.#at
        } bytes left after its ${this.#n} pages`,
      );
    }
  }
}

/**
 * A {@link BatchDecoder} over a per-page decoder, for sections written by
 * {@link pageSectionEncoder}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rle } from "@hakobu/hakobu";
 * import { pageSectionDecoder } from "./batch.ts";
 *
 * const ctx = { pageSize: 4096, pageCount: 8, options: {} };
 * const dec = pageSectionDecoder("rle", rle.createDecoder!(ctx), 4096, 4092);
 * // One page: its u32 length 8, then its rle: a run of 1024 words 0xabababab.
 * const length = [8, 0, 0, 0];
 * const run = [0, 4, 0, 0, 0xab, 0xab, 0xab, 0xab];
 * const section = new Uint8Array([...length, ...run]);
 * const out = new Uint8Array(4096);
 * dec.decode(section, new Float64Array([3]), new Uint32Array([0]), 1, out);
 * assert.deepEqual(out, new Uint8Array(4096).fill(0xab));
 * ```
 */
export function pageSectionDecoder(
  name: string,
  page: PageDecoder,
  pageSize: number,
  maxPage: number,
): BatchDecoder {
  return {
    decode(section, pfns, which, n, out) {
      const bodies = new PageSectionReader(name, section, n, maxPage);
      for (let k = 0; k < n; k++) {
        const pfn = pfns[which[k]];
        page.decode(
          pfn,
          bodies.next(k, pfn),
          out.subarray(k * pageSize, (k + 1) * pageSize),
        );
      }
      bodies.end();
    },
    ...(page.applied
      ? {
        applied(pfns, count, bytes, codecOf) {
          for (let i = 0; i < count; i++) {
            page.applied!(pfns[i], bytes(i), codecOf[i]);
          }
        },
      }
      : {}),
  };
}
