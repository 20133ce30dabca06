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
 *
 * Every binding needs `--allow-ffi`.
 *
 * @example
 * ```ts
 * import { liblz4, lz4Version } from "./ffi/mod.ts";
 * lz4Version(); // "1.9.4"
 * liblz4().LZ4_compressBound(4096); // 4112
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
