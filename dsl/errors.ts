/**
 * The DSL's typed error.
 *
 * @module
 */

import { HakobuError } from "../engine/errors.ts";

/**
 * A policy (or a string meant for one) is invalid. `field` names the policy
 * field that failed, e.g. `"switchover"`, `"bandwidth"`, `"codec"`,
 * `"gpu.batch"` or `"default export"`, so callers and tests can tell one
 * failure from another; the message names the value and the fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compile, policy, PolicyError, when } from "@hakobu/hakobu";
 *
 * const p = policy("fast").switchover(when.rounds(30)).bandwidth(-5);
 * assert.throws(
 *   () => compile(p),
 *   (e) => e instanceof PolicyError && e.field === "bandwidth",
 * );
 * ```
 */
export class PolicyError extends HakobuError {
  /** The policy field that failed, e.g. `"bandwidth"` or `"gpu.batch"`. */
  declare readonly field: string;
  /**
   * Makes an error for one policy field.
   *
   * @param field The policy field that failed.
   * @param message What went wrong, the value in quotes, and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, { ...options, field });
  }
}
