import { CodecError } from "../errors.ts";
import { WordView } from "../word_view.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";
import { noOptions, pageCodec } from "./_page_codec.ts";

/** Token kind bit of a header word: set for a literal block, clear for a run. */
const LITERAL = 0x80000000;
/** Count bits of a header word. */
const COUNT_MASK = 0x7fffffff;
/** Whether this host stores a `Uint32Array` little-endian (the wire order of headers). */
const HOST_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * `rle`: run-length encoding of repeated 32-bit words, all in whole words
 * so that a WebGPU twin writes `u32`s at offsets found by one prefix sum
 * (`docs/codecs/rle.md`).
 *
 * Encoded form: tokens, each a little-endian u32 header `kind << 31 | count`
 * (count 1..words left in the page) and then a body:
 * - run (kind 0): one word, repeated `count` times;
 * - literal (kind 1): `count` words as they are.
 *
 * A word equal to a neighbour belongs to a maximal run of at least two equal
 * words and is sent as a run; the other words are grouped in maximal literal
 * blocks. Words are the page's four bytes in page order. The tokens cover the
 * page exactly. A page whose encoding is not smaller than the page is
 * declined (-1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rle } from "@hakobu/hakobu";
 *
 * const enc = rle.createEncoder!({
 *   pageSize: 4096,
 *   pageCount: 1,
 *   options: {},
 * });
 * const out = new Uint8Array(rle.maxEncodedBytes!(4096));
 * const len = enc.encode(0, new Uint8Array(4096).fill(0xab), out);
 * // One run: header 1024 (little-endian), then the word.
 * assert.deepEqual(
 *   out.subarray(0, len),
 *   new Uint8Array([0, 4, 0, 0, 0xab, 0xab, 0xab, 0xab]),
 * );
 * ```
 */
export const rle: Codec = pageCodec({
  id: 2,
  name: "rle",
  cheapZeroPages: true,
  summary:
    "runs of repeated 32-bit words (zero- and colour-filled pages); declines pages it cannot shrink",
  gpu: "rle",
  parseOptions: noOptions("rle"),
  maxEncodedBytes(pageSize: number): number {
    return pageSize - 4;
  },
  createEncoder(ctx: CodecContext): PageEncoder {
    return new RleEncoder(ctx);
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    return new RleDecoder(ctx);
  },
});

/** A header word as it goes on the wire (little-endian), from or to host order. */
function wireOrder(h: number): number {
  return HOST_LE
    ? h
    : (((h & 0xff) << 24) | ((h & 0xff00) << 8) | ((h >>> 8) & 0xff00) |
      (h >>> 24)) >>> 0;
}

function checkPageSize(pageSize: number): void {
  if (!Number.isInteger(pageSize) || pageSize <= 0 || (pageSize & 3) !== 0) {
    throw new CodecError(
      "rle",
      `Cannot use page size "${pageSize}": rle needs a positive multiple of 4 bytes`,
    );
  }
}

/** Sender half. Stateless across pages; the buffers only avoid allocation. */
class RleEncoder implements PageEncoder {
  readonly #pageSize: number;
  readonly #inView = new WordView();
  readonly #outView = new WordView();
  /** Aligned copy of a page handed in at an unaligned offset. */
  readonly #scratchIn: Uint8Array;
  readonly #scratchInWords: Uint32Array;
  /** Aligned output when `out` is unaligned. */
  readonly #scratchOut: Uint8Array;
  readonly #scratchOutWords: Uint32Array;

  constructor(ctx: CodecContext) {
    checkPageSize(ctx.pageSize);
    this.#pageSize = ctx.pageSize;
    this.#scratchIn = new Uint8Array(ctx.pageSize);
    this.#scratchInWords = new Uint32Array(this.#scratchIn.buffer);
    this.#scratchOut = new Uint8Array(ctx.pageSize);
    this.#scratchOutWords = new Uint32Array(this.#scratchOut.buffer);
  }

  encode(pfn: number, page: Uint8Array, out: Uint8Array): number {
    const ps = this.#pageSize;
    if (page.length !== ps) {
      throw new CodecError(
        "rle",
        `Cannot encode rle page ${pfn}: expected ${ps} bytes, got ${page.length}`,
      );
    }
    if (out.length < ps - 4) {
      throw new CodecError(
        "rle",
        `Cannot encode rle page ${pfn}: the output buffer has ${out.length} bytes, expected at least ${
          ps - 4
        }`,
      );
    }
    let w: Uint32Array;
    let wb: number;
    if ((page.byteOffset & 3) === 0) {
      w = this.#inView.of(page);
      wb = page.byteOffset / 4;
    } else {
      this.#scratchIn.set(page);
      w = this.#scratchInWords;
      wb = 0;
    }
    const direct = (out.byteOffset & 3) === 0;
    const o = direct ? this.#outView.of(out) : this.#scratchOutWords;
    const ob = direct ? out.byteOffset / 4 : 0;

    const end = wb + (ps >>> 2);
    // Output words allowed: the encoding must be smaller than the page.
    const limit = ob + (ps >>> 2) - 1;
    let i = wb;
    let d = ob;
    while (i < end) {
      const v = w[i];
      if (i + 1 < end && w[i + 1] === v) {
        let j = i + 2;
        while (j < end && w[j] === v) j++;
        if (d + 2 > limit) return -1;
        o[d] = wireOrder(j - i);
        o[d + 1] = v;
        d += 2;
        i = j;
      } else {
        // Literal block: words equal to neither neighbour. w[i] !== w[i - 1]
        // holds here, and w[j] !== w[j - 1] for every j the loop reaches.
        if (d + 2 > limit) return -1;
        const h = d++;
        let j = i;
        while (j < end && (j + 1 === end || w[j + 1] !== w[j])) {
          if (d >= limit) return -1;
          o[d++] = w[j++];
        }
        o[h] = wireOrder((LITERAL | (j - i)) >>> 0);
        i = j;
      }
    }
    const n = (d - ob) << 2;
    if (!direct) {
      for (let k = 0; k < n; k++) out[k] = this.#scratchOut[k];
    }
    return n;
  }
}

/** Receiver half. */
class RleDecoder implements PageDecoder {
  readonly #pageSize: number;
  readonly #inView = new WordView();
  readonly #pageView = new WordView();
  readonly #scratchIn: Uint8Array;
  readonly #scratchInWords: Uint32Array;
  readonly #scratchPage: Uint8Array;
  readonly #scratchPageWords: Uint32Array;

  constructor(ctx: CodecContext) {
    checkPageSize(ctx.pageSize);
    this.#pageSize = ctx.pageSize;
    this.#scratchIn = new Uint8Array(ctx.pageSize);
    this.#scratchInWords = new Uint32Array(this.#scratchIn.buffer);
    this.#scratchPage = new Uint8Array(ctx.pageSize);
    this.#scratchPageWords = new Uint32Array(this.#scratchPage.buffer);
  }

  decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
    const ps = this.#pageSize;
    const n = input.length;
    if (page.length !== ps) {
      throw new CodecError(
        "rle",
        `Cannot decode rle page ${pfn}: the output buffer has ${page.length} bytes, expected ${ps}`,
      );
    }
    if ((n & 3) !== 0) {
      throw new CodecError(
        "rle",
        `Cannot decode rle page ${pfn}: ${n} bytes is not a whole number of 4-byte words`,
      );
    }
    if (n > ps - 4) {
      throw new CodecError(
        "rle",
        `Cannot decode rle page ${pfn}: ${n} bytes is not smaller than the page (${ps} bytes)`,
      );
    }
    let iw: Uint32Array;
    let ib: number;
    if ((input.byteOffset & 3) === 0) {
      iw = this.#inView.of(input);
      ib = input.byteOffset / 4;
    } else {
      this.#scratchIn.set(input);
      iw = this.#scratchInWords;
      ib = 0;
    }
    const direct = (page.byteOffset & 3) === 0;
    const pw = direct ? this.#pageView.of(page) : this.#scratchPageWords;
    const pb = direct ? page.byteOffset / 4 : 0;
    const words = ps >>> 2;

    const iend = ib + (n >>> 2);
    let p = ib;
    let d = 0;
    while (p < iend) {
      const at = (p - ib) << 2;
      const h = wireOrder(iw[p++]);
      const count = h & COUNT_MASK;
      if (count === 0) {
        throw new CodecError(
          "rle",
          `Cannot decode rle page ${pfn}: empty token at input offset ${at}`,
        );
      }
      if (count > words - d) {
        throw new CodecError(
          "rle",
          `Cannot decode rle page ${pfn}: token at input offset ${at} covers ${count} words, only ${
            words - d
          } left in the page`,
        );
      }
      if ((h & LITERAL) === 0) {
        if (p >= iend) {
          throw new CodecError(
            "rle",
            `Cannot decode rle page ${pfn}: run at input offset ${at} has no word`,
          );
        }
        pw.fill(iw[p++], pb + d, pb + d + count);
      } else {
        if (count > iend - p) {
          throw new CodecError(
            "rle",
            `Cannot decode rle page ${pfn}: literal at input offset ${at} needs ${count} words, only ${
              iend - p
            } left`,
          );
        }
        for (let k = pb + d, e = k + count; k < e;) pw[k++] = iw[p++];
      }
      d += count;
    }
    if (d !== words) {
      throw new CodecError(
        "rle",
        `Cannot decode rle page ${pfn}: tokens cover ${d} of ${words} words`,
      );
    }
    if (!direct) page.set(this.#scratchPage);
  }
}
