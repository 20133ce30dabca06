/**
 * One zstd stream (RFC 8878) through the system libzstd: a compressor whose
 * window spans every call, flushed at the end of each, and the matching
 * decompressor that must turn each flushed piece back into exactly the
 * bytes that went in. The `zstd` codec keeps one per channel; the stream
 * tunnel keeps one for its records.
 *
 * @module
 */

import { FfiError } from "../../ffi/_library.ts";
import { libzstd, ZSTD, zstdBuffer, zstdErrorName } from "../../ffi/zstd.ts";
import { CodecError } from "../errors.ts";

/**
 * Largest window a stream may use (2^23 = 8 MiB): the decompressor refuses
 * more, so a peer cannot make a receiver allocate a huge window; levels
 * whose default window is larger (20–22) are capped to it.
 */
export const WINDOW_LOG_MAX = 23;

/** Contexts are freed when their stream object is garbage-collected. */
const contexts = new FinalizationRegistry<() => void>((free) => free());

/** Loads libzstd, turning a load failure into a {@link CodecError}. */
export function zstdLib(): ReturnType<typeof libzstd> {
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

function check(code: bigint, what: string): bigint {
  const name = zstdErrorName(code);
  if (name !== undefined) {
    throw new CodecError("zstd", `Cannot ${what}: zstd says "${name}"`);
  }
  return code;
}

/** `ZSTD_compressBound(n)` as the zstd.h macro computes it (no FFI call). */
export function zstdBound(n: number): number {
  const small = n < 128 << 10 ? ((128 << 10) - n) >> 11 : 0;
  return n + (n >> 8) + small;
}

/**
 * The compressing end of a zstd stream.
 *
 * @example
 * ```ts
 * import { ZstdCompressStream, ZstdDecompressStream } from "./_zstd_stream.ts";
 * const c = new ZstdCompressStream(1);
 * const d = new ZstdDecompressStream();
 * const out = new Uint8Array(8192);
 * const n = c.flush(new Uint8Array(4096), out);
 * const back = new Uint8Array(4096);
 * d.exact(out.subarray(0, n), back, "page"); // back is 4096 zero bytes again
 * ```
 */
export class ZstdCompressStream {
  readonly #z = zstdLib();
  readonly #cctx: Deno.PointerValue;

  /** @param level zstd level (-131072..22). */
  constructor(level: number) {
    const z = this.#z;
    const cctx = z.ZSTD_createCCtx();
    if (cctx === null) {
      throw new CodecError("zstd", "Cannot create a zstd compression context");
    }
    this.#cctx = cctx;
    contexts.register(this, () => void z.ZSTD_freeCCtx(cctx));
    check(
      z.ZSTD_CCtx_setParameter(cctx, ZSTD.c_compressionLevel, level),
      `set zstd level ${level}`,
    );
    if (level >= 20) {
      check(
        z.ZSTD_CCtx_setParameter(cctx, ZSTD.c_windowLog, WINDOW_LOG_MAX),
        "cap the zstd window",
      );
    }
  }

  /**
   * Compresses `src` and flushes: every byte given so far becomes decodable
   * from what was written up to now. `out` holds at least
   * `zstdBound(src.length) + 64` bytes; returns the bytes written.
   */
  flush(src: Uint8Array, out: Uint8Array): number {
    const inBuf = zstdBuffer(src);
    const outBuf = zstdBuffer(out);
    for (;;) {
      const left = check(
        this.#z.ZSTD_compressStream2(this.#cctx, outBuf, inBuf, ZSTD.e_flush),
        `compress ${src.length} bytes`,
      );
      if (left === 0n && inBuf[2] === inBuf[1]) break;
      if (outBuf[2] === outBuf[1]) {
        throw new CodecError(
          "zstd",
          `Cannot compress ${src.length} bytes into ${out.length}`,
        );
      }
    }
    return Number(outBuf[2]);
  }
}

/** The decompressing end of a zstd stream. */
export class ZstdDecompressStream {
  readonly #z = zstdLib();
  readonly #dctx: Deno.PointerValue;
  /** Room for one probe of bytes left over after a piece (off V8's heap: over 64 bytes). */
  readonly #spare = new Uint8Array(256);

  constructor() {
    const z = this.#z;
    const dctx = z.ZSTD_createDCtx();
    if (dctx === null) {
      throw new CodecError(
        "zstd",
        "Cannot create a zstd decompression context",
      );
    }
    this.#dctx = dctx;
    contexts.register(this, () => void z.ZSTD_freeDCtx(dctx));
    check(
      z.ZSTD_DCtx_setParameter(dctx, ZSTD.d_windowLogMax, WINDOW_LOG_MAX),
      "bound the zstd window",
    );
  }

  /**
   * Decompresses one flushed piece into `out`, which it must fill exactly:
   * every input byte consumed, exactly `out.length` bytes produced.
   *
   * @param what Words for errors, e.g. "a zstd section of 12 pages".
   * @throws {CodecError} on malformed input, or more or fewer bytes than `out`.
   */
  exact(src: Uint8Array, out: Uint8Array, what: string): void {
    const z = this.#z;
    if (src.length === 0) {
      throw new CodecError("zstd", `Cannot decode ${what}: it is empty`);
    }
    const inBuf = zstdBuffer(src);
    const outBuf = zstdBuffer(out);
    while (inBuf[2] < inBuf[1]) {
      const before = inBuf[2] + outBuf[2];
      const r = z.ZSTD_decompressStream(this.#dctx, outBuf, inBuf);
      const err = zstdErrorName(r);
      if (err !== undefined) {
        throw new CodecError(
          "zstd",
          `Cannot decode ${what}: malformed at byte ${
            inBuf[2]
          } of ${src.length} (zstd says "${err}")`,
        );
      }
      if (outBuf[2] === outBuf[1] && inBuf[2] < inBuf[1]) {
        throw new CodecError(
          "zstd",
          `Cannot decode ${what}: it holds more than ${out.length} bytes`,
        );
      }
      if (inBuf[2] + outBuf[2] === before) {
        throw new CodecError(
          "zstd",
          `Cannot decode ${what}: no progress at byte ${
            inBuf[2]
          } of ${src.length}`,
        );
      }
    }
    // Output still buffered inside the decoder comes out without more input.
    while (outBuf[2] < outBuf[1]) {
      const before = outBuf[2];
      const r = z.ZSTD_decompressStream(this.#dctx, outBuf, inBuf);
      if (zstdErrorName(r) !== undefined || outBuf[2] === before) break;
    }
    if (Number(outBuf[2]) !== out.length) {
      throw new CodecError(
        "zstd",
        `Cannot decode ${what}: it decodes to ${
          outBuf[2]
        } bytes, expected ${out.length}`,
      );
    }
    // The input may be consumed while the decoder still buffers bytes past
    // `out` (a block decodes whole): they would open the next piece.
    const spare = zstdBuffer(this.#spare);
    const r = z.ZSTD_decompressStream(this.#dctx, spare, inBuf);
    if (zstdErrorName(r) !== undefined || spare[2] !== 0n) {
      throw new CodecError(
        "zstd",
        `Cannot decode ${what}: it holds more than ${out.length} bytes`,
      );
    }
  }
}
