import { FfiError } from "../../ffi/_library.ts";
import { liblz4 } from "../../ffi/lz4.ts";
import { CodecError } from "../errors.ts";
import type { Codec, CodecContext } from "./codec.ts";
import { type BatchDecoder, type BatchEncoder, gatherPages } from "./batch.ts";
import { onlyOptions } from "./_page_codec.ts";

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
  onlyOptions("lz4", options, ["acceleration"]);
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

/** Bytes of an LZ4 block of `n` input bytes at worst (`LZ4_COMPRESSBOUND`). */
function _bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

/**
 * `lz4`: the batch's offered pages, one after the other, as one LZ4 block
 * (the standard LZ4 block format, no frame, no checksum), through the system
 * liblz4: one call per batch. Claims all of them when the block is smaller
 * than the pages, none otherwise (the chain's next codec, normally `raw`,
 * sends them). Each batch's block stands alone (LZ4's window is 64 KiB, so
 * a batch of about 1 MiB loses almost nothing). Spec: `docs/codecs/lz4.md`.
 *
 * Options: `acceleration` (integer 1..65537, default 1; higher is faster and
 * compresses less, as `LZ4_compress_fast`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lz4 } from "@hakobu/hakobu";
 *
 * assert.deepEqual(lz4.parseOptions({ acceleration: 4 }), { acceleration: 4 });
 * // Two pages of text-like bytes as one block (needs the system liblz4):
 * const ctx = { pageSize: 4096, pageCount: 2, options: lz4.parseOptions({}) };
 * const batch = {
 *   count: 2,
 *   pageSize: 4096,
 *   pfns: new Float64Array([0, 1]),
 *   pages: new Uint8Array(2 * 4096).fill(0x61),
 *   zero: new Uint8Array(2),
 * };
 * const offered = new Uint32Array([0, 1]);
 * const claimed = new Uint8Array(2);
 * const section = new Uint8Array(lz4.maxSectionBytes(2, 4096));
 * const n = lz4.createBatchEncoder(ctx).encode(
 *   batch,
 *   offered,
 *   2,
 *   claimed,
 *   section,
 * );
 * assert.deepEqual(claimed, new Uint8Array([1, 1])); // smaller: both claimed
 * const pages = new Uint8Array(2 * 4096);
 * lz4.createBatchDecoder(ctx).decode(
 *   section.subarray(0, n),
 *   batch.pfns,
 *   offered,
 *   2,
 *   pages,
 * );
 * assert.deepEqual(pages, batch.pages);
 * ```
 */
export const lz4: Codec = {
  id: 5,
  name: "lz4",
  cheapZeroPages: true,
  summary:
    "one LZ4 block per batch via liblz4 (claims the batch's pages when it shrinks them)",
  parseOptions(options) {
    return { acceleration: _acceleration(options) };
  },
  maxSectionBytes(pages: number, pageSize: number): number {
    return _bound(pages * pageSize);
  },
  createBatchEncoder(ctx: CodecContext): BatchEncoder {
    const acceleration = _acceleration(ctx.options);
    const { LZ4_compress_fast } = _lib();
    let gathered = new Uint8Array(0);
    return {
      encode(batch, offered, n, claimed, out): number {
        const ps = batch.pageSize;
        if (gathered.length < n * ps) gathered = new Uint8Array(n * ps);
        const src = gatherPages(batch, offered, n, gathered);
        // Limited output: liblz4 gives up (0) as soon as the block would not
        // be smaller than the pages, so incompressible pages cost little.
        const limit = Math.min(n * ps - 1, out.length);
        const len = LZ4_compress_fast(
          src,
          out,
          n * ps,
          limit,
          acceleration,
        );
        if (len <= 0) return 0;
        claimed.fill(1, 0, n);
        return len;
      },
    };
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    const { LZ4_decompress_safe } = _lib();
    const ps = ctx.pageSize;
    return {
      decode(section, _pfns, _which, n, out): void {
        const want = n * ps;
        if (section.length === 0 || section.length >= want) {
          throw new CodecError(
            "lz4",
            `Cannot decode an lz4 section of ${n} pages: expected 1 to ${
              want - 1
            } bytes, got ${section.length}`,
          );
        }
        // LZ4_decompress_safe never writes beyond dstCapacity and never
        // reads beyond compressedSize; a negative result is malformed input.
        const got = LZ4_decompress_safe(section, out, section.length, want);
        if (got !== want) {
          throw new CodecError(
            "lz4",
            got < 0
              ? `Cannot decode an lz4 section of ${n} pages: malformed LZ4 block at byte ${
                -got - 1
              } of ${section.length}`
              : `Cannot decode an lz4 section of ${n} pages: the block decodes to ${got} bytes, expected ${want}`,
          );
        }
      },
    };
  },
};
