/**
 * Binding to the system zlib (libz.so.1), for its CRC-32 only: the frame
 * checksum of the wire format (`engine/wire/frame.ts`). Loaded on first
 * use; `HAKOBU_LIBZ` overrides the library path.
 *
 * Why not `node:zlib`'s `crc32`, which computes the same function: loading
 * `node:zlib` costs each Deno isolate ≈ 15 ms of CPU at start (and the
 * tunnels start several), and it is slower per call on the 16-byte headers
 * every frame checksums first (`engine/wire/checksum_bench.ts`).
 * `engine/wire/_crc32.ts` falls back to it when FFI is not allowed.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "./_library.ts";

/** The zlib symbols hakobu uses; synchronous and fast-call eligible. */
export const ZLIB_SYMBOLS = {
  // uLong crc32(uLong crc, const Bytef *buf, uInt len);
  // Declared with 32-bit crc in and out: zlib only ever uses the low 32
  // bits of `crc` (every version casts or masks it first) and returns a
  // value below 2^32, and JS numbers here avoid a BigInt per call.
  crc32: { parameters: ["u32", "buffer", "u32"], result: "u32" },
  // const char *zlibVersion(void);
  zlibVersion: { parameters: [], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where zlib is looked for: `HAKOBU_LIBZ`, else `libz.so.1`, else `libz.so`. */
export const ZLIB_LIBRARY: LibrarySpec<typeof ZLIB_SYMBOLS> = {
  name: "libz",
  envVar: "HAKOBU_LIBZ",
  candidates: ["libz.so.1", "libz.so"],
  install: "apt-get install zlib1g",
  symbols: ZLIB_SYMBOLS,
};

/**
 * The zlib symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libz } from "./zlib.ts";
 *
 * const bytes = new TextEncoder().encode("123456789");
 * assert.equal(libz().crc32(0, bytes, bytes.length), 0xcbf43926); // the CRC-32 check value
 * ```
 *
 * @throws {FfiError} When zlib cannot be loaded or `--allow-ffi` is missing.
 */
export const libz: () => Deno.DynamicLibrary<typeof ZLIB_SYMBOLS>["symbols"] =
  lazyLibrary(ZLIB_LIBRARY);

/**
 * Opens zlib now from an explicit path (tests, tools); {@link libz} is the
 * cached lazy form for everything else.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openZlib } from "./zlib.ts";
 *
 * const lib = openZlib("libz.so.1");
 * try {
 *   assert.equal(lib.symbols.crc32(0, new Uint8Array(0), 0), 0);
 * } finally {
 *   lib.close();
 * }
 * ```
 *
 * @throws {FfiError} When the path does not load.
 */
export function openZlib(
  path?: string,
): Deno.DynamicLibrary<typeof ZLIB_SYMBOLS> {
  return openLibrary(ZLIB_LIBRARY, { path });
}

/**
 * zlib's version, e.g. `"1.2.13"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { zlibVersion } from "./zlib.ts";
 *
 * assert.match(zlibVersion(), /^1\.\d+\.\d+/);
 * ```
 *
 * @throws {FfiError} When zlib cannot be loaded.
 */
export function zlibVersion(): string {
  const p = libz().zlibVersion();
  return p === null ? "" : new Deno.UnsafePointerView(p).getCString();
}
