/**
 * Switchover and abort conditions as data, each able to test itself on a
 * {@link RoundStats}, describe itself, and say with measured values why it
 * holds or not (the reason shown in reports).
 *
 * A condition is checked after each round with the stats of the round just
 * finished (see {@link RoundStats}).
 *
 * @module
 */

import type { RoundStats } from "../engine/plan.ts";
import { PolicyError } from "./errors.ts";
import { formatBytes, formatDuration, formatRate } from "./units.ts";

/** A rate threshold: bytes per second, or a function of the round's stats (e.g. `s => 0.8 * s.sendRate`). */
export type Threshold = number | ((stats: RoundStats) => number);

/** What every condition can do. */
export interface ConditionMethods {
  /** Whether the condition holds for these stats. */
  test(stats: RoundStats): boolean;
  /** The condition in words, e.g. `"remaining below 64.00 MiB"`. */
  describe(): string;
  /** With measured values, why the condition holds or not, e.g. `"remaining 48.00 MiB is below 64.00 MiB"`. */
  why(stats: RoundStats): string;
}

/** A bound on a byte count or a duration. */
export interface BoundCondition extends ConditionMethods {
  /** Which measure is bounded, and in which direction. */
  readonly kind:
    | "remainingBelow"
    | "remainingAbove"
    | "bytesSentAbove"
    | "elapsedAbove"
    | "downtimeBelow";
  /** Bytes, or milliseconds for `elapsedAbove` and `downtimeBelow`. */
  readonly threshold: number;
}

/** A bound on the guest's dirtying rate. */
export interface RateCondition extends ConditionMethods {
  /** The direction of the bound. */
  readonly kind: "dirtyRateAbove" | "dirtyRateBelow";
  /** Bytes per second, or a function of the stats giving them. */
  readonly threshold: Threshold;
  /** Words for a function threshold, e.g. `"80% of the send rate"`. */
  readonly label?: string;
}

/** True once `count` rounds have finished. */
export interface RoundsCondition extends ConditionMethods {
  /** Always `"rounds"`. */
  readonly kind: "rounds";
  /** Rounds that must have finished. */
  readonly count: number;
}

/** Any or all of several conditions. */
export interface GroupCondition extends ConditionMethods {
  /** `"any"` holds when one member holds, `"all"` when every member holds. */
  readonly kind: "any" | "all";
  /** The members, in the order they are tried. */
  readonly conditions: readonly Condition[];
}

/** The negation of a condition. */
export interface NotCondition extends ConditionMethods {
  /** Always `"not"`. */
  readonly kind: "not";
  /** The negated condition. */
  readonly condition: Condition;
}

/** A condition written as a function. */
export interface CustomCondition extends ConditionMethods {
  /** Always `"custom"`. */
  readonly kind: "custom";
  /** The condition in words. */
  readonly description: string;
  /** The test. */
  readonly fn: (stats: RoundStats) => boolean;
}

/** A switchover or abort condition; build one with {@link when}. */
export type Condition =
  | BoundCondition
  | RateCondition
  | RoundsCondition
  | GroupCondition
  | NotCondition
  | CustomCondition;

/**
 * Estimated downtime in milliseconds if the migration switched over now:
 * the remaining bytes at the last round's send rate; `Infinity` when nothing
 * was sent yet (send rate 0) and bytes remain.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimatedDowntimeMs, MBps, roundStats } from "@hakobu/hakobu";
 *
 * const stats = roundStats({ remainingBytes: 10e6, sendRate: MBps(100) });
 * assert.equal(estimatedDowntimeMs(stats), 100);
 * ```
 */
export function estimatedDowntimeMs(stats: RoundStats): number {
  if (stats.remainingBytes <= 0) return 0;
  if (stats.sendRate <= 0) return Infinity;
  return (stats.remainingBytes / stats.sendRate) * 1000;
}

const BOUNDS = {
  remainingBelow: {
    measure: "remaining",
    below: true,
    get: (s: RoundStats) => s.remainingBytes,
    fmt: formatBytes,
  },
  remainingAbove: {
    measure: "remaining",
    below: false,
    get: (s: RoundStats) => s.remainingBytes,
    fmt: formatBytes,
  },
  bytesSentAbove: {
    measure: "bytes sent",
    below: false,
    get: (s: RoundStats) => s.bytesSent,
    fmt: formatBytes,
  },
  elapsedAbove: {
    measure: "elapsed time",
    below: false,
    get: (s: RoundStats) => s.elapsedMs,
    fmt: formatDuration,
  },
  downtimeBelow: {
    measure: "estimated downtime",
    below: true,
    get: estimatedDowntimeMs,
    fmt: (
      n: number,
    ) => (n === Infinity ? "unknown (nothing sent yet)" : formatDuration(n)),
  },
} as const;

function _bound(
  kind: BoundCondition["kind"],
  threshold: number,
): BoundCondition {
  const b = BOUNDS[kind];
  // downtimeBelow is inclusive ("at most"); the others are strict.
  const inclusive = kind === "downtimeBelow";
  const rel = inclusive ? "at most" : b.below ? "below" : "above";
  const holds = (v: number) =>
    inclusive ? v <= threshold : b.below ? v < threshold : v > threshold;
  return Object.freeze({
    kind,
    threshold,
    test: (s: RoundStats) => holds(b.get(s)),
    describe: () => `${b.measure} ${rel} ${b.fmt(threshold)}`,
    why: (s: RoundStats) => {
      const v = b.get(s);
      return `${b.measure} ${b.fmt(v)} is ${holds(v) ? "" : "not "}${rel} ${
        b.fmt(threshold)
      }`;
    },
  });
}

function _fnText(fn: (stats: RoundStats) => number): string {
  return `(${fn.toString().replace(/\s+/g, " ")})`;
}

function _rate(
  kind: RateCondition["kind"],
  threshold: Threshold,
  label: string | undefined,
): RateCondition {
  const rel = kind === "dirtyRateAbove" ? "above" : "below";
  const limit = (s: RoundStats): number => {
    if (typeof threshold !== "function") return threshold;
    const v = threshold(s);
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      throw new PolicyError(
        "condition",
        `Invalid threshold from ${kind}${
          _fnText(threshold)
        }: expected a finite number of bytes per second, got "${
          String(v)
        }": return e.g. 0.8 * s.sendRate`,
      );
    }
    return v;
  };
  const holds = (s: RoundStats) =>
    kind === "dirtyRateAbove" ? s.dirtyRate > limit(s) : s.dirtyRate < limit(s);
  const words = typeof threshold === "function"
    ? (label ?? _fnText(threshold))
    : formatRate(threshold);
  return Object.freeze({
    kind,
    threshold,
    ...(label === undefined ? {} : { label }),
    test: holds,
    describe: () => `dirty rate ${rel} ${words}`,
    why: (s: RoundStats) => {
      const l = limit(s);
      const shown = typeof threshold === "function"
        ? `${formatRate(l)} (${words})`
        : words;
      return `dirty rate ${formatRate(s.dirtyRate)} is ${
        holds(s) ? "" : "not "
      }${rel} ${shown}`;
    },
  });
}

function _group(
  kind: "any" | "all",
  conditions: readonly Condition[],
): GroupCondition {
  const members = Object.freeze([...conditions]);
  const joiner = kind === "any" ? " or " : " and ";
  const part = (c: Condition) =>
    c.kind === "any" || c.kind === "all" ? `(${c.describe()})` : c.describe();
  const test = (s: RoundStats) =>
    kind === "any"
      ? members.some((c) => c.test(s))
      : members.every((c) => c.test(s));
  return Object.freeze({
    kind,
    conditions: members,
    test,
    describe: () =>
      members.length === 0
        ? (kind === "any" ? "never" : "always")
        : members.map(part).join(joiner),
    why: (s: RoundStats) => {
      if (kind === "any") {
        const hit = members.find((c) => c.test(s));
        return hit
          ? hit.why(s)
          : `none of: ${members.map((c) => c.why(s)).join("; ")}`;
      }
      const miss = members.find((c) => !c.test(s));
      return miss ? miss.why(s) : members.map((c) => c.why(s)).join(" and ");
    },
  });
}

/** The condition builders; see {@link when}. */
export interface ConditionBuilders {
  /**
   * Bytes still to send are below `bytes` (strictly).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.remainingBelow(MiB(64));
   * assert.equal(c.test(roundStats({ remainingBytes: MiB(10) })), true);
   * assert.equal(c.describe(), "remaining below 64.00 MiB");
   * ```
   */
  remainingBelow(bytes: number): BoundCondition;
  /**
   * Bytes still to send are above `bytes` (strictly).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.remainingAbove(GiB(1));
   * assert.equal(c.test(roundStats({ remainingBytes: GiB(2) })), true);
   * assert.equal(c.describe(), "remaining above 1.00 GiB");
   * ```
   */
  remainingAbove(bytes: number): BoundCondition;
  /**
   * The guest dirties memory faster than `rate` (bytes per second, or a function of the stats).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Gbit, MBps, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.dirtyRateAbove(
   *   (s) => 0.8 * s.sendRate,
   *   "80% of the send rate",
   * );
   * const stats = roundStats({ dirtyRate: MBps(120), sendRate: Gbit(1) });
   * assert.equal(c.test(stats), true);
   * assert.equal(c.describe(), "dirty rate above 80% of the send rate");
   * ```
   */
  dirtyRateAbove(rate: Threshold, label?: string): RateCondition;
  /**
   * The guest dirties memory slower than `rate` (bytes per second, or a function of the stats).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mbit, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.dirtyRateBelow(Mbit(10));
   * assert.equal(c.test(roundStats({ dirtyRate: Mbit(1) })), true);
   * ```
   */
  dirtyRateBelow(rate: Threshold, label?: string): RateCondition;
  /**
   * At least `n` rounds have finished (`stats.round + 1 >= n`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.rounds(30);
   * assert.equal(c.test(roundStats({ round: 29 })), true); // round 29 is the 30th
   * assert.equal(c.describe(), "30 rounds have finished");
   * ```
   */
  rounds(n: number): RoundsCondition;
  /**
   * More than `ms` milliseconds have passed since the migration started.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { minutes, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.elapsedAbove(minutes(10));
   * assert.equal(c.test(roundStats({ elapsedMs: minutes(11) })), true);
   * assert.equal(c.describe(), "elapsed time above 10 min 0 s");
   * ```
   */
  elapsedAbove(ms: number): BoundCondition;
  /**
   * More than `bytes` bytes are on the wire so far.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.bytesSentAbove(GiB(64));
   * assert.equal(c.test(roundStats({ bytesSent: GiB(65) })), true);
   * ```
   */
  bytesSentAbove(bytes: number): BoundCondition;
  /**
   * Estimated downtime (remaining bytes at the last send rate) is at most `ms`;
   * false while the send rate is 0.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MBps, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.downtimeBelow(300);
   * // 10 MB left at 100 MB/s: about 100 ms of downtime.
   * const stats = roundStats({ remainingBytes: 10e6, sendRate: MBps(100) });
   * assert.equal(c.test(stats), true);
   * ```
   */
  downtimeBelow(ms: number): BoundCondition;
  /**
   * Any member holds (checked in order).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.any(when.remainingBelow(MiB(64)), when.rounds(30));
   * assert.equal(c.test(roundStats({ round: 29 })), true);
   * assert.equal(
   *   c.test(roundStats({ round: 0, remainingBytes: MiB(1) })),
   *   true,
   * );
   * ```
   */
  any(...conditions: readonly Condition[]): GroupCondition;
  /**
   * Every member holds.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Mbit, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.all(when.rounds(3), when.dirtyRateBelow(Mbit(100)));
   * assert.equal(c.test(roundStats({ round: 2, dirtyRate: Mbit(1) })), true);
   * assert.equal(c.test(roundStats({ round: 1, dirtyRate: Mbit(1) })), false);
   * ```
   */
  all(...conditions: readonly Condition[]): GroupCondition;
  /**
   * The condition does not hold.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.not(when.remainingBelow(MiB(1)));
   * assert.equal(c.test(roundStats({ remainingBytes: MiB(2) })), true);
   * assert.equal(c.describe(), "not (remaining below 1.00 MiB)");
   * ```
   */
  not(condition: Condition): NotCondition;
  /**
   * Any test written as a function, with words for explain() and reports.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GiB, roundStats, when } from "@hakobu/hakobu";
   *
   * const c = when.custom(
   *   "half the memory sent",
   *   (s) => s.rawBytesSent > s.memoryBytes / 2,
   * );
   * const stats = roundStats({ memoryBytes: GiB(4), rawBytesSent: GiB(3) });
   * assert.equal(c.test(stats), true);
   * ```
   */
  custom(
    description: string,
    fn: (stats: RoundStats) => boolean,
  ): CustomCondition;
}

/**
 * Builds switchover and abort conditions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, roundStats, when } from "@hakobu/hakobu";
 *
 * const c = when.any(when.remainingBelow(MiB(64)), when.rounds(30));
 * assert.equal(c.test(roundStats({ round: 29 })), true);
 * assert.equal(
 *   c.describe(),
 *   "remaining below 64.00 MiB or 30 rounds have finished",
 * );
 * ```
 */
export const when: ConditionBuilders = Object.freeze({
  remainingBelow: (bytes: number) => _bound("remainingBelow", bytes),
  remainingAbove: (bytes: number) => _bound("remainingAbove", bytes),
  dirtyRateAbove: (rate: Threshold, label?: string) =>
    _rate("dirtyRateAbove", rate, label),
  dirtyRateBelow: (rate: Threshold, label?: string) =>
    _rate("dirtyRateBelow", rate, label),
  rounds: (n: number): RoundsCondition => {
    const holds = (s: RoundStats) => s.round + 1 >= n;
    return Object.freeze({
      kind: "rounds" as const,
      count: n,
      test: holds,
      describe: () => `${n} rounds have finished`,
      why: (s: RoundStats) =>
        `${s.round + 1} of ${n} rounds ${holds(s) ? "done" : "not done yet"}`,
    });
  },
  elapsedAbove: (ms: number) => _bound("elapsedAbove", ms),
  bytesSentAbove: (bytes: number) => _bound("bytesSentAbove", bytes),
  downtimeBelow: (ms: number) => _bound("downtimeBelow", ms),
  any: (...conditions: readonly Condition[]) => _group("any", conditions),
  all: (...conditions: readonly Condition[]) => _group("all", conditions),
  not: (condition: Condition): NotCondition =>
    Object.freeze({
      kind: "not" as const,
      condition,
      test: (s: RoundStats) => !condition.test(s),
      describe: () => `not (${condition.describe()})`,
      why: (s: RoundStats) => condition.why(s),
    }),
  custom: (
    description: string,
    fn: (stats: RoundStats) => boolean,
  ): CustomCondition =>
    Object.freeze({
      kind: "custom" as const,
      description,
      fn,
      test: (s: RoundStats) => fn(s) === true,
      describe: () => description,
      why: (
        s: RoundStats,
      ) => (fn(s) === true ? description : `not: ${description}`),
    }),
});
