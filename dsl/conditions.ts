/**
 * Switchover and abort conditions as data, each able to test itself on a
 * {@link RoundStats}, describe itself, and say with measured values why it
 * holds or not (the reason shown in reports).
 *
 * A condition is checked after each round with the stats of the round just
 * finished (see {@link RoundStats}). Conditions keep no state between calls:
 * those that look back (`when.stalled`, a downtime ramp counted in stalls)
 * read the earlier rounds from `RoundStats.history`, so one plan serves
 * several migrations at once.
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

/** What {@link ConditionBuilders.stalled} takes: how long remaining bytes must fail to shrink. */
export interface StallOptions {
  /** Rounds without progress (a whole number, at least 1). */
  readonly rounds?: number;
  /** Milliseconds without progress. With `rounds` too, either one is enough. */
  readonly forMs?: number;
  /**
   * Fraction (0 to under 1, default 0) by which remaining bytes must shrink
   * below their value at the last round that made progress for a round to
   * count as progress: `0.1` calls a round that shrinks them by under 10%
   * a stall.
   */
  readonly minProgress?: number;
}

/** Remaining bytes have not shrunk for a number of rounds or a time; see {@link ConditionBuilders.stalled}. */
export interface StallCondition extends ConditionMethods {
  /** Always `"stalled"`. */
  readonly kind: "stalled";
  /** The options as given (checked by compile()). */
  readonly options: StallOptions;
}

/** When a {@link DowntimeRampOptions} ramp takes a step. */
export type RampEvery =
  /** A step every `rounds` rounds: `startMs` in rounds 0 to `rounds - 1`. */
  | { readonly rounds: number }
  /**
   * A step per `stalls` stalled rounds (rounds that did not shrink the
   * remaining bytes, as in {@link StallOptions}; needs `RoundStats.history`).
   */
  | { readonly stalls: number; readonly minProgress?: number }
  /** A step every `ms` milliseconds since the migration started. */
  | { readonly ms: number };

/** What {@link ConditionBuilders.downtimeRamp} takes. */
export interface DowntimeRampOptions {
  /** Downtime allowed at first, in milliseconds. */
  readonly startMs: number;
  /** Downtime added at each step, in milliseconds. */
  readonly stepMs: number;
  /** Most downtime ever allowed, in milliseconds (above `startMs`). */
  readonly maxMs: number;
  /** When a step is taken. */
  readonly every: RampEvery;
}

/** Estimated downtime is at most what a ramp allows now; see {@link ConditionBuilders.downtimeRamp}. */
export interface DowntimeRampCondition extends ConditionMethods {
  /** Always `"downtimeRamp"`. */
  readonly kind: "downtimeRamp";
  /** The options as given (checked by compile()). */
  readonly options: DowntimeRampOptions;
  /** The downtime the ramp allows for these stats, in milliseconds. */
  allowedMs(stats: RoundStats): number;
}

/** More time has passed than a budget per GiB of memory; see {@link ConditionBuilders.elapsedAbovePerGiB}. */
export interface PerGiBCondition extends ConditionMethods {
  /** Always `"elapsedAbovePerGiB"`. */
  readonly kind: "elapsedAbovePerGiB";
  /** Milliseconds of budget per GiB of the VM's memory. */
  readonly msPerGiB: number;
  /** The budget for these stats (`msPerGiB` × memory in GiB), in milliseconds. */
  limitMs(stats: RoundStats): number;
}

/** A switchover or abort condition; build one with {@link when}. */
export type Condition =
  | BoundCondition
  | RateCondition
  | RoundsCondition
  | GroupCondition
  | NotCondition
  | CustomCondition
  | StallCondition
  | DowntimeRampCondition
  | PerGiBCondition;

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

const GIB = 1024 ** 3;

function _percent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(2))}%`;
}

function _plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** A field of the stats that `what` reads, as a finite number, or a PolicyError naming it. */
function _field(
  stats: RoundStats,
  field: "round" | "remainingBytes" | "elapsedMs" | "memoryBytes",
  what: string,
  needs: string,
): number {
  const v = stats[field];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new PolicyError(
      field,
      `Cannot test "${what}" in round ${
        String(stats.round)
      }: RoundStats.${field} is "${String(v)}": expected ${needs}`,
    );
  }
  return v;
}

/** Where a migration stands in making progress, from its stats and history. */
interface Progress {
  /** Round of the last decision point that shrank the remaining bytes (this one's when it did). */
  readonly round: number;
  /** Remaining bytes then: the mark later points must get below. */
  readonly mark: number;
  /** What the remaining bytes must get below to count as progress now. */
  readonly target: number;
  /** Rounds since that point (0 when this one made progress). */
  readonly rounds: number;
  /** Milliseconds since that point. */
  readonly ms: number;
  /** Distinct rounds so far, this one included, that made no progress. */
  readonly stalls: number;
  /** Whether this decision point made progress. */
  readonly now: boolean;
  /** Whether this is the migration's first decision point. */
  readonly first: boolean;
}

/**
 * Progress of the migration up to `stats`: a decision point makes progress
 * when its remaining bytes are below `(1 - minProgress)` times those of the
 * last point that made progress (the first point always does). Derived from
 * `stats.history` alone, so one plan serves concurrent migrations.
 */
function _progress(
  stats: RoundStats,
  minProgress: number,
  what: string,
): Progress {
  const history = stats.history;
  if (history === undefined || history === null) {
    throw new PolicyError(
      "history",
      `Cannot test "${what}" in round ${
        String(stats.round)
      }: RoundStats.history is missing: the backend that called decide keeps no record of the migration's earlier rounds, and this condition compares against them: run it on a backend that fills in history (the native engine does), or use conditions that need none, such as when.rounds or when.elapsedAbove`,
    );
  }
  if (!Array.isArray(history)) {
    throw new PolicyError(
      "history",
      `Cannot test "${what}" in round ${
        String(stats.round)
      }: RoundStats.history is "${
        String(history)
      }": expected an array of the earlier decision points, oldest first`,
    );
  }
  const points = [...history, stats];
  for (const [i, p] of points.entries()) {
    for (const key of ["round", "remainingBytes", "elapsedMs"] as const) {
      const v = (p as Partial<RoundStats> | undefined)?.[key];
      if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
        const at = i < history.length ? `history[${i}].${key}` : key;
        throw new PolicyError(
          "history",
          `Cannot test "${what}" in round ${
            String(stats.round)
          }: RoundStats.${at} is "${
            String(v)
          }": expected a finite number of at least 0`,
        );
      }
    }
  }
  let last = points[0];
  let target = Infinity;
  const stalled = new Set<number>();
  for (const p of points) {
    if (p.remainingBytes < target) {
      last = p;
      target = (1 - minProgress) * p.remainingBytes;
    } else stalled.add(p.round);
  }
  return {
    round: last.round,
    mark: last.remainingBytes,
    target,
    rounds: stats.round - last.round,
    ms: stats.elapsedMs - last.elapsedMs,
    stalls: stalled.size,
    now: last === stats,
    first: history.length === 0,
  };
}

/** `value` when it is an object, else an empty one: builders keep what they were given for compile() to check. */
function _object<T extends object>(value: T): Partial<T> {
  return typeof value === "object" && value !== null ? value : {};
}

/** A frozen copy of `value` when it is an object (so later changes to it change nothing), else `value`. */
function _frozen<T>(value: T): T {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? Object.freeze({ ...value })
    : value;
}

function _stalled(given: StallOptions): StallCondition {
  const options = _frozen(given);
  const { rounds, forMs, minProgress = 0 } = _object(options);
  const limits = [
    ...(rounds === undefined ? [] : [_plural(rounds, "round")]),
    ...(forMs === undefined ? [] : [formatDuration(forMs)]),
  ].join(" or ");
  const description = `remaining bytes have not shrunk${
    minProgress > 0 ? ` by ${_percent(minProgress)}` : ""
  } for ${limits}`;
  const holds = (p: Progress) =>
    (rounds !== undefined && p.rounds >= rounds) ||
    (forMs !== undefined && !p.now && p.ms >= forMs);
  return Object.freeze({
    kind: "stalled" as const,
    options,
    test: (s: RoundStats) => holds(_progress(s, minProgress, description)),
    describe: () => description,
    why: (s: RoundStats) => {
      const p = _progress(s, minProgress, description);
      if (p.first) {
        return `round ${s.round} is the first decision point, nothing to compare with: not stalled`;
      }
      if (p.now) {
        return `remaining ${formatBytes(s.remainingBytes)} shrank${
          minProgress > 0 ? ` by at least ${_percent(minProgress)}` : ""
        } in round ${s.round}: not stalled`;
      }
      return `remaining ${formatBytes(s.remainingBytes)} has not shrunk below ${
        formatBytes(p.target)
      } since round ${p.round} (for ${_plural(p.rounds, "round")}, ${
        formatDuration(p.ms)
      }): ${holds(p) ? "stalled" : `not yet ${limits}`}`;
    },
  });
}

function _rampEveryWords(every: RampEvery): string {
  if ("rounds" in every) {
    return every.rounds === 1 ? "every round" : `every ${every.rounds} rounds`;
  }
  if ("stalls" in every) {
    const mp = every.minProgress ?? 0;
    return `per ${
      every.stalls === 1 ? "stalled round" : `${every.stalls} stalled rounds`
    }${mp > 0 ? ` (shrinking remaining bytes by under ${_percent(mp)})` : ""}`;
  }
  return `every ${formatDuration(every.ms)}`;
}

function _downtimeRamp(given: DowntimeRampOptions): DowntimeRampCondition {
  const copy = _frozen(given);
  const options = copy === given
    ? copy
    : Object.freeze({ ...copy, every: _frozen(copy.every) });
  const { startMs = NaN, stepMs = NaN, maxMs = NaN } = _object(options);
  const every = _object(_object(options).every ?? {}) as RampEvery;
  const description = `estimated downtime at most the ramp ${
    formatDuration(startMs)
  }, +${formatDuration(stepMs)} ${_rampEveryWords(every)}, up to ${
    formatDuration(maxMs)
  }`;
  /** Steps taken by now, and where they were counted, in words. */
  const steps = (s: RoundStats): [number, string] => {
    if ("rounds" in every) {
      const r = _field(s, "round", description, "the round index");
      return [Math.floor(r / every.rounds), `in round ${r}`];
    }
    if ("stalls" in every) {
      const { stalls } = _progress(s, every.minProgress ?? 0, description);
      return [
        Math.floor(stalls / every.stalls),
        `after ${_plural(stalls, "stalled round")}`,
      ];
    }
    const e = _field(
      s,
      "elapsedMs",
      description,
      "the milliseconds since the migration started",
    );
    return [Math.floor(e / every.ms), `after ${formatDuration(e)}`];
  };
  const allowed = (k: number) => Math.min(maxMs, startMs + stepMs * k);
  return Object.freeze({
    kind: "downtimeRamp" as const,
    options,
    allowedMs: (s: RoundStats) => allowed(steps(s)[0]),
    test: (s: RoundStats) => estimatedDowntimeMs(s) <= allowed(steps(s)[0]),
    describe: () => description,
    why: (s: RoundStats) => {
      const [k, where] = steps(s);
      const limit = allowed(k);
      const est = estimatedDowntimeMs(s);
      return `estimated downtime ${BOUNDS.downtimeBelow.fmt(est)} is ${
        est <= limit ? "" : "not "
      }at most ${formatDuration(limit)}, what the ramp allows ${where}`;
    },
  });
}

function _elapsedAbovePerGiB(msPerGiB: number): PerGiBCondition {
  const description = `elapsed time above ${
    formatDuration(msPerGiB)
  } per GiB of memory`;
  const limitMs = (s: RoundStats) =>
    msPerGiB *
    _field(
      s,
      "memoryBytes",
      description,
      "the VM's memory size in bytes, which the time budget scales with",
    ) / GIB;
  const elapsed = (s: RoundStats) =>
    _field(
      s,
      "elapsedMs",
      description,
      "the milliseconds since the migration started",
    );
  return Object.freeze({
    kind: "elapsedAbovePerGiB" as const,
    msPerGiB,
    limitMs,
    test: (s: RoundStats) => elapsed(s) > limitMs(s),
    describe: () => description,
    why: (s: RoundStats) => {
      const e = elapsed(s);
      const limit = limitMs(s);
      return `elapsed time ${formatDuration(e)} is ${
        e > limit ? "" : "not "
      }above ${formatDuration(limit)} (${formatDuration(msPerGiB)} per GiB of ${
        formatBytes(s.memoryBytes)
      })`;
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
  /**
   * Remaining bytes have not shrunk for `rounds` rounds or for `forMs`
   * milliseconds (either is enough; give one or both): stall detection, as
   * oVirt's convergence schedules count stalls. A round makes progress when
   * its remaining bytes fall below those of the last round that made
   * progress (by at least `minProgress` of them, default 0); the first round
   * always does. Reads `RoundStats.history`, nothing else, so one plan
   * serves concurrent migrations; throws a {@link PolicyError} naming
   * `history` when the backend gave none.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, roundSeries, when } from "@hakobu/hakobu";
   *
   * const c = when.stalled({ rounds: 2 });
   * // Remaining after rounds 0 to 3: shrinks once, then stops shrinking.
   * const series = roundSeries([MiB(100), MiB(40), MiB(45), MiB(40)]);
   * assert.deepEqual(series.map((s) => c.test(s)), [false, false, false, true]);
   * assert.equal(c.describe(), "remaining bytes have not shrunk for 2 rounds");
   * ```
   */
  stalled(options: StallOptions): StallCondition;
  /**
   * Estimated downtime (as {@link ConditionBuilders.downtimeBelow}) is at
   * most what a ramp allows now: `startMs` at first, `stepMs` more at each
   * step, never above `maxMs` — oVirt's convergence schedules and KubeVirt's
   * proposals raise the allowed downtime so. A step is taken every
   * `every.rounds` rounds, every `every.ms` milliseconds, or per
   * `every.stalls` stalled rounds (as in {@link ConditionBuilders.stalled};
   * that form reads `RoundStats.history`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MBps, ms, roundStats, when } from "@hakobu/hakobu";
   *
   * const ramp = when.downtimeRamp({
   *   startMs: ms(50),
   *   stepMs: ms(50),
   *   maxMs: ms(500),
   *   every: { rounds: 2 },
   * });
   * assert.equal(ramp.allowedMs(roundStats({ round: 1 })), 50);
   * assert.equal(ramp.allowedMs(roundStats({ round: 4 })), 150);
   * assert.equal(ramp.allowedMs(roundStats({ round: 40 })), 500);
   * // 12 MB left at 100 MB/s: 120 ms, allowed from round 4.
   * const s = { remainingBytes: 12e6, sendRate: MBps(100) };
   * assert.equal(ramp.test(roundStats({ ...s, round: 3 })), false);
   * assert.equal(ramp.test(roundStats({ ...s, round: 4 })), true);
   * ```
   */
  downtimeRamp(options: DowntimeRampOptions): DowntimeRampCondition;
  /**
   * More than `msPerGiB` milliseconds per GiB of the VM's memory have passed
   * since the migration started: a time budget that grows with the VM, as
   * KubeVirt's `completionTimeoutPerGiB` and Nova's completion timeout.
   * In `.abortIf()` it gives up; in `.switchover()` it forces completion.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { GiB, minutes, roundStats, seconds, when } from "@hakobu/hakobu";
   *
   * const c = when.elapsedAbovePerGiB(seconds(150));
   * const vm = { memoryBytes: GiB(4) }; // a budget of 10 minutes
   * assert.equal(c.test(roundStats({ ...vm, elapsedMs: minutes(9) })), false);
   * assert.equal(c.test(roundStats({ ...vm, elapsedMs: minutes(11) })), true);
   * ```
   */
  elapsedAbovePerGiB(msPerGiB: number): PerGiBCondition;
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
  stalled: (options: StallOptions) => _stalled(options),
  downtimeRamp: (options: DowntimeRampOptions) => _downtimeRamp(options),
  elapsedAbovePerGiB: (msPerGiB: number) => _elapsedAbovePerGiB(msPerGiB),
});
