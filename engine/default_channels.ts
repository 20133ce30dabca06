/**
 * How many channels a migration runs when neither the plan nor the caller
 * says. A file of its own so that the stream tunnel, which needs only this
 * number, does not load `precopy.ts` and its module graph at every start.
 *
 * @module
 */

/**
 * The channels a migration uses when neither the plan nor the caller says:
 * the machine's core count (at least 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultChannels } from "@hakobu/hakobu";
 *
 * assert.equal(defaultChannels(), Math.max(1, navigator.hardwareConcurrency));
 * ```
 */
export function defaultChannels(): number {
  return Math.max(1, navigator.hardwareConcurrency || 1);
}
