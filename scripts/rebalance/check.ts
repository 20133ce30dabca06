/**
 * Checking a run against the hosts: after the moves, the inventory is read
 * back (from a live source, or from the fabric's own view) and each move's
 * VM must be where its result says: on the destination when the migration
 * verified, on the source when it did not.
 *
 * @module
 */

import type { Inventory } from "./inventory.ts";
import type { MoveResult } from "./runner.ts";

/** One move checked against the inventory read back. */
export interface PlacementCheck {
  /** VM name. */
  readonly vm: string;
  /** Where it should be: the destination if the migration verified, else the source. */
  readonly expected: string;
  /** Where the inventory read back has it (`null`: not there at all). */
  readonly found: string | null;
  /** Whether `found` is `expected`. */
  readonly ok: boolean;
  /** What was found, in words. */
  readonly detail: string;
}

/**
 * Checks each result against the inventory read back after the run.
 *
 * @param results `runPlan`'s results.
 * @param observed The inventory read back.
 * @param where What it was read from, for the messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkPlacements, parseInventory } from "./mod.ts";
 *
 * const move = {
 *   vm: "a", from: "h1", to: "h2", bytes: 4096, predictedBytes: 4096,
 *   predictedWireBytes: 4096, predictedMs: 1, predictedDowntimeMs: 0,
 *   reason: "", memory: "",
 * };
 * const result = { move, verified: true, totalTimeMs: 1, downtimeMs: 0, wireBytes: 4096 };
 * const observed = parseInventory({
 *   hosts: [{ name: "h1", memory: "1GiB" }, { name: "h2", memory: "1GiB" }],
 *   vms: [{ name: "a", host: "h1", memory: "4KiB" }],
 * });
 * const [check] = checkPlacements([result], observed, "the hosts");
 * assert.equal(check.ok, false);
 * assert.equal(
 *   check.detail,
 *   'the migration verified, yet read back from the hosts it is on "h1", not "h2"',
 * );
 * ```
 */
export function checkPlacements(
  results: readonly MoveResult[],
  observed: Inventory,
  where: string,
): PlacementCheck[] {
  const hostOf = new Map(observed.vms.map((v) => [v.name, v.host]));
  return results.map((r) => {
    const { vm, from, to } = r.move;
    const expected = r.verified ? to : from;
    const found = hostOf.get(vm) ?? null;
    const ok = found === expected;
    const detail = found === null
      ? `not in the inventory read back from ${where}`
      : ok
      ? `on "${found}"`
      : r.verified
      ? `the migration verified, yet read back from ${where} it is on "${found}", not "${to}"`
      : found === to
      ? `the migration failed, yet read back from ${where} it is on "${to}"`
      : `read back from ${where} it is on "${found}", neither "${from}" nor "${to}"`;
    return { vm, expected, found, ok, detail };
  });
}
