/**
 * The receiver's side of codec negotiation: HELLO's codec list checked
 * against the codecs this receiver has. Each channel's decoders are then
 * created as CODEC frames announce them (`codecs/batch_chain.ts`).
 *
 * @module
 */

import type { Codec } from "../codecs/codec.ts";
import { codecById, codecByName, codecNames } from "../codecs/registry.ts";
import { MigrationError } from "../errors.ts";
import type { CodecRef } from "./messages.ts";

/**
 * Checks HELLO's codec list against the codecs this receiver has (`local`,
 * default the registry) and returns the negotiated codecs by wire id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MigrationError, negotiateCodecs } from "@hakobu/hakobu";
 *
 * const codecs = negotiateCodecs([
 *   { id: 0, name: "raw" },
 *   { id: 1, name: "zero" },
 * ]);
 * assert.equal(codecs.get(1)?.name, "zero");
 * // An id this receiver knows under another name is refused:
 * assert.throws(
 *   () => negotiateCodecs([{ id: 1, name: "rle" }]),
 *   MigrationError,
 * );
 * ```
 *
 * @throws {MigrationError} for a codec this receiver does not know under that
 * id, or one listed twice.
 */
export function negotiateCodecs(
  refs: readonly CodecRef[],
  local?: readonly Codec[],
): Map<number, Codec> {
  const find = (id: number): Codec | undefined =>
    local ? local.find((c) => c.id === id) : codecById(id);
  const negotiated = new Map<number, Codec>();
  for (const { id, name } of refs) {
    const codec = find(id);
    if (!codec || codec.name !== name) {
      const known = (local ?? codecNames().map(codecByName))
        .map((c) => `"${c.name}" (${c.id})`).join(", ");
      throw new MigrationError(
        `Unknown codec "${name}" with id ${id}: this receiver knows ${known}` +
          (codec ? `; its id ${id} is "${codec.name}"` : ""),
      );
    }
    if (negotiated.has(id)) {
      throw new MigrationError(
        `Codec "${name}" with id ${id} is listed twice in HELLO`,
      );
    }
    negotiated.set(id, codec);
  }
  return negotiated;
}
