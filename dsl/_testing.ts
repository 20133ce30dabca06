/**
 * Helpers for the DSL's tests (not exported from mod.ts): the policy error
 * a call should fail with, and a plan's decisions over a table of
 * statistics.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Decision, Plan, RoundStats } from "../engine/plan.ts";
import { PolicyError } from "./errors.ts";
import { roundStats } from "./stats.ts";

/**
 * Asserts `fn` throws a {@link PolicyError} for `field` whose message
 * matches every pattern and ends without a period; returns it.
 */
export function assertPolicyError(
  fn: () => unknown,
  field: string,
  ...patterns: RegExp[]
): PolicyError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  const e = policyErrorOf(caught, field, patterns);
  assert.ok(!e.message.endsWith("."), "no trailing period");
  return e;
}

/** {@link assertPolicyError} for a promise that should reject (any ending allowed). */
export async function assertRejectsPolicyError(
  p: Promise<unknown>,
  field: string,
  ...patterns: RegExp[]
): Promise<PolicyError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  return policyErrorOf(caught, field, patterns);
}

function policyErrorOf(
  caught: unknown,
  field: string,
  patterns: readonly RegExp[],
): PolicyError {
  assert.ok(
    caught instanceof PolicyError,
    `expected a PolicyError, got ${String(caught)}`,
  );
  assert.equal(caught.field, field, caught.message);
  for (const p of patterns) assert.match(caught.message, p);
  return caught;
}

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
