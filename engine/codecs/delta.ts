import { CodecError } from "../errors.ts";
import { PAGE_SIZE } from "../plan.ts";
import { WordView } from "../word_view.ts";
import { DeltaCache } from "./delta_cache.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";
import { channelShare, onlyOptions, pageCodec } from "./_page_codec.ts";

/** QEMU's default `xbzrle-cache-size`: 64 MiB. */
const DEFAULT_CACHE_BYTES = 64 * 1024 * 1024;
/** Longest ULEB128 length the decoder reads (a u32 needs at most five bytes). */
const MAX_ULEB_BYTES = 5;

/**
 * `delta`: the page XORed against the version of the same page sent last,
 * in QEMU's XBZRLE grammar (`docs/codecs/delta.md`):
 *
 * ```text
 * page  = zrun nzrun | zrun nzrun page
 * zrun  = length                  (bytes equal to the old page; 0 only first)
 * nzrun = length byte...          (the NEW page's bytes, length > 0)
 * length = ULEB128
 * ```
 *
 * A trailing zero run is omitted; an unchanged page encodes as nothing at
 * all (length 0, "unchanged"). The sender keeps the last sent version of
 * each page in a direct-mapped cache (option `cacheBytes`, default 64 MiB,
 * slot `pfn % slots`, newest wins) filled by the `sent` hook from a page's
 * second send on (the first send is the bulk pass, as in QEMU); a page not in
 * the cache, or whose encoding would not be smaller than the page, is
 * declined. The receiver decodes against `ctx.current(pfn)`, the page as
 * its memory holds it now.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { delta } from "@hakobu/hakobu";
 *
 * const ctx = { pageSize: 4096, pageCount: 1, options: {} };
 * const enc = delta.createEncoder!(ctx);
 * const out = new Uint8Array(delta.maxEncodedBytes!(4096));
 * const page = new Uint8Array(4096);
 * assert.equal(enc.encode(0, page, out), -1); // not in the cache yet
 * enc.sent?.(0, page, 0); // the bulk pass: sent raw, not cached
 * enc.sent?.(0, page, 0); // sent again (re-dirtied): now cached
 * page[1001] = 1;
 * const len = enc.encode(0, page, out);
 * // zrun 1001 (ULEB128 e9 07), nzrun of 1 byte: 01
 * assert.deepEqual(
 *   out.subarray(0, len),
 *   new Uint8Array([0xe9, 0x07, 0x01, 0x01]),
 * );
 * ```
 */
export const delta: Codec = pageCodec({
  id: 3,
  name: "delta",
  summary:
    "XOR against the page sent last, in QEMU's XBZRLE grammar (bounded sender cache)",
  decodesAgainstCurrent: true,
  gpu: "delta",
  parseOptions(options) {
    return { cacheBytes: cacheBytesOption(options) };
  },
  maxEncodedBytes(pageSize: number): number {
    return pageSize - 1;
  },
  createEncoder(ctx: CodecContext): PageEncoder {
    return new DeltaEncoder(ctx);
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    return new DeltaDecoder(ctx);
  },
});

/** Bytes a ULEB128 encoding of `n` (a u32) takes. */
function ulebSize(n: number): number {
  return n < 0x80
    ? 1
    : n < 0x4000
    ? 2
    : n < 0x200000
    ? 3
    : n < 0x10000000
    ? 4
    : 5;
}

/** Writes `n` as ULEB128 at `out[d]`; returns the offset after it. */
function writeUleb(out: Uint8Array, d: number, n: number): number {
  while (n >= 0x80) {
    out[d++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[d++] = n;
  return d;
}

function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize <= 0 || (pageSize & 3) !== 0) {
    throw new CodecError(
      "delta",
      `Cannot use page size "${pageSize}": delta needs a positive multiple of 4 bytes`,
    );
  }
}

function cacheBytesOption(options: Readonly<Record<string, unknown>>): number {
  onlyOptions("delta", options, ["cacheBytes"]);
  const value = options.cacheBytes ?? DEFAULT_CACHE_BYTES;
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0 ||
    value % PAGE_SIZE !== 0
  ) {
    throw new CodecError(
      "delta",
      `Cannot use delta cacheBytes "${
        String(value)
      }": expected a positive multiple of the page size (${PAGE_SIZE} bytes)`,
    );
  }
  return value;
}

/** Sender half: the page cache and the XBZRLE encoder. */
class DeltaEncoder implements PageEncoder {
  readonly #pageSize: number;
  readonly #pageCount: number;
  /** Last sent versions of re-dirtied pages (shared rules with the GPU twin). */
  readonly #cache: DeltaCache;
  /** Aligned copy of a page handed in at an unaligned offset. */
  readonly #scratch: Uint8Array;
  readonly #scratchWords: Uint32Array;
  readonly #view = new WordView();

  constructor(ctx: CodecContext) {
    checkPageSize(ctx.pageSize);
    // each channel caches its own pfns, in its share of the budget
    const cacheBytes = channelShare(cacheBytesOption(ctx.options), ctx);
    this.#pageSize = ctx.pageSize;
    this.#pageCount = ctx.pageCount;
    this.#cache = new DeltaCache({
      pageSize: ctx.pageSize,
      pageCount: ctx.pageCount,
      cacheBytes,
    });
    this.#scratch = new Uint8Array(ctx.pageSize);
    this.#scratchWords = new Uint32Array(this.#scratch.buffer);
  }

  encode(pfn: number, page: Uint8Array, out: Uint8Array): number {
    const ps = this.#pageSize;
    if (page.length !== ps) {
      throw new CodecError(
        "delta",
        `Cannot encode delta page ${pfn}: expected ${ps} bytes, got ${page.length}`,
      );
    }
    if (out.length < ps - 1) {
      throw new CodecError(
        "delta",
        `Cannot encode delta page ${pfn}: the output buffer has ${out.length} bytes, expected at least ${
          ps - 1
        }`,
      );
    }
    const slot = this.#cache.slotOf(pfn);
    if (slot < 0) return -1;

    // New page as bytes `nb` and words `nw` from word `nbase`.
    let nb = page;
    let nw: Uint32Array;
    let nbase: number;
    if ((page.byteOffset & 3) === 0) {
      nw = this.#view.of(page);
      nbase = page.byteOffset / 4;
    } else {
      this.#scratch.set(page);
      nb = this.#scratch;
      nw = this.#scratchWords;
      nbase = 0;
    }
    // Old page: slot `slot` of the cache.
    const ob = this.#cache.bytes;
    const obase = slot * ps;
    const ow = this.#cache.words;
    const owbase = obase >>> 2;
    const words = ps >>> 2;
    const limit = ps - 1;

    let i = 0;
    let d = 0;
    for (;;) {
      // Zero run: bytes equal to the old page. Words first, bytes at the edges.
      const zs = i;
      while ((i & 3) !== 0 && i < ps && nb[i] === ob[obase + i]) i++;
      if ((i & 3) === 0) {
        let w = i >>> 2;
        while (w < words && nw[nbase + w] === ow[owbase + w]) w++;
        i = w << 2;
        while (i < ps && nb[i] === ob[obase + i]) i++;
      }
      if (i === ps) return zs === 0 ? 0 : d; // unchanged, or trailing zero run omitted
      const zlen = i - zs;

      // Non-zero run: ends at the first byte equal to the old page.
      const ns = i;
      while ((i & 3) !== 0 && i < ps && nb[i] !== ob[obase + i]) i++;
      if ((i & 3) === 0) {
        let w = i >>> 2;
        while (w < words) {
          const x = nw[nbase + w] ^ ow[owbase + w];
          // Some byte of x is zero: the run ends inside this word.
          if (((x - 0x01010101) & ~x & 0x80808080) !== 0) break;
          w++;
        }
        i = w << 2;
        while (i < ps && nb[i] !== ob[obase + i]) i++;
      }
      const nlen = i - ns;

      if (d + ulebSize(zlen) + ulebSize(nlen) + nlen > limit) return -1;
      d = writeUleb(out, d, zlen);
      d = writeUleb(out, d, nlen);
      for (let k = ns; k < i; k++) out[d++] = nb[k];
      if (i === ps) return d;
    }
  }

  sent(pfn: number, page: Uint8Array, _codecId: number): void {
    this.#cache.record(pfn, page);
  }
}

/** Receiver half: XBZRLE applied on a copy of the destination's current page. */
class DeltaDecoder implements PageDecoder {
  readonly #pageSize: number;
  readonly #current: ((pfn: number) => Uint8Array) | undefined;
  /** Input offset after the last {@link #uleb}. */
  #p = 0;

  constructor(ctx: CodecContext) {
    checkPageSize(ctx.pageSize);
    this.#pageSize = ctx.pageSize;
    this.#current = ctx.current;
  }

  decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
    const ps = this.#pageSize;
    if (!this.#current) {
      throw new CodecError(
        "delta",
        `Cannot decode delta page ${pfn}: the receiver gave no current page (CodecContext.current)`,
      );
    }
    if (page.length !== ps) {
      throw new CodecError(
        "delta",
        `Cannot decode delta page ${pfn}: the output buffer has ${page.length} bytes, expected ${ps}`,
      );
    }
    if (input.length >= ps) {
      throw new CodecError(
        "delta",
        `Cannot decode delta page ${pfn}: ${input.length} bytes is not smaller than the page (${ps} bytes)`,
      );
    }
    const current = this.#current(pfn);
    if (current.length !== ps) {
      throw new CodecError(
        "delta",
        `Cannot decode delta page ${pfn}: the current page has ${current.length} bytes, expected ${ps}`,
      );
    }
    page.set(current);
    const n = input.length;
    let p = 0;
    let d = 0;
    while (p < n) {
      const zat = p;
      const zlen = this.#uleb(pfn, input, p);
      p = this.#p;
      if (zlen === 0 && zat !== 0) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: empty zero run at input offset ${zat} (only the first may be empty)`,
        );
      }
      d += zlen;
      if (d > ps) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: zero run at input offset ${zat} ends at byte ${d}, past the page (${ps} bytes)`,
        );
      }
      if (p === n) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: zero run at input offset ${zat} ends the input (a trailing zero run is omitted, so a non-zero run must follow)`,
        );
      }
      const nat = p;
      const nlen = this.#uleb(pfn, input, p);
      p = this.#p;
      if (nlen === 0) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: empty non-zero run at input offset ${nat}`,
        );
      }
      if (nlen > ps - d) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: non-zero run at input offset ${nat} ends at byte ${
            d + nlen
          }, past the page (${ps} bytes)`,
        );
      }
      if (nlen > n - p) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: non-zero run at input offset ${nat} needs ${nlen} bytes, only ${
            n - p
          } left`,
        );
      }
      for (const end = p + nlen; p < end;) page[d++] = input[p++];
    }
  }

  /** Reads a ULEB128 length at `input[p]` into the result, the next offset into `#p`. */
  #uleb(pfn: number, input: Uint8Array, p: number): number {
    const at = p;
    let value = 0;
    let scale = 1;
    for (let k = 0;; k++) {
      if (k === MAX_ULEB_BYTES) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: length at input offset ${at} is longer than ${MAX_ULEB_BYTES} bytes`,
        );
      }
      if (p >= input.length) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${pfn}: length at input offset ${at} is cut off by the end of the input`,
        );
      }
      const b = input[p++];
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (b === 0 && k > 0) {
          throw new CodecError(
            "delta",
            `Cannot decode delta page ${pfn}: length at input offset ${at} is not in its shortest form`,
          );
        }
        break;
      }
      scale *= 128;
    }
    if (value > this.#pageSize) {
      throw new CodecError(
        "delta",
        `Cannot decode delta page ${pfn}: length ${value} at input offset ${at} is larger than the page (${this.#pageSize} bytes)`,
      );
    }
    this.#p = p;
    return value;
  }
}
