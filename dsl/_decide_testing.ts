/**
 * A test helper for the DSL's tests (not exported from mod.ts): a plan's
 * decisions over a table of statistics.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Decision, Plan, RoundStats } from "../engine/plan.ts";
import { roundStats } from "./stats.ts";

/**
 * Asserts that `plan` decides each row's decision for the statistics its
 * fields describe (the rest as {@link roundStats} fills them in).
 */
export function assertDecides(
  plan: Plan,
  rows: readonly (readonly [Partial<RoundStats>, Decision])[],
): void {
  for (const [fields, decision] of rows) {
    assert.equal(
      plan.decide(roundStats(fields)),
      decision,
      `${plan.name} at ${JSON.stringify(fields)}`,
    );
  }
}
