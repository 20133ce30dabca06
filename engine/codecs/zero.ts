import { CodecError } from "../errors.ts";
import { isZeroPage } from "../zero_page.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";
import type { BatchDecoder, BatchEncoder } from "./batch.ts";
import { noOptions } from "./_page_codec.ts";

/**
 * `zero`: an all-zero page costs no payload bytes at all: in a batch its
 * section is empty and the page costs its share of the batch's claim map
 * (a run of zero pages is two or three bytes). Declines every other page.
 *
 * Encoded form: empty, for a page and for a section. A non-empty input is
 * malformed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zero } from "@hakobu/hakobu";
 *
 * const enc = zero.createEncoder!({
 *   pageSize: 4096,
 *   pageCount: 1,
 *   options: {},
 * });
 * assert.equal(enc.encode(0, new Uint8Array(4096), new Uint8Array(0)), 0);
 * assert.equal(
 *   enc.encode(0, new Uint8Array(4096).fill(1), new Uint8Array(0)),
 *   -1,
 * );
 * ```
 */
export const zero: Codec = {
  id: 1,
  name: "zero",
  summary: "all-zero pages cost no payload; declines other pages",
  gpu: "zero",
  zeroPages: true,
  cheapZeroPages: true,
  parseOptions: noOptions("zero"),
  maxSectionBytes(): number {
    return 0;
  },
  createBatchEncoder(_ctx: CodecContext): BatchEncoder {
    return {
      encode(batch, offered, n, claimed): number {
        // the batch found its zero pages once, when it was filled
        for (let k = 0; k < n; k++) {
          if (batch.zero[offered[k]] === 1) claimed[k] = 1;
        }
        return 0;
      },
    };
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    return {
      decode(section, _pfns, _which, n, out): void {
        if (section.length !== 0) {
          throw new CodecError(
            "zero",
            `Cannot decode a zero section: expected no bytes, got ${section.length}`,
          );
        }
        out.fill(0, 0, n * ctx.pageSize);
      },
    };
  },
  maxEncodedBytes(_pageSize: number): number {
    return 0;
  },
  createEncoder(_ctx: CodecContext): PageEncoder {
    return {
      encode(_pfn: number, page: Uint8Array, _out: Uint8Array): number {
        return isZeroPage(page) ? 0 : -1;
      },
    };
  },
  createDecoder(_ctx: CodecContext): PageDecoder {
    return {
      decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
        if (input.length !== 0) {
          throw new CodecError(
            "zero",
            `Cannot decode zero page ${pfn}: expected an empty payload, got ${input.length} bytes`,
          );
        }
        page.fill(0);
      },
    };
  },
};
