import { CodecError } from "../errors.ts";
import {
  WINDOW_LOG_MAX,
  zstdBound,
  ZstdCompressStream,
  ZstdDecompressStream,
} from "./_zstd_stream.ts";
import type { Codec, CodecContext } from "./codec.ts";
import { type BatchDecoder, type BatchEncoder, gatherPages } from "./batch.ts";
import { onlyOptions } from "./_page_codec.ts";

/** Lowest and highest zstd levels accepted (`ZSTD_minCLevel()`, `ZSTD_maxCLevel()`). */
const MIN_LEVEL = -131072;
const MAX_LEVEL = 22;

/** zstd's largest block (`ZSTD_BLOCKSIZE_MAX`, 128 KiB). */
const ZSTD_BLOCK_BYTES = 128 * 1024;

/** Reads the `level` option: an integer in -131072..22, default 1. */
function _level(options: Readonly<Record<string, unknown>>): number {
  onlyOptions("zstd", options, ["level"]);
  const l = options.level ?? 1;
  if (
    typeof l !== "number" || !Number.isInteger(l) || l < MIN_LEVEL ||
    l > MAX_LEVEL
  ) {
    throw new CodecError(
      "zstd",
      `Invalid zstd option level "${
        String(l)
      }": expected an integer from ${MIN_LEVEL} to ${MAX_LEVEL}`,
    );
  }
  return l;
}

/**
 * `zstd`: each channel keeps one zstd stream (RFC 8878) for its whole
 * migration, through the system libzstd, as QEMU's multifd zstd keeps one
 * per channel: a batch's offered pages, one after the other, go in as one
 * input and come out flushed (`ZSTD_e_flush`), so the section is decodable
 * on its own by the channel's decoder, and later batches can refer back to
 * earlier ones within the window. The ratio thus approaches `zstd` on the
 * whole stream. Claims every page it is offered (an incompressible batch
 * costs a few bytes of block headers more than raw). Spec:
 * `docs/codecs/zstd.md`.
 *
 * Options: `level` (integer -131072..22, default 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstd } from "@hakobu/hakobu";
 *
 * assert.deepEqual(zstd.parseOptions({}), { level: 1 });
 * // One batch through a channel's stream (needs the system libzstd):
 * const ctx = { pageSize: 4096, pageCount: 1, options: zstd.parseOptions({}) };
 * const batch = {
 *   count: 1,
 *   pageSize: 4096,
 *   pfns: new Float64Array([0]),
 *   pages: new Uint8Array(4096).fill(0x61),
 *   zero: new Uint8Array(1),
 * };
 * const offered = new Uint32Array([0]);
 * const claimed = new Uint8Array(1);
 * const section = new Uint8Array(zstd.maxSectionBytes(1, 4096));
 * const n = zstd.createBatchEncoder(ctx).encode(
 *   batch,
 *   offered,
 *   1,
 *   claimed,
 *   section,
 * );
 * assert.ok(claimed[0] === 1 && n < 100);
 * const page = new Uint8Array(4096);
 * zstd.createBatchDecoder(ctx).decode(
 *   section.subarray(0, n),
 *   batch.pfns,
 *   offered,
 *   1,
 *   page,
 * );
 * assert.deepEqual(page, batch.pages);
 * ```
 */
export const zstd: Codec = {
  id: 6,
  name: "zstd",
  cheapZeroPages: true,
  summary:
    "one zstd stream per channel via libzstd, flushed per batch (claims every page offered)",
  parseOptions(options) {
    return { level: _level(options) };
  },
  maxSectionBytes(pages: number, pageSize: number): number {
    // a flush may also emit what an earlier batch left buffered: none, as
    // every batch ends with a flush; the bound of one block stream suffices
    return zstdBound(pages * pageSize) + 64;
  },
  createBatchEncoder(ctx: CodecContext): BatchEncoder {
    const stream = new ZstdCompressStream(_level(ctx.options));
    let gathered = new Uint8Array(0);
    return {
      encode(batch, offered, n, claimed, out): number {
        const ps = batch.pageSize;
        if (gathered.length < n * ps) gathered = new Uint8Array(n * ps);
        const len = stream.flush(gatherPages(batch, offered, n, gathered), out);
        claimed.fill(1, 0, n);
        return len;
      },
    };
  },
  decoderStateBytes(): number {
    // The window (capped for every level) and about one block's buffers.
    return 2 ** WINDOW_LOG_MAX + ZSTD_BLOCK_BYTES * 2;
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    const stream = new ZstdDecompressStream();
    const ps = ctx.pageSize;
    return {
      decode(section, _pfns, _which, n, out): void {
        stream.exact(
          section,
          out.subarray(0, n * ps),
          `a zstd section of ${n} pages`,
        );
      },
    };
  },
};
