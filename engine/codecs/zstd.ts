import { constants, zstdCompressSync, zstdDecompressSync } from "node:zlib";
import { FfiError } from "../../ffi/_library.ts";
import { libzstd, zstdErrorName } from "../../ffi/zstd.ts";
import { CodecError } from "../errors.ts";
import type { Codec, CodecContext, PageDecoder, PageEncoder } from "./codec.ts";

/** Lowest and highest zstd levels accepted (`ZSTD_minCLevel()`, `ZSTD_maxCLevel()`). */
const MIN_LEVEL = -131072;
const MAX_LEVEL = 22;

/**
 * Which zstd implementation a codec half uses: `"ffi"` (the system libzstd,
 * about 4x faster per 4 KiB page, see `docs/codecs/zstd.md`), `"node"`
 * (`node:zlib`), or `"auto"`: `ffi` when libzstd loads, else `node`.
 */
export type ZstdBackend = "auto" | "ffi" | "node";

/** Reads the `level` option: an integer in -131072..22, default 1. */
function _level(options: Readonly<Record<string, unknown>>): number {
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

/** Reads the `backend` option and resolves `"auto"`. */
function _backend(
  options: Readonly<Record<string, unknown>>,
): ReturnType<typeof libzstd> | null {
  const b = options.backend ?? "auto";
  if (b !== "auto" && b !== "ffi" && b !== "node") {
    throw new CodecError(
      "zstd",
      `Invalid zstd option backend "${
        String(b)
      }": expected "auto", "ffi" or "node"`,
    );
  }
  if (b === "node") return null;
  try {
    return libzstd();
  } catch (e) {
    if (!(e instanceof FfiError)) throw e;
    if (b === "auto") return null;
    throw new CodecError(
      "zstd",
      `Codec "zstd" backend "ffi" is unavailable: ${e.message}`,
      {
        cause: e,
      },
    );
  }
}

/** Contexts are freed when their encoder or decoder is garbage-collected. */
const _contexts = new FinalizationRegistry<() => void>((free) => free());

/**
 * `zstd`: the page as one zstd frame (RFC 8878), through the system libzstd
 * when it loads (reused compression and decompression contexts) and
 * `node:zlib` otherwise. Claims a page only when the frame is smaller than
 * the page; the chain's next codec (normally `raw`) sends the others.
 * Spec: `docs/codecs/zstd.md`.
 *
 * Options: `level` (integer -131072..22, default 1), `backend`
 * (`"auto"` default, `"ffi"` or `"node"`; see {@link ZstdBackend}). Both
 * backends read each other's frames.
 *
 * @example
 * ```ts
 * const ctx = { pageSize: 4096, pageCount: 1, options: { level: 1 } };
 * const out = new Uint8Array(4096);
 * const n = zstd.createEncoder(ctx).encode(0, new Uint8Array(4096), out); // 20
 * const page = new Uint8Array(4096);
 * zstd.createDecoder(ctx).decode(0, out.subarray(0, n), page);
 * ```
 */
export const zstd: Codec = {
  id: 6,
  name: "zstd",
  summary:
    "zstd frame per page via libzstd or node:zlib (claims pages it shrinks)",
  maxEncodedBytes(pageSize: number): number {
    return pageSize - 1;
  },
  createEncoder(ctx: CodecContext): PageEncoder {
    const level = _level(ctx.options);
    const lib = _backend(ctx.options);
    const pageSize = ctx.pageSize;
    const limit = pageSize - 1;
    if (lib === null) {
      const opts = { params: { [constants.ZSTD_c_compressionLevel]: level } };
      return {
        encode(_pfn: number, page: Uint8Array, out: Uint8Array): number {
          const frame = zstdCompressSync(page, opts);
          if (frame.length > limit || frame.length > out.length) return -1;
          out.set(frame);
          return frame.length;
        },
      };
    }
    const { ZSTD_compressCCtx, ZSTD_freeCCtx } = lib;
    // size_t arguments are bigints: made once, not per page.
    const bigPageSize = BigInt(pageSize);
    const bigLimit = BigInt(limit);
    const cctx = lib.ZSTD_createCCtx();
    if (cctx === null) {
      throw new CodecError(
        "zstd",
        "Cannot create a zstd compression context: out of memory",
      );
    }
    const encoder: PageEncoder = {
      encode(_pfn: number, page: Uint8Array, out: Uint8Array): number {
        // A capacity below the page makes libzstd fail fast (an error code,
        // a huge size_t) on a frame that would not be smaller than the page.
        const cap = Math.min(limit, out.length);
        const n = Number(ZSTD_compressCCtx(
          cctx,
          out,
          cap === limit ? bigLimit : BigInt(cap),
          page,
          bigPageSize,
          level,
        ));
        return n <= cap && n > 0 ? n : -1;
      },
    };
    _contexts.register(encoder, () => ZSTD_freeCCtx(cctx));
    return encoder;
  },
  createDecoder(ctx: CodecContext): PageDecoder {
    const lib = _backend(ctx.options);
    const pageSize = ctx.pageSize;
    function check(pfn: number, input: Uint8Array, page: Uint8Array): void {
      if (input.length === 0 || input.length >= pageSize) {
        throw new CodecError(
          "zstd",
          `Cannot decode zstd page ${pfn}: expected 1 to ${
            pageSize - 1
          } bytes, got ${input.length}`,
        );
      }
      if (page.length < pageSize) {
        throw new CodecError(
          "zstd",
          `Cannot decode zstd page ${pfn}: the page buffer holds ${page.length} bytes, expected ${pageSize}`,
        );
      }
    }
    function wrongSize(pfn: number, got: number): CodecError {
      return new CodecError(
        "zstd",
        `Cannot decode zstd page ${pfn}: frame decodes to ${got} bytes, expected ${pageSize}`,
      );
    }
    if (lib === null) {
      const opts = { maxOutputLength: pageSize };
      return {
        decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
          check(pfn, input, page);
          let bytes: Uint8Array;
          try {
            // maxOutputLength bounds the output: a frame that inflates past
            // the page throws instead of allocating.
            bytes = zstdDecompressSync(input, opts);
          } catch (e) {
            throw new CodecError(
              "zstd",
              `Cannot decode zstd page ${pfn}: malformed zstd frame: ${
                e instanceof Error ? e.message : String(e)
              }`,
              { cause: e },
            );
          }
          if (bytes.length !== pageSize) throw wrongSize(pfn, bytes.length);
          page.set(bytes);
        },
      };
    }
    const { ZSTD_decompressDCtx, ZSTD_freeDCtx } = lib;
    const dctx = lib.ZSTD_createDCtx();
    if (dctx === null) {
      throw new CodecError(
        "zstd",
        "Cannot create a zstd decompression context: out of memory",
      );
    }
    const want = BigInt(pageSize);
    // size_t arguments are bigints: one per possible input length, made once.
    const lengths = Array.from({ length: pageSize }, (_, i) => BigInt(i));
    const decoder: PageDecoder = {
      decode(pfn: number, input: Uint8Array, page: Uint8Array): void {
        check(pfn, input, page);
        // dstCapacity bounds every write to the page buffer.
        const r = ZSTD_decompressDCtx(
          dctx,
          page,
          want,
          input,
          lengths[input.length],
        );
        if (r === want) return;
        const error = zstdErrorName(r);
        if (error !== undefined) {
          throw new CodecError(
            "zstd",
            `Cannot decode zstd page ${pfn}: malformed zstd frame: ${error}`,
          );
        }
        throw wrongSize(pfn, Number(r));
      },
    };
    _contexts.register(decoder, () => ZSTD_freeDCtx(dctx));
    return decoder;
  },
};
