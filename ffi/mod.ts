/**
 * FFI bindings (`Deno.dlopen`) to system libraries, one file per library,
 * after denodrivers/sqlite3: a symbol table declared
 * `as const satisfies Deno.ForeignLibraryInterface` with the C signature on
 * each symbol, and a lazy loader (`_library.ts`) that opens the library on
 * first use, honours an environment override for its path, and fails with
 * an {@link FfiError} naming the library, the paths tried and the fix.
 *
 * | file | library | override | install |
 * |---|---|---|---|
 * | `lz4.ts` | liblz4 (LZ4 block) | `HAKOBU_LIBLZ4` | `apt-get install liblz4-1` |
 * | `zstd.ts` | libzstd (zstd frame) | `HAKOBU_LIBZSTD` | `apt-get install libzstd1` |
 * | `xxhash.ts` | libxxhash (XXH3-128, one-shot and streaming) | `HAKOBU_LIBXXHASH` | `apt-get install libxxhash0` |
 * | `zlib.ts` | zlib (CRC-32 only, for the frame checksum) | `HAKOBU_LIBZ` | `apt-get install zlib1g` |
 *
 * Every binding needs `--allow-ffi`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError, liblz4, lz4Version, openLibrary } from "./mod.ts";
 *
 * assert.match(lz4Version(), /^\d+\.\d+\.\d+$/); // e.g. "1.9.4"
 * // LZ4_COMPRESSBOUND: the input, 1/255 of it, and 16 bytes
 * assert.equal(liblz4().LZ4_compressBound(4096), 4096 + 16 + 16);
 * // A library that is not there: the error names it, the paths tried and the fix.
 * assert.throws(
 *   () =>
 *     openLibrary({
 *       name: "libnothere",
 *       envVar: "HAKOBU_LIBNOTHERE",
 *       candidates: ["libnothere.so.1"],
 *       install: "apt-get install libnothere1",
 *       symbols: {},
 *     }),
 *   (e) => e instanceof FfiError && e.tried.includes("libnothere.so.1"),
 * );
 * ```
 *
 * @module
 */

export {
  FfiError,
  lazyLibrary,
  type LibrarySpec,
  openLibrary,
  type OpenLibraryOptions,
} from "./_library.ts";
export * from "./lz4.ts";
export * from "./zstd.ts";
export * from "./xxhash.ts";
export * from "./zlib.ts";
