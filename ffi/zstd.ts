/**
 * Binding to the system libzstd (zstd 1.5.x): one-shot compression of a
 * frame with a reused compression context, and bounded decompression with a
 * reused decompression context. Loaded on first use; `HAKOBU_LIBZSTD`
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
  // unsigned ZSTD_versionNumber(void);
  ZSTD_versionNumber: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

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
 * const z = libzstd();
 * const cctx = z.ZSTD_createCCtx();
 * const src = new Uint8Array(4096);
 * const dst = new Uint8Array(Number(z.ZSTD_compressBound(4096)));
 * const n = Number(z.ZSTD_compressCCtx(cctx, dst, dst.length, src, src.length, 1));
 * z.ZSTD_freeCCtx(cctx);
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
 * const lib = openZstd("/usr/lib/x86_64-linux-gnu/libzstd.so.1");
 * lib.symbols.ZSTD_versionNumber(); // 10504
 * lib.close();
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
 * zstdErrorName(-70n & 0xffffffffffffffffn); // "Destination buffer is too small"
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
 * zstdVersion(); // "1.5.4"
 * ```
 *
 * @throws {FfiError} When libzstd cannot be loaded.
 */
export function zstdVersion(): string {
  const v = libzstd().ZSTD_versionNumber();
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
