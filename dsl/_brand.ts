/**
 * The mark that tells policy builders apart from other objects, also across
 * copies of the DSL module; private to `dsl/`.
 *
 * @module
 */

import type { Policy } from "./policy.ts";

/** Registered symbol, so that two copies of this module agree on it. */
export const _BRAND: unique symbol = Symbol.for("hakobu.policy");

/** Whether a value carries the policy mark and a spec. */
export function _isBranded(value: unknown): value is Policy {
  return typeof value === "object" && value !== null &&
    (value as { [_BRAND]?: unknown })[_BRAND] === true &&
    typeof (value as { spec?: unknown }).spec === "object";
}
