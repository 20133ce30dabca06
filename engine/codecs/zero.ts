import { CodecError } from "../errors.ts";
import { isZeroPage } from "../zero_page.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";

/**
 * `zero`: an all-zero page costs no payload bytes at all (only its entry
 * header on the wire). Declines every other page.
 *
 * Encoded form: empty. A non-empty input is malformed.
 *
 * @example
 * ```ts
 * const enc = zero.createEncoder({ pageSize: 4096, pageCount: 1, options: {} });
 * enc.encode(0, new Uint8Array(4096), new Uint8Array(0)); // 0
 * enc.encode(0, new Uint8Array(4096).fill(1), new Uint8Array(0)); // -1
 * ```
 */
export const zero: Codec = {
  id: 1,
  name: "zero",
  summary: "all-zero pages cost no payload; declines other pages",
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
