import { CodecError } from "../errors.ts";
import type { Codec } from "./codec.ts";
import { dedup } from "./dedup.ts";
import { delta } from "./delta.ts";
import { lz4 } from "./lz4.ts";
import { raw } from "./raw.ts";
import { rle } from "./rle.ts";
import { zero } from "./zero.ts";
import { zstd } from "./zstd.ts";

/** Every codec hakobu knows, by name. Adding a codec adds one line here. */
const CODECS: readonly Codec[] = [raw, zero, rle, delta, dedup, lz4, zstd];

/**
 * Names of all registered codecs, in wire-id order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecNames } from "@hakobu/hakobu";
 *
 * assert.deepEqual(codecNames(), [
 *   "raw",
 *   "zero",
 *   "rle",
 *   "delta",
 *   "dedup",
 *   "lz4",
 *   "zstd",
 * ]);
 * ```
 */
export function codecNames(): string[] {
  return CODECS.map((c) => c.name);
}

/**
 * Looks a codec up by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName, CodecError } from "@hakobu/hakobu";
 *
 * assert.equal(codecByName("zero").id, 1);
 * assert.throws(() => codecByName("gzip"), CodecError);
 * ```
 *
 * @throws {CodecError} when no codec has that name.
 */
export function codecByName(name: string): Codec {
  const codec = CODECS.find((c) => c.name === name);
  if (!codec) {
    throw new CodecError(
      name,
      `Unknown codec "${name}": known codecs are ${
        codecNames().map((n) => `"${n}"`).join(", ")
      }`,
    );
  }
  return codec;
}

/**
 * Looks a codec up by wire id; `undefined` when the id is not registered.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecById } from "@hakobu/hakobu";
 *
 * assert.equal(codecById(0)?.name, "raw");
 * assert.equal(codecById(99), undefined);
 * ```
 */
export function codecById(id: number): Codec | undefined {
  return CODECS.find((c) => c.id === id);
}
