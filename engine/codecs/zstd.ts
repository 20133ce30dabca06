import { FfiError } from "../../ffi/_library.ts";
import { libzstd, ZSTD, zstdBuffer, zstdErrorName } from "../../ffi/zstd.ts";
import { CodecError } from "../errors.ts";
import type { Codec, CodecContext } from "./codec.ts";
import { type BatchDecoder, type BatchEncoder, gatherPages } from "./batch.ts";
import { onlyOptions } from "./_page_codec.ts";

/** Lowest and highest zstd levels accepted (`ZSTD_minCLevel()`, `ZSTD_maxCLevel()`). */
const MIN_LEVEL = -131072;
const MAX_LEVEL = 22;

/**
 * Largest window a stream may use (2^23 = 8 MiB): the decoder refuses more,
 * so a peer cannot make a receiver allocate a huge window; levels whose
 * default window is larger (20–22) are capped to it on the encoder.
 */
const WINDOW_LOG_MAX = 23;

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

/** Loads libzstd, turning a load failure into a {@link CodecError}. */
function _lib(): ReturnType<typeof libzstd> {
  try {
    return libzstd();
  } catch (e) {
    if (e instanceof FfiError) {
      throw new CodecError(
        "zstd",
        `Codec "zstd" is unavailable: ${e.message}`,
        { cause: e },
      );
    }
    throw e;
  }
}

/** Contexts are freed when their encoder or decoder is garbage-collected. */
const _contexts = new FinalizationRegistry<() => void>((free) => free());

/** Throws when a zstd `size_t` result is an error code. */
function _check(code: bigint, what: string): bigint {
  const name = zstdErrorName(code);
  if (name !== undefined) {
    throw new CodecError("zstd", `Cannot ${what}: zstd says "${name}"`);
  }
  return code;
}

/** `ZSTD_compressBound(n)` as the zstd.h macro computes it (no FFI call). */
function _bound(n: number): number {
  const small = n < 128 << 10 ? ((128 << 10) - n) >> 11 : 0;
  return n + (n >> 8) + small;
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
 * import { zstd } from "./zstd.ts";
 * zstd.parseOptions({}); // { level: 1 }
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
    return _bound(pages * pageSize) + 64;
  },
  createBatchEncoder(ctx: CodecContext): BatchEncoder {
    const level = _level(ctx.options);
    const z = _lib();
    const cctx = z.ZSTD_createCCtx();
    if (cctx === null) {
      throw new CodecError("zstd", "Cannot create a zstd compression context");
    }
    _check(
      z.ZSTD_CCtx_setParameter(cctx, ZSTD.c_compressionLevel, level),
      `set zstd level ${level}`,
    );
    if (level >= 20) {
      _check(
        z.ZSTD_CCtx_setParameter(cctx, ZSTD.c_windowLog, WINDOW_LOG_MAX),
        "cap the zstd window",
      );
    }
    let gathered = new Uint8Array(0);
    const encoder: BatchEncoder = {
      encode(batch, offered, n, claimed, out): number {
        const ps = batch.pageSize;
        if (gathered.length < n * ps) gathered = new Uint8Array(n * ps);
        const src = gatherPages(batch, offered, n, gathered);
        const inBuf = zstdBuffer(src);
        const outBuf = zstdBuffer(out);
        // Flush: everything given so far leaves the compressor now; loop
        // while it reports more to flush (out is large enough for one pass).
        for (;;) {
          const left = _check(
            z.ZSTD_compressStream2(cctx, outBuf, inBuf, ZSTD.e_flush),
            `compress a batch of ${n} pages`,
          );
          if (left === 0n && inBuf[2] === inBuf[1]) break;
          if (outBuf[2] === outBuf[1]) {
            throw new CodecError(
              "zstd",
              `Cannot compress a batch of ${n} pages into ${out.length} bytes`,
            );
          }
        }
        claimed.fill(1, 0, n);
        return Number(outBuf[2]);
      },
    };
    _contexts.register(encoder, () => void z.ZSTD_freeCCtx(cctx));
    return encoder;
  },
  createBatchDecoder(ctx: CodecContext): BatchDecoder {
    const z = _lib();
    const dctx = z.ZSTD_createDCtx();
    if (dctx === null) {
      throw new CodecError(
        "zstd",
        "Cannot create a zstd decompression context",
      );
    }
    _check(
      z.ZSTD_DCtx_setParameter(dctx, ZSTD.d_windowLogMax, WINDOW_LOG_MAX),
      "bound the zstd window",
    );
    const ps = ctx.pageSize;
    const decoder: BatchDecoder = {
      decode(section, _pfns, _which, n, out): void {
        const want = n * ps;
        if (section.length === 0) {
          throw new CodecError(
            "zstd",
            `Cannot decode a zstd section of ${n} pages: it is empty`,
          );
        }
        const inBuf = zstdBuffer(section);
        const outBuf = zstdBuffer(out.subarray(0, want));
        // The sender flushed after these pages: the section must yield
        // exactly them, and all of its bytes must be consumed doing so.
        while (inBuf[2] < inBuf[1]) {
          const before = inBuf[2] + outBuf[2];
          const r = z.ZSTD_decompressStream(dctx, outBuf, inBuf);
          if (zstdErrorName(r) !== undefined) {
            throw new CodecError(
              "zstd",
              `Cannot decode a zstd section of ${n} pages: malformed at byte ${
                inBuf[2]
              } of ${section.length} (zstd says "${zstdErrorName(r)}")`,
            );
          }
          if (outBuf[2] === outBuf[1] && inBuf[2] < inBuf[1]) {
            throw new CodecError(
              "zstd",
              `Cannot decode a zstd section of ${n} pages: it holds more than ${want} bytes`,
            );
          }
          if (inBuf[2] + outBuf[2] === before) {
            throw new CodecError(
              "zstd",
              `Cannot decode a zstd section of ${n} pages: no progress at byte ${
                inBuf[2]
              } of ${section.length}`,
            );
          }
        }
        // Output still buffered inside the decoder (a block whose input was
        // all consumed) comes out without more input.
        while (outBuf[2] < outBuf[1]) {
          const before = outBuf[2];
          const r = z.ZSTD_decompressStream(dctx, outBuf, inBuf);
          if (zstdErrorName(r) !== undefined || outBuf[2] === before) break;
        }
        if (Number(outBuf[2]) !== want) {
          throw new CodecError(
            "zstd",
            `Cannot decode a zstd section of ${n} pages: it decodes to ${
              outBuf[2]
            } bytes, expected ${want}`,
          );
        }
      },
    };
    _contexts.register(decoder, () => void z.ZSTD_freeDCtx(dctx));
    return decoder;
  },
};
