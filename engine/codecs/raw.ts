import { CodecError } from "../errors.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";

/**
 * `raw`: the page as it is. Claims every page, so it ends every chain.
 *
 * Encoded form: exactly `pageSize` bytes, the page.
 *
 * @example
 * ```ts
 * const enc = raw.createEncoder({ pageSize: 4096, pageCount: 1, options: {} });
 * const out = new Uint8Array(4096);
 * enc.encode(0, new Uint8Array(4096).fill(7), out); // 4096
 * ```
 */
export const raw: Codec = {
  id: 0,
  name: "raw",
  summary: "the page as it is (claims every page; ends every chain)",
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
