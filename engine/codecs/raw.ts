import { CodecError } from "../errors.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";
import type { BatchDecoder, BatchEncoder } from "./batch.ts";
import { noOptions } from "./_page_codec.ts";

/**
 * `raw`: the page as it is. Claims every page, so it ends every chain.
 *
 * Encoded form: exactly `pageSize` bytes, the page; a section is its pages
 * one after the other, `pages × pageSize` bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { raw } from "@hakobu/hakobu";
 *
 * const enc = raw.createEncoder!({
 *   pageSize: 4096,
 *   pageCount: 1,
 *   options: {},
 * });
 * const out = new Uint8Array(4096);
 * assert.equal(enc.encode(0, new Uint8Array(4096).fill(7), out), 4096);
 * assert.deepEqual(out, new Uint8Array(4096).fill(7));
 * ```
 */
export const raw: Codec = {
  id: 0,
  name: "raw",
  summary: "the page as it is (claims every page; ends every chain)",
  parseOptions: noOptions("raw"),
  maxSectionBytes(pages: number, pageSize: number): number {
    return pages * pageSize;
  },
  createBatchEncoder(_ctx: CodecContext): BatchEncoder {
    return {
      encode(batch, offered, n, claimed, out): number {
        const ps = batch.pageSize;
        for (let k = 0; k < n; k++) {
          const i = offered[k];
          out.set(batch.pages.subarray(i * ps, (i + 1) * ps), k * ps);
          claimed[k] = 1;
        }
        return n * ps;
      },
    };
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    return {
      decode(section, _pfns, _which, n, out): void {
        if (section.length !== n * ctx.pageSize) {
          throw new CodecError(
            "raw",
            `Cannot decode a raw section of ${section.length} bytes: expected ${n} pages of ${ctx.pageSize}`,
          );
        }
        out.set(section);
      },
    };
  },
  maxEncodedBytes(pageSize: number): number {
    return pageSize;
  },
  createEncoder(_ctx: CodecContext): PageEncoder {
    return {
      encode(_pfn: number, page: Uint8Array, out: Uint8Array): number {
        out.set(page);
        return page.length;
      },
    };
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    return {
      decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
        if (input.length !== ctx.pageSize) {
          throw new CodecError(
            "raw",
            `Cannot decode raw page ${pfn}: expected ${ctx.pageSize} bytes, got ${input.length}`,
          );
        }
        page.set(input);
      },
    };
  },
};
