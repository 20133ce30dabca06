import { FfiError } from "../../ffi/_library.ts";
import { liblz4 } from "../../ffi/lz4.ts";
import { CodecError } from "../errors.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";

/** Largest acceleration liblz4 honours (`LZ4_ACCELERATION_MAX`). */
const MAX_ACCELERATION = 65537;

/** Loads liblz4, turning a load failure into a {@link CodecError} with the loader's message. */
function _lib(): ReturnType<typeof liblz4> {
  try {
    return liblz4();
  } catch (e) {
    if (e instanceof FfiError) {
      throw new CodecError("lz4", `Codec "lz4" is unavailable: ${e.message}`, {
        cause: e,
      });
    }
    throw e;
  }
}

/** Reads the `acceleration` option: an integer in 1..65537, default 1. */
function _acceleration(options: Readonly<Record<string, unknown>>): number {
  const a = options.acceleration ?? 1;
  if (
    typeof a !== "number" || !Number.isInteger(a) || a < 1 ||
    a > MAX_ACCELERATION
  ) {
    throw new CodecError(
      "lz4",
      `Invalid lz4 option acceleration "${
        String(a)
      }": expected an integer from 1 to ${MAX_ACCELERATION}`,
    );
  }
  return a;
}

/**
 * `lz4`: the page as one LZ4 block (the standard LZ4 block format, no frame,
 * no checksum), through the system liblz4. Claims a page only when the block
 * is smaller than the page; the chain's next codec (normally `raw`) sends
 * the others. Spec: `docs/codecs/lz4.md`.
 *
 * Options: `acceleration` (integer 1..65537, default 1; higher is faster and
 * compresses less, as `LZ4_compress_fast`).
 *
 * @example
 * ```ts
 * const ctx = { pageSize: 4096, pageCount: 1, options: {} };
 * const out = new Uint8Array(4096);
 * const n = lz4.createEncoder(ctx).encode(0, new Uint8Array(4096), out); // 20
 * const page = new Uint8Array(4096);
 * lz4.createDecoder(ctx).decode(0, out.subarray(0, n), page);
 * ```
 */
export const lz4: Codec = {
  id: 5,
  name: "lz4",
  summary: "LZ4 block per page via liblz4 (claims pages it shrinks)",
  maxEncodedBytes(pageSize: number): number {
    return pageSize - 1;
  },
  createEncoder(ctx: CodecContext): PageEncoder {
    const acceleration = _acceleration(ctx.options);
    const { LZ4_compress_fast } = _lib();
    const pageSize = ctx.pageSize;
    const limit = pageSize - 1;
    return {
      encode(_pfn: number, page: Uint8Array, out: Uint8Array): number {
        // Limited output: liblz4 gives up (0) as soon as the block would not
        // be smaller than the page, so an incompressible page costs little.
        const n = LZ4_compress_fast(
          page,
          out,
          pageSize,
          Math.min(limit, out.length),
          acceleration,
        );
        return n > 0 ? n : -1;
      },
    };
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    const { LZ4_decompress_safe } = _lib();
    const pageSize = ctx.pageSize;
    return {
      decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
        if (input.length === 0 || input.length >= pageSize) {
          throw new CodecError(
            "lz4",
            `Cannot decode lz4 page ${pfn}: expected 1 to ${
              pageSize - 1
            } bytes, got ${input.length}`,
          );
        }
        if (page.length < pageSize) {
          throw new CodecError(
            "lz4",
            `Cannot decode lz4 page ${pfn}: the page buffer holds ${page.length} bytes, expected ${pageSize}`,
          );
        }
        // LZ4_decompress_safe never writes beyond dstCapacity and never
        // reads beyond compressedSize; a negative result is malformed input.
        const n = LZ4_decompress_safe(input, page, input.length, pageSize);
        if (n !== pageSize) {
          throw new CodecError(
            "lz4",
            n < 0
              ? `Cannot decode lz4 page ${pfn}: malformed LZ4 block at byte ${
                -n - 1
              } of ${input.length}`
              : `Cannot decode lz4 page ${pfn}: block decodes to ${n} bytes, expected ${pageSize}`,
          );
        }
      },
    };
  },
};
