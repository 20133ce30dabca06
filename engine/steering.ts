/**
 * Steering: the one place where a migration, whatever its backend, asks its
 * plan what to do. A backend hands over its raw counters at a decision point
 * (round index, remaining bytes or dirty pages, bytes sent, maybe rates and
 * its own clock); {@link Steering} turns them into the {@link RoundStats} the
 * plan reads — rates it was not given derived from the previous decision
 * point, {@link RoundStats.history} filled in — asks `decide` and `reason`,
 * and applies the limits a plan cannot escape (`maxRounds`; a plan that
 * throws or answers nonsense aborts), each with one wording.
 *
 * The native engine (`precopy.ts`), the QEMU driver and the Xen save loop
 * each keep one `Steering` per migration; so does any new backend. The
 * statistics are built by its private half `_round_meter.ts`, which the
 * stream tunnel's codec chooser uses alone (there the hypervisor decides).
 *
 * @module
 */

import type { Decision, Plan, RoundHistoryEntry, RoundStats } from "./plan.ts";
import { RoundMeter } from "./_round_meter.ts";

/** The part of a {@link Plan} that steering consults. */
export type SteeringPlan =
  & Pick<Plan, "name" | "decide" | "maxRounds">
  & Partial<Pick<Plan, "reason">>;

/**
 * What a backend knows at a decision point. Give `dirtyPages` or
 * `remainingBytes` (the other follows from the page size); rates and the
 * elapsed time a backend does not measure itself are derived.
 */
export interface SteeringCounters {
  /** Round index: 0 for the first round (which sends every page). */
  readonly round: number;
  /** Pages dirty now (what the next round would send). */
  readonly dirtyPages?: number;
  /** Bytes still to send (default `dirtyPages × pageSize`). */
  readonly remainingBytes?: number;
  /**
   * Guest dirtying rate, bytes per second. Default: `dirtyPages × pageSize`
   * over the time since the previous decision point (or since the start).
   */
  readonly dirtyRate?: number;
  /** Page bytes sent per second. Default: `rawBytesSent`'s growth since the previous decision point over the time since. */
  readonly sendRate?: number;
  /** Wire bytes per second. Default: `bytesSent`'s growth since the previous decision point over the time since. */
  readonly wireRate?: number;
  /** Bytes put on the wire so far. */
  readonly bytesSent: number;
  /** Page bytes sent so far, before encoding. */
  readonly rawBytesSent: number;
  /** Milliseconds since the migration started (default: the steering's own clock). */
  readonly elapsedMs?: number;
  /** The VM's memory size, when only now known or changed (default: the steering's). */
  readonly memoryBytes?: number;
  /** The page size, when only now known (default: the steering's). */
  readonly pageSize?: number;
}

/** Options of {@link Steering}. */
export interface SteeringOptions {
  /** The VM's memory size in bytes (default 0: unknown until the counters say). */
  readonly memoryBytes?: number;
  /** Page size in bytes (default 4096). */
  readonly pageSize?: number;
  /**
   * Milliseconds on a monotonic clock (default `performance.now`); the
   * migration starts when the `Steering` is made.
   */
  readonly now?: () => number;
}

/** What {@link Steering.decide} answers. */
export interface SteeringStep {
  /** The statistics the plan was asked with. */
  readonly stats: RoundStats;
  /** What the backend does now. */
  readonly decision: Decision;
  /** Why, in words: `"<decision>: <why>"`. */
  readonly reason: string;
  /**
   * What overrode the plan's answer: `"maxRounds"` (the plan said continue
   * at its last allowed round) or `"plan-error"` (it threw or answered
   * something that is no decision); absent when the plan's answer stands.
   */
  readonly override?: "maxRounds" | "plan-error";
}

/**
 * Why no further live round may start once `roundsDone` live rounds have
 * finished under a plan of `maxRounds`, or `null` while one may: the one
 * wording of the `maxRounds` limit, for every backend (and for a backend
 * such as libxc that asks about the limit between its own decisions).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundLimitReason } from "@hakobu/hakobu";
 *
 * assert.equal(roundLimitReason(3, 2), null);
 * assert.equal(
 *   roundLimitReason(3, 3),
 *   "switchover: 3 rounds reached the limit of maxRounds 3",
 * );
 * ```
 */
export function roundLimitReason(
  maxRounds: number,
  roundsDone: number,
): string | null {
  return roundsDone >= maxRounds
    ? `switchover: ${roundsDone} rounds reached the limit of maxRounds ${maxRounds}`
    : null;
}

const DECISIONS: ReadonlySet<string> = new Set([
  "continue",
  "switchover",
  "abort",
]);

/**
 * Steers one migration: builds each decision point's {@link RoundStats}
 * from a backend's counters, asks the plan, and applies the limits once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, policy, Steering, when } from "@hakobu/hakobu";
 *
 * const plan = policy("p")
 *   .switchover(when.remainingBelow(MiB(1)))
 *   .maxRounds(3)
 *   .compile();
 * let t = 0;
 * const steering = new Steering(plan, {
 *   memoryBytes: MiB(64),
 *   now: () => t, // a fake clock: one second per round
 * });
 * t = 1000;
 * const first = steering.decide({
 *   round: 0,
 *   dirtyPages: 2048, // 8 MiB dirtied while round 0 sent 64 MiB
 *   bytesSent: MiB(64),
 *   rawBytesSent: MiB(64),
 * });
 * assert.equal(first.decision, "continue");
 * assert.equal(first.stats.dirtyRate, MiB(8)); // 8 MiB over one second
 * assert.equal(first.stats.sendRate, MiB(64));
 * t = 2000;
 * const second = steering.decide({
 *   round: 1,
 *   dirtyPages: 1024,
 *   bytesSent: MiB(72),
 *   rawBytesSent: MiB(72),
 * });
 * // the earlier decision points ride along, oldest first
 * assert.deepEqual(second.stats.history?.map((h) => h.round), [0]);
 * t = 2500;
 * const third = steering.decide({
 *   round: 2,
 *   dirtyPages: 1024, // not shrinking: the plan would continue...
 *   bytesSent: MiB(76),
 *   rawBytesSent: MiB(76),
 * });
 * // ...but round 2 was the last one maxRounds allows
 * assert.equal(third.decision, "switchover");
 * assert.equal(third.override, undefined); // compiled plans apply it themselves
 * assert.match(third.reason, /reached the limit of maxRounds 3/);
 * ```
 */
export class Steering {
  readonly #plan: SteeringPlan;
  readonly #meter: RoundMeter;

  /**
   * Starts steering one migration under `plan`; its clock starts now.
   *
   * @param plan The plan that decides.
   * @param options The VM's geometry and the clock.
   */
  constructor(plan: SteeringPlan, options: SteeringOptions = {}) {
    this.#plan = plan;
    this.#meter = new RoundMeter(options);
  }

  /** Milliseconds since the migration started, on the steering's clock. */
  get elapsedMs(): number {
    return this.#meter.elapsedMs;
  }

  /** The decision points so far, oldest first. */
  get history(): readonly RoundHistoryEntry[] {
    return this.#meter.history;
  }

  /** The plan's `maxRounds`. */
  get maxRounds(): number {
    return this.#plan.maxRounds;
  }

  /**
   * The statistics at this point, without a decision: for the codec
   * chooser (`codecsFor`) before a round, or for progress. Records nothing.
   */
  stats(counters: SteeringCounters): RoundStats {
    return this.#meter.stats(counters);
  }

  /**
   * A decision point: builds the statistics, asks the plan (`decide`, then
   * `reason`), applies `maxRounds` (a `continue` at the last allowed round
   * becomes `switchover`) and records the point in the history. A plan that
   * throws, or answers something that is no decision, aborts the migration
   * (the source runs on), with the plan's error as the reason.
   */
  decide(counters: SteeringCounters): SteeringStep {
    const stats = this.#meter.stats(counters);
    const step = this.#ask(stats);
    this.#meter.mark(stats);
    return step;
  }

  /**
   * Why no live round may start after `roundsDone` rounds
   * ({@link roundLimitReason} with the plan's `maxRounds`), or `null`.
   */
  roundLimit(roundsDone: number): string | null {
    return roundLimitReason(this.#plan.maxRounds, roundsDone);
  }

  #ask(stats: RoundStats): SteeringStep {
    const plan = this.#plan;
    let decision: unknown;
    try {
      decision = plan.decide(stats);
    } catch (e) {
      return {
        stats,
        decision: "abort",
        reason:
          `abort: the plan "${plan.name}" failed in decide after round ${stats.round}: ${
            e instanceof Error ? e.message : String(e)
          }`,
        override: "plan-error",
      };
    }
    if (typeof decision !== "string" || !DECISIONS.has(decision)) {
      return {
        stats,
        decision: "abort",
        reason: `abort: the plan "${plan.name}" answered "${
          String(decision)
        }" after round ${stats.round}, expected continue, switchover or abort`,
        override: "plan-error",
      };
    }
    const answer = decision as Decision;
    if (answer === "continue") {
      const limit = this.roundLimit(stats.round + 1);
      if (limit !== null) {
        return {
          stats,
          decision: "switchover",
          reason: limit,
          override: "maxRounds",
        };
      }
    }
    return { stats, decision: answer, reason: this.#reason(stats, answer) };
  }

  #reason(stats: RoundStats, answer: Decision): string {
    const fallback =
      `${answer}: the plan "${this.#plan.name}" answered "${answer}" after round ${stats.round}`;
    try {
      return this.#plan.reason?.(stats) || fallback;
    } catch {
      return fallback;
    }
  }
}
