/**
 * Codec specs as data. A policy names codecs; the engine's registry turns
 * the names into codecs. Chains are tried in order and the first codec that
 * claims a page wins, so `raw` (which claims every page) ends every chain.
 *
 * @module
 */

import type { CodecSpec } from "../engine/plan.ts";

/** A codec spec or a chain of them, as `.codec()` and {@link codec.chain} accept. */
export type CodecChainInput = CodecSpec | readonly CodecSpec[];

function _spec(
  name: string,
  options?: Readonly<Record<string, unknown>>,
): CodecSpec {
  return Object.freeze(
    options === undefined
      ? { name }
      : { name, options: Object.freeze({ ...options }) },
  );
}

/** The codec helpers; see {@link codec}. */
export interface CodecHelpers {
  /**
   * `raw`: the page as it is; claims every page.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.raw(), { name: "raw" });
   * ```
   */
  raw(): CodecSpec;
  /**
   * `zero`: all-zero pages cost no payload; declines every other page.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.zero(), { name: "zero" });
   * ```
   */
  zero(): CodecSpec;
  /**
   * `rle`: runs of repeated 32-bit words (zero- and colour-filled pages);
   * declines pages it cannot shrink.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.rle(), { name: "rle" });
   * ```
   */
  rle(): CodecSpec;
  /**
   * `delta`: XOR against the page sent last, in QEMU's XBZRLE grammar;
   * `cacheBytes` (a multiple of the page size, default 64 MiB) bounds the
   * sender's cache of sent pages.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.delta(), { name: "delta" });
   * assert.deepEqual(codec.delta({ cacheBytes: 16 << 20 }), {
   *   name: "delta",
   *   options: { cacheBytes: 16777216 },
   * });
   * ```
   */
  delta(options?: { readonly cacheBytes?: number }): CodecSpec;
  /**
   * `dedup`: fixed-size chunks the receiver already holds travel as 4-byte
   * references; declines pages with no repeated chunk. `chunkBytes` (512,
   * 1024, 2048 or 4096, default 4096) and `storeBytes` (content store per
   * side, default 256 MiB).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.dedup(), { name: "dedup" });
   * assert.deepEqual(codec.dedup({ chunkBytes: 1024 }), {
   *   name: "dedup",
   *   options: { chunkBytes: 1024 },
   * });
   * ```
   */
  dedup(
    options?: { readonly chunkBytes?: number; readonly storeBytes?: number },
  ): CodecSpec;
  /**
   * `lz4`: one LZ4 block per page (liblz4); claims pages it shrinks.
   * `acceleration` (integer 1..65537, default 1) trades ratio for speed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.lz4(), { name: "lz4" });
   * assert.deepEqual(codec.lz4({ acceleration: 4 }), {
   *   name: "lz4",
   *   options: { acceleration: 4 },
   * });
   * ```
   */
  lz4(options?: { readonly acceleration?: number }): CodecSpec;
  /**
   * `zstd`: one zstd frame per page (libzstd, else node:zlib); claims pages
   * it shrinks. `level` (integer -131072..22, default 1).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.zstd({ level: 3 }), {
   *   name: "zstd",
   *   options: { level: 3 },
   * });
   * ```
   */
  zstd(options?: { readonly level?: number }): CodecSpec;
  /**
   * Any registered codec by name, with codec-specific options; the name is
   * checked against the registry when the policy compiles.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.named("zstd", { level: 1 }), {
   *   name: "zstd",
   *   options: { level: 1 },
   * });
   * ```
   */
  named(name: string, options?: Readonly<Record<string, unknown>>): CodecSpec;
  /**
   * A chain: specs (or chains, flattened) in the order they are tried.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { codec } from "@hakobu/hakobu";
   *
   * assert.deepEqual(codec.chain(codec.zero(), codec.raw()), [
   *   { name: "zero" },
   *   { name: "raw" },
   * ]);
   * ```
   */
  chain(...specs: readonly CodecChainInput[]): readonly CodecSpec[];
}

/**
 * Builds codec specs. Adding a codec to the DSL is one line here
 * (`lz4: () => _spec("lz4")`); until then {@link CodecHelpers.named} reaches it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codec, compile, policy, roundStats, when } from "@hakobu/hakobu";
 *
 * const plan = compile(
 *   policy("p").codec([codec.zero(), codec.raw()]).switchover(when.rounds(3)),
 * );
 * assert.deepEqual(plan.codecsFor(roundStats()), [
 *   { name: "zero" },
 *   { name: "raw" },
 * ]);
 * ```
 */
export const codec: CodecHelpers = Object.freeze({
  raw: () => _spec("raw"),
  zero: () => _spec("zero"),
  rle: () => _spec("rle"),
  delta: (options?: { readonly cacheBytes?: number }) =>
    _spec("delta", options),
  dedup: (
    options?: { readonly chunkBytes?: number; readonly storeBytes?: number },
  ) => _spec("dedup", options),
  lz4: (options?: { readonly acceleration?: number }) => _spec("lz4", options),
  zstd: (options?: { readonly level?: number }) => _spec("zstd", options),
  named: (name: string, options?: Readonly<Record<string, unknown>>) =>
    _spec(name, options),
  chain: (...specs: readonly CodecChainInput[]) => Object.freeze(specs.flat()),
});
