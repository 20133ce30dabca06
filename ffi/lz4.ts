/**
 * Binding to the system liblz4 (LZ4 block format, liblz4 1.9.x): compress
 * and safely decompress one block between caller-owned buffers. Loaded on
 * first use; `HAKOBU_LIBLZ4` overrides the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "./_library.ts";

/** The liblz4 symbols hakobu uses; all synchronous, all fast-call eligible. */
export const LZ4_SYMBOLS = {
  // int LZ4_compress_default(const char* src, char* dst, int srcSize, int dstCapacity);
  LZ4_compress_default: {
    parameters: ["buffer", "buffer", "i32", "i32"],
    result: "i32",
  },
  // int LZ4_compress_fast(const char* src, char* dst, int srcSize, int dstCapacity, int acceleration);
  LZ4_compress_fast: {
    parameters: ["buffer", "buffer", "i32", "i32", "i32"],
    result: "i32",
  },
  // int LZ4_decompress_safe(const char* src, char* dst, int compressedSize, int dstCapacity);
  LZ4_decompress_safe: {
    parameters: ["buffer", "buffer", "i32", "i32"],
    result: "i32",
  },
  // int LZ4_compressBound(int inputSize);
  LZ4_compressBound: { parameters: ["i32"], result: "i32" },
  // int LZ4_versionNumber(void);
  LZ4_versionNumber: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where liblz4 is looked for: `HAKOBU_LIBLZ4`, else `liblz4.so.1`, else `liblz4.so`. */
export const LZ4_LIBRARY: LibrarySpec<typeof LZ4_SYMBOLS> = {
  name: "liblz4",
  envVar: "HAKOBU_LIBLZ4",
  candidates: ["liblz4.so.1", "liblz4.so"],
  install: "apt-get install liblz4-1",
  symbols: LZ4_SYMBOLS,
};

/**
 * The liblz4 symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { liblz4 } from "./lz4.ts";
 *
 * const { LZ4_compress_fast, LZ4_compressBound, LZ4_decompress_safe } =
 *   liblz4();
 * const src = new Uint8Array(4096);
 * const dst = new Uint8Array(LZ4_compressBound(src.length));
 * const n = LZ4_compress_fast(src, dst, src.length, dst.length, 1);
 * assert.ok(n > 0 && n < 64); // a zero page is a few bytes of LZ4
 * const back = new Uint8Array(4096).fill(1);
 * assert.equal(LZ4_decompress_safe(dst, back, n, back.length), 4096);
 * assert.deepEqual(back, src);
 * ```
 *
 * @throws {FfiError} When liblz4 cannot be loaded or `--allow-ffi` is missing.
 */
export const liblz4: () => Deno.DynamicLibrary<typeof LZ4_SYMBOLS>["symbols"] =
  lazyLibrary(LZ4_LIBRARY);

/**
 * Opens liblz4 now from an explicit path (tests, tools); {@link liblz4} is
 * the cached lazy form for everything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lz4Version, openLz4 } from "./lz4.ts";
 *
 * const lib = openLz4("liblz4.so.1"); // a path or a soname
 * try {
 *   const v = lib.symbols.LZ4_versionNumber(); // e.g. 10904
 *   assert.equal(
 *     `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`,
 *     lz4Version(),
 *   );
 * } finally {
 *   lib.close();
 * }
 * ```
 *
 * @throws {FfiError} When the path does not load.
 */
export function openLz4(
  path?: string,
): Deno.DynamicLibrary<typeof LZ4_SYMBOLS> {
  return openLibrary(LZ4_LIBRARY, { path });
}

/**
 * liblz4's version as `"major.minor.release"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lz4Version } from "./lz4.ts";
 *
 * assert.match(lz4Version(), /^1\.\d+\.\d+$/); // e.g. "1.9.4"
 * ```
 *
 * @throws {FfiError} When liblz4 cannot be loaded.
 */
export function lz4Version(): string {
  const v = liblz4().LZ4_versionNumber();
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
