/**
 * Binding to the system libxxhash (xxHash 0.8.x): XXH3-128 of one buffer,
 * the hash of hakobu's memory verification (`engine/digest.ts`). Loaded on
 * first use; `HAKOBU_LIBXXHASH` overrides the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec } from "./_library.ts";

/** The libxxhash symbols hakobu uses; all synchronous. */
export const XXHASH_SYMBOLS = {
  // XXH128_hash_t XXH3_128bits(const void* data, size_t len);
  // (XXH128_hash_t is { XXH64_hash_t low64; XXH64_hash_t high64; }, returned by value)
  XXH3_128bits: {
    parameters: ["buffer", "usize"],
    result: { struct: ["u64", "u64"] },
  },
  // unsigned XXH_versionNumber(void);
  XXH_versionNumber: { parameters: [], result: "u32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxxhash is looked for: `HAKOBU_LIBXXHASH`, else `libxxhash.so.0`, else `libxxhash.so`. */
export const XXHASH_LIBRARY: LibrarySpec<typeof XXHASH_SYMBOLS> = {
  name: "libxxhash",
  envVar: "HAKOBU_LIBXXHASH",
  candidates: ["libxxhash.so.0", "libxxhash.so"],
  install: "apt-get install libxxhash0",
  symbols: XXHASH_SYMBOLS,
};

/**
 * The libxxhash symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libxxhash } from "./xxhash.ts";
 *
 * // low64 then high64, each little-endian (the C struct's bytes)
 * assert.equal(libxxhash().XXH3_128bits(new Uint8Array(1), 0n).length, 16);
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded or `--allow-ffi` is missing.
 */
export const libxxhash: () => Deno.DynamicLibrary<
  typeof XXHASH_SYMBOLS
>["symbols"] = lazyLibrary(XXHASH_LIBRARY);

/**
 * XXH3-128 of `bytes` in its canonical form (big-endian `high64` then
 * `low64`, as `xxh128sum` prints it), written into `out[at..at + 16)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hex } from "@hakobu/hakobu";
 * import { xxh3x128 } from "./xxhash.ts";
 *
 * const out = new Uint8Array(16);
 * xxh3x128(new Uint8Array(0), out, 0);
 * // `printf '' | xxh128sum`
 * assert.equal(hex(out), "99aa06d3014798d86001c324468d497f");
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded.
 */
export function xxh3x128(bytes: Uint8Array, out: Uint8Array, at: number): void {
  const r = libxxhash().XXH3_128bits(bytes, BigInt(bytes.length));
  // The struct's bytes are low64 LE then high64 LE: reversed, they are the
  // canonical high64 BE then low64 BE.
  for (let i = 0; i < 16; i++) out[at + i] = r[15 - i];
}

/**
 * libxxhash's version as `"major.minor.release"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xxhashVersion } from "./xxhash.ts";
 *
 * assert.match(xxhashVersion(), /^0\.8\.\d+$/); // e.g. "0.8.1"
 * ```
 *
 * @throws {FfiError} When libxxhash cannot be loaded.
 */
export function xxhashVersion(): string {
  const v = libxxhash().XXH_versionNumber();
  return `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;
}
