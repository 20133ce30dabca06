/**
 * What compile() knew about a plan, kept beside it for explain(); private to `dsl/`.
 *
 * @module
 */

import type { CodecSpec } from "../engine/plan.ts";
import type { Condition } from "./conditions.ts";

/** How a compiled plan came about. */
export interface PlanInfo {
  /** Where the plan came from: a policy builder or a hand-written plan. */
  readonly source: "policy" | "plan";
  /** The fixed chain (raw appended), when the codec is not chosen per round. */
  readonly fixedChain?: readonly CodecSpec[];
  /** The switchover condition, for the high-level form. */
  readonly switchover?: Condition;
  /** The abort condition, when set. */
  readonly abortIf?: Condition;
  /** Whether the low-level decide function (or a hand-written plan's) decides. */
  readonly lowLevel: boolean;
}

const INFO = new WeakMap<object, PlanInfo>();

/** Records how a plan came about. */
export function _setPlanInfo(plan: object, info: PlanInfo): void {
  INFO.set(plan, info);
}

/** How a plan came about, when this module compiled it. */
export function _planInfo(plan: object): PlanInfo | undefined {
  return INFO.get(plan);
}
