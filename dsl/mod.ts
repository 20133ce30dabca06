/**
 * The policy DSL: write a migration policy as a chain of calls, check it,
 * compile it into the engine's {@link Plan}, and read it back in words.
 *
 * Read in this order: `policy.ts` (the builder), `codec_spec.ts` (codec
 * chains), `conditions.ts` (when to switch over or abort), `units.ts`,
 * `compile.ts` (checks and defaults), `explain.ts`, `load.ts` (policy files).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   codec,
 *   compile,
 *   explain,
 *   Gbit,
 *   MiB,
 *   minutes,
 *   policy,
 *   roundStats,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * const p = policy("fast")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.any(
 *     when.remainingBelow(MiB(64)),
 *     when.dirtyRateAbove((s) => 0.8 * s.sendRate),
 *     when.rounds(30),
 *   ))
 *   .abortIf(when.elapsedAbove(minutes(10)))
 *   .bandwidth(Gbit(1));
 * assert.match(explain(p), /bandwidth: +1\.00 Gbit\/s/);
 * const plan = compile(p);
 * assert.equal(
 *   plan.decide(roundStats({ remainingBytes: MiB(8) })),
 *   "switchover",
 * );
 * ```
 *
 * @module
 */

export type {
  CodecSpec,
  Deadlines,
  Decision,
  GpuSettings,
  Plan,
  ResumeSettings,
  RoundHistoryEntry,
  RoundStats,
} from "../engine/plan.ts";
export { DEFAULT_DEADLINES } from "../engine/plan.ts";
export * from "./errors.ts";
export * from "./units.ts";
export * from "./codec_spec.ts";
export * from "./conditions.ts";
export * from "./stats.ts";
export * from "./policy.ts";
export * from "./compile.ts";
export * from "./explain.ts";
export * from "./load.ts";
