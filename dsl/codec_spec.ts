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
   * codec.raw(); // { name: "raw" }
   * ```
   */
  raw(): CodecSpec;
  /**
   * `zero`: all-zero pages cost no payload; declines every other page.
   *
   * @example
   * ```ts
   * codec.zero(); // { name: "zero" }
   * ```
   */
  zero(): CodecSpec;
  /**
   * Any registered codec by name, with codec-specific options; the name is
   * checked against the registry when the policy compiles.
   *
   * @example
   * ```ts
   * codec.named("zstd", { level: 1 }); // { name: "zstd", options: { level: 1 } }
   * ```
   */
  named(name: string, options?: Readonly<Record<string, unknown>>): CodecSpec;
  /**
   * A chain: specs (or chains, flattened) in the order they are tried.
   *
   * @example
   * ```ts
   * codec.chain(codec.zero(), codec.raw()); // [{ name: "zero" }, { name: "raw" }]
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
 * policy("p").codec([codec.zero(), codec.raw()]);
 * ```
 */
export const codec: CodecHelpers = Object.freeze({
  raw: () => _spec("raw"),
  zero: () => _spec("zero"),
  named: (name: string, options?: Readonly<Record<string, unknown>>) =>
    _spec(name, options),
  chain: (...specs: readonly CodecChainInput[]) => Object.freeze(specs.flat()),
});
