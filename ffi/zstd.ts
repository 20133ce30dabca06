/**
 * Binding to the system libzstd (zstd 1.5.x): one-shot compression of a
 * frame with a reused compression context, bounded decompression with a
 * reused decompression context, and the streaming API (a context that keeps
 * its window across calls, flushed per batch) over `ZSTD_inBuffer` /
 * `ZSTD_outBuffer` structs passed as three `size_t` words
 * ({@link zstdBuffer}). Loaded on first use; `HAKOBU_LIBZSTD`
 * overrides the library path.
 *
 * `size_t` results come back as `bigint`; a result above the buffer's
 * capacity is an error code (see {@link zstdErrorName}).
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "./_library.ts";

/** The libzstd symbols hakobu uses. */
export const ZSTD_SYMBOLS = {
  // ZSTD_CCtx* ZSTD_createCCtx(void);
  ZSTD_createCCtx: { parameters: [], result: "pointer" },
  // size_t ZSTD_freeCCtx(ZSTD_CCtx* cctx);
  ZSTD_freeCCtx: { parameters: ["pointer"], result: "usize" },
  // size_t ZSTD_compressCCtx(ZSTD_CCtx* cctx, void* dst, size_t dstCapacity,
  //                          const void* src, size_t srcSize, int compressionLevel);
  ZSTD_compressCCtx: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize", "i32"],
    result: "usize",
  },
  // ZSTD_DCtx* ZSTD_createDCtx(void);
  ZSTD_createDCtx: { parameters: [], result: "pointer" },
  // size_t ZSTD_freeDCtx(ZSTD_DCtx* dctx);
  ZSTD_freeDCtx: { parameters: ["pointer"], result: "usize" },
  // size_t ZSTD_decompressDCtx(ZSTD_DCtx* dctx, void* dst, size_t dstCapacity,
  //                            const void* src, size_t srcSize);
  ZSTD_decompressDCtx: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "usize",
  },
  // size_t ZSTD_compressBound(size_t srcSize);
  ZSTD_compressBound: { parameters: ["usize"], result: "usize" },
  // unsigned ZSTD_isError(size_t code);
  ZSTD_isError: { parameters: ["usize"], result: "u32" },
  // const char* ZSTD_getErrorName(size_t code);
  ZSTD_getErrorName: { parameters: ["usize"], result: "pointer" },
  // size_t ZSTD_CCtx_setParameter(ZSTD_CCtx* cctx, ZSTD_cParameter param, int value);
  ZSTD_CCtx_setParameter: {
    parameters: ["pointer", "i32", "i32"],
    result: "usize",
  },
  // size_t ZSTD_DCtx_setParameter(ZSTD_DCtx* dctx, ZSTD_dParameter param, int value);
  ZSTD_DCtx_setParameter: {
    parameters: ["pointer", "i32", "i32"],
    result: "usize",
  },
  // size_t ZSTD_compressStream2(ZSTD_CCtx* cctx, ZSTD_outBuffer* output,
  //                             ZSTD_inBuffer* input, ZSTD_EndDirective endOp);
  ZSTD_compressStream2: {
    parameters: ["pointer", "buffer", "buffer", "i32"],
    result: "usize",
  },
  // size_t ZSTD_decompressStream(ZSTD_DStream* zds, ZSTD_outBuffer* output, ZSTD_inBuffer* input);
  ZSTD_decompressStream: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "usize",
  },
  // unsigned ZSTD_versionNumber(void);
  ZSTD_versionNumber: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** `ZSTD_cParameter` / `ZSTD_dParameter` and `ZSTD_EndDirective` values (zstd.h, stable API). */
export const ZSTD = {
  /** `ZSTD_c_compressionLevel` */
  c_compressionLevel: 100,
  /** `ZSTD_c_windowLog` */
  c_windowLog: 101,
  /** `ZSTD_d_windowLogMax` */
  d_windowLogMax: 100,
  /** `ZSTD_e_continue` */
  e_continue: 0,
  /** `ZSTD_e_flush`: everything given so far becomes decodable. */
  e_flush: 1,
  /** `ZSTD_e_end`: ends the frame. */
  e_end: 2,
} as const;

/**
 * A `ZSTD_inBuffer` / `ZSTD_outBuffer` (`{ void* ptr; size_t size; size_t
 * pos; }`) over `bytes`, as the three words the streaming calls read and
 * update: `[0]` the address, `[1]` the size, `[2]` the position.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstdBuffer } from "./zstd.ts";
 *
 * const src = new Uint8Array(4096);
 * const inBuf = zstdBuffer(src); // a ZSTD_inBuffer: { ptr, size, pos }
 * assert.equal(inBuf[1], 4096n); // size
 * assert.equal(inBuf[2], 0n); // pos: nothing read yet
 * ```
 */
export function zstdBuffer(bytes: Uint8Array): BigUint64Array {
  const b = new BigUint64Array(3);
  b[0] = bytes.length === 0
    ? 0n
    : BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(bytes)));
  b[1] = BigInt(bytes.length);
  b[2] = 0n;
  return b;
}

/** Where libzstd is looked for: `HAKOBU_LIBZSTD`, else `libzstd.so.1`, else `libzstd.so`. */
export const ZSTD_LIBRARY: LibrarySpec<typeof ZSTD_SYMBOLS> = {
  name: "libzstd",
  envVar: "HAKOBU_LIBZSTD",
  candidates: ["libzstd.so.1", "libzstd.so"],
  install: "apt-get install libzstd1",
  symbols: ZSTD_SYMBOLS,
};

/**
 * The libzstd symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libzstd } from "./zstd.ts";
 *
 * const z = libzstd(); // size_t arguments and results are bigints
 * const src = new Uint8Array(4096);
 * const dst = new Uint8Array(Number(z.ZSTD_compressBound(4096n)));
 * const cctx = z.ZSTD_createCCtx();
 * const n = z.ZSTD_compressCCtx(cctx, dst, BigInt(dst.length), src, 4096n, 1);
 * z.ZSTD_freeCCtx(cctx);
 * assert.equal(z.ZSTD_isError(n), 0);
 * const dctx = z.ZSTD_createDCtx();
 * const back = new Uint8Array(4096).fill(1);
 * assert.equal(z.ZSTD_decompressDCtx(dctx, back, 4096n, dst, n), 4096n);
 * z.ZSTD_freeDCtx(dctx);
 * assert.deepEqual(back, src);
 * ```
 *
 * @throws {FfiError} When libzstd cannot be loaded or `--allow-ffi` is missing.
 */
export const libzstd: () => Deno.DynamicLibrary<
  typeof ZSTD_SYMBOLS
>["symbols"] = lazyLibrary(ZSTD_LIBRARY);

/**
 * Opens libzstd now from an explicit path (tests, tools); {@link libzstd} is
 * the cached lazy form for everything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openZstd, zstdVersion } from "./zstd.ts";
 *
 * const lib = openZstd("libzstd.so.1"); // a path or a soname
 * try {
 *   const v = lib.symbols.ZSTD_versionNumber(); // e.g. 10504
 *   assert.equal(
 *     `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`,
 *     zstdVersion(),
 *   );
 * } finally {
 *   lib.close();
 * }
 * ```
 *
 * @throws {FfiError} When the path does not load.
 */
export function openZstd(
  path?: string,
): Deno.DynamicLibrary<typeof ZSTD_SYMBOLS> {
  return openLibrary(ZSTD_LIBRARY, { path });
}

/**
 * The text of a zstd `size_t` result that is an error code, e.g.
 * `"Destination buffer is too small"`; `undefined` when it is not an error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstdErrorName } from "./zstd.ts";
 *
 * // ZSTD_error_dstSize_tooSmall (70), as a size_t result: -70
 * const code = -70n & 0xffffffffffffffffn;
 * assert.equal(zstdErrorName(code), "Destination buffer is too small");
 * assert.equal(zstdErrorName(4096n), undefined); // a size, not an error
 * ```
 */
export function zstdErrorName(code: bigint): string | undefined {
  const z = libzstd();
  if (z.ZSTD_isError(code) === 0) return undefined;
  const p = z.ZSTD_getErrorName(code);
  return p === null ? "unknown error" : Deno.UnsafePointerView.getCString(p);
}

/**
 * libzstd's version as `"major.minor.release"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zstdVersion } from "./zstd.ts";
 *
 * assert.match(zstdVersion(), /^1\.\d+\.\d+$/); // e.g. "1.5.4"
 * ```
 *
 * @throws {FfiError} When libzstd cannot be loaded.
 */
export function zstdVersion(): string {
  const v = libzstd().ZSTD_versionNumber();
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
