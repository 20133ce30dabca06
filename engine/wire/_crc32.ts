/**
 * CRC-32 (zlib's polynomial and conventions) for the frame checksum, from
 * whichever implementation is cheaper for the call (measured with
 * `deno bench -A engine/wire/checksum_bench.ts`):
 *
 * - The system zlib through FFI (`ffi/zlib.ts`): ≈ 50 ns a call on the
 *   12 header bytes every frame checksums, against ≈ 130 ns for
 *   `node:zlib`; but libz.so.1 (1.2.13) has no carry-less multiply, so on
 *   large payloads it runs at ≈ 3 GB/s, where `node:zlib` runs at ≈ 40 GB/s.
 * - `node:zlib`, which costs each isolate that loads it ≈ 15 ms of CPU.
 *
 * So inputs under {@link SMALL_BYTES} always go through libz, and large
 * ones too until libz has spent on them about what loading `node:zlib`
 * costs ({@link LIBZ_LARGE_BUDGET_BYTES}); then `node:zlib` is loaded and
 * takes the large ones. A short migration (and a Worker that sees only
 * small frames) never loads it; a long one pays at most twice the best
 * choice made in hindsight. Without `--allow-ffi`, or without libz,
 * everything goes to `node:zlib`. Not part of the public API.
 *
 * @module
 */

import { nodeBuiltin } from "../_node_builtin.ts";
import { libz } from "../../ffi/zlib.ts";

/** Inputs shorter than this always go through libz (its call costs less). */
export const SMALL_BYTES = 256;

/**
 * Bytes of large inputs libz checksums before `node:zlib` takes them over:
 * ≈ 15 ms of loading `node:zlib` at libz's extra ≈ 0.3 ns per byte.
 */
export const LIBZ_LARGE_BUDGET_BYTES: number = 48 << 20;

type Crc32Fn = (crc: number, bytes: Uint8Array, length: number) => number;

/** libz's crc32; null when FFI is not allowed or libz does not load; undefined: not tried yet. */
let ffiCrc: Crc32Fn | null | undefined;
/** node:zlib's crc32, once loaded. */
let nodeCrc: ((bytes: Uint8Array, crc: number) => number) | undefined;
/** Bytes of large inputs libz has checksummed so far. */
let libzLargeBytes = 0;

function loadFfi(): Crc32Fn | null {
  try {
    // Asking first: a dlopen without the permission would prompt on a tty.
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return null;
    }
    return libz().crc32;
  } catch {
    return null; // no libz here: node:zlib computes the same function
  }
}

/**
 * CRC-32 of `bytes`, continuing from `crc` (0 to start), as zlib's
 * `crc32(crc, bytes, length)` and `node:zlib`'s `crc32(bytes, crc)` give.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32 } from "./_crc32.ts";
 *
 * const check = new TextEncoder().encode("123456789");
 * assert.equal(crc32(check), 0xcbf43926);
 * assert.equal(crc32(check.subarray(4), crc32(check.subarray(0, 4))), 0xcbf43926);
 * ```
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  // zlib returns 0 for a null buffer, which an empty view may pass.
  if (bytes.length === 0) return crc >>> 0;
  const libzCrc = libzFor(bytes.length);
  if (libzCrc !== null) {
    if (bytes.length >= SMALL_BYTES) libzLargeBytes += bytes.length;
    return libzCrc(crc, bytes, bytes.length);
  }
  nodeCrc ??= nodeBuiltin("node:zlib").crc32;
  return nodeCrc(bytes, crc);
}

/** libz's crc32 when it takes an input of `length` bytes now (see the module doc), else null. */
function libzFor(length: number): Crc32Fn | null {
  if (ffiCrc === undefined) ffiCrc = loadFfi();
  if (ffiCrc === null) return null;
  return length < SMALL_BYTES ||
      (nodeCrc === undefined && libzLargeBytes < LIBZ_LARGE_BUDGET_BYTES)
    ? ffiCrc
    : null;
}

/**
 * Which implementation {@link crc32} would use for an input of `length`
 * bytes now, and whether `node:zlib` is loaded: for tests and benches.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crc32Route } from "./_crc32.ts";
 *
 * assert.ok(["libz", "node:zlib"].includes(crc32Route(12).via));
 * ```
 */
export function crc32Route(
  length: number,
): { via: "libz" | "node:zlib"; nodeZlibLoaded: boolean } {
  return {
    via: libzFor(length) !== null ? "libz" : "node:zlib",
    nodeZlibLoaded: nodeCrc !== undefined,
  };
}
