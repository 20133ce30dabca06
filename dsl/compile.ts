/**
 * compile(): checks a policy field by field and turns it into the engine's
 * {@link Plan}. Every failure is a {@link PolicyError} naming the field, the
 * value and the fix.
 *
 * @module
 */

import type {
  CodecSpec,
  Deadlines,
  Decision,
  GpuSettings,
  Plan,
  ResumeSettings,
  RoundStats,
} from "../engine/plan.ts";
import { codecByName, codecNames } from "../engine/codecs/registry.ts";
import { roundLimitReason } from "../engine/steering.ts";
import {
  DEFAULT_DEADLINES,
  MAX_BATCH_PAGES,
  MAX_CHANNELS,
} from "../engine/plan.ts";
import { _planInfo, _setPlanInfo } from "./_plan_info.ts";
import type { CodecChainInput } from "./codec_spec.ts";
import type {
  Condition,
  DowntimeRampOptions,
  StallOptions,
} from "./conditions.ts";
import { PolicyError } from "./errors.ts";
import { _isBranded } from "./_brand.ts";
import type { Policy } from "./policy.ts";
import { formatBytes, formatRate, parseBandwidth } from "./units.ts";

/** Defaults for every field a policy leaves unset. */
export interface PolicyDefaults {
  /** Codec chain: zero pages cost nothing, everything else goes raw. */
  readonly codec: readonly CodecSpec[];
  /** Unpaced link. */
  readonly bandwidth: null;
  /** Pages per wire frame. */
  readonly batchPages: number;
  /** Hard bound on live rounds. */
  readonly maxRounds: number;
  /** GPU settings. */
  readonly gpu: GpuSettings;
}

/**
 * What compile() fills in for unset fields.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { POLICY_DEFAULTS } from "@hakobu/hakobu";
 *
 * assert.equal(POLICY_DEFAULTS.batchPages, 256);
 * assert.equal(POLICY_DEFAULTS.maxRounds, 64);
 * ```
 */
export const POLICY_DEFAULTS: PolicyDefaults = Object.freeze({
  codec: Object.freeze([
    Object.freeze({ name: "zero" }),
    Object.freeze({ name: "raw" }),
  ]),
  bandwidth: null,
  batchPages: 256,
  maxRounds: 64,
  gpu: Object.freeze({ batch: 8192, prefer: "auto" as const, require: false }),
});

/** Upper bound on `gpu.batch` (pages per GPU dispatch). */
const MAX_GPU_BATCH = 1_048_576;
const DECISIONS: readonly string[] = ["continue", "switchover", "abort"];

function _q(values: readonly string[]): string {
  return values.map((v) => `"${v}"`).join(", ");
}

function _show(value: unknown): string {
  if (typeof value === "function") return "a function";
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/** `Invalid policy "name": <problem>, got "<got>": <fix>` */
function _invalid(
  name: string,
  field: string,
  problem: string,
  got: string,
  fix: string,
  cause?: unknown,
): PolicyError {
  return new PolicyError(
    field,
    `Invalid policy "${name}": ${problem}, got "${got}": ${fix}`,
    cause === undefined ? undefined : { cause },
  );
}

function _isCount(n: unknown, min: number, max = Infinity): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= min && n <= max;
}

function _isPositive(n: unknown): n is number {
  return typeof n === "number" && Number.isFinite(n) && n > 0;
}

// ---------------------------------------------------------------- codecs

function _chain(
  name: string,
  input: unknown,
  where: string,
): readonly CodecSpec[] {
  const known = codecNames();
  const items: readonly unknown[] = Array.isArray(input) ? input : [input];
  const chain: CodecSpec[] = [];
  for (const item of items) {
    if (
      typeof item !== "object" || item === null ||
      typeof (item as CodecSpec).name !== "string"
    ) {
      throw _invalid(
        name,
        "codec",
        `${where} must be codec specs`,
        _show(item),
        "use codec.zero(), codec.raw() or codec.named(name)",
      );
    }
    const spec = item as CodecSpec;
    if (!known.includes(spec.name)) {
      throw _invalid(
        name,
        "codec",
        `${where} must name registered codecs`,
        spec.name,
        `use one of ${_q(known)}`,
      );
    }
    const options = spec.options;
    if (
      options !== undefined &&
      (typeof options !== "object" || options === null ||
        Array.isArray(options))
    ) {
      throw _invalid(
        name,
        "codec",
        `${where}: options of codec "${spec.name}" must be an object`,
        _show(options),
        `pass e.g. codec.named("${spec.name}", { ... })`,
      );
    }
    // The codec checks its own options, so a bad one fails here, not after
    // the handshake.
    try {
      codecByName(spec.name).parseOptions(options ?? {});
    } catch (e) {
      throw _invalid(
        name,
        "codec",
        `${where}: options of codec "${spec.name}" are refused: ${
          e instanceof Error ? e.message : String(e)
        }`,
        JSON.stringify(options ?? {}),
        `see docs/codecs/${spec.name}.md for the options "${spec.name}" takes`,
        e,
      );
    }
    const previous = chain[chain.length - 1];
    if (previous?.name === "raw") {
      throw _invalid(
        name,
        "codec",
        `${where}: codec "${spec.name}" after "raw" never runs because raw claims every page`,
        chain.concat(spec).map((c) => c.name).join(" → "),
        "put raw last",
      );
    }
    if (chain.some((c) => c.name === spec.name)) {
      throw _invalid(
        name,
        "codec",
        `${where}: codec "${spec.name}" appears twice, and the second one never claims a page`,
        chain.concat(spec).map((c) => c.name).join(" → "),
        "list each codec once",
      );
    }
    chain.push(
      Object.freeze(
        options === undefined
          ? { name: spec.name }
          : { name: spec.name, options: Object.freeze({ ...options }) },
      ),
    );
  }
  if (chain[chain.length - 1]?.name !== "raw") {
    chain.push(Object.freeze({ name: "raw" }));
  }
  return Object.freeze(chain);
}

function _codecsFor(
  name: string,
  codec: unknown,
): {
  codecsFor: (stats: RoundStats) => readonly CodecSpec[];
  fixed?: readonly CodecSpec[];
} {
  if (codec === undefined) {
    return {
      codecsFor: () => POLICY_DEFAULTS.codec,
      fixed: POLICY_DEFAULTS.codec,
    };
  }
  if (typeof codec !== "function") {
    const fixed = _chain(name, codec, "codec");
    return { codecsFor: () => fixed, fixed };
  }
  const choose = codec as (stats: RoundStats) => CodecChainInput;
  return {
    codecsFor: (stats: RoundStats) => {
      let chosen: CodecChainInput;
      try {
        chosen = choose(stats);
      } catch (e) {
        throw new PolicyError(
          "codec",
          `Codec chooser of policy "${name}" threw in round ${stats.round}: ${
            e instanceof Error ? e.message : String(e)
          }`,
          { cause: e },
        );
      }
      return _chain(name, chosen, `codec chosen for round ${stats.round}`);
    },
  };
}

// ---------------------------------------------------------------- conditions

const BOUND_FIX: Readonly<Record<string, string>> = {
  remainingBelow: "pass e.g. when.remainingBelow(MiB(64))",
  remainingAbove: "pass e.g. when.remainingAbove(GiB(1))",
  bytesSentAbove: "pass e.g. when.bytesSentAbove(GiB(64))",
  elapsedAbove: "pass e.g. when.elapsedAbove(minutes(10))",
  downtimeBelow: "pass e.g. when.downtimeBelow(ms(300))",
  dirtyRateAbove:
    "pass e.g. when.dirtyRateAbove(Mbit(800)) or when.dirtyRateAbove((s) => 0.8 * s.sendRate)",
  dirtyRateBelow: "pass e.g. when.dirtyRateBelow(Mbit(100))",
};

const UNIT: Readonly<Record<string, string>> = {
  remainingBelow: " B",
  remainingAbove: " B",
  bytesSentAbove: " B",
  elapsedAbove: " ms",
  downtimeBelow: " ms",
  dirtyRateAbove: " B/s",
  dirtyRateBelow: " B/s",
};

function _checkCondition(name: string, field: string, c: unknown): void {
  const cond = c as Condition;
  if (
    typeof c !== "object" || c === null || typeof cond.test !== "function" ||
    typeof cond.describe !== "function" || typeof cond.kind !== "string"
  ) {
    throw _invalid(
      name,
      field,
      `${field} must be a condition`,
      _show(c),
      "build one with when.*, e.g. when.rounds(30)",
    );
  }
  switch (cond.kind) {
    case "remainingBelow":
    case "remainingAbove":
    case "bytesSentAbove":
    case "elapsedAbove":
    case "downtimeBelow":
      if (!_isPositive(cond.threshold)) {
        throw _invalid(
          name,
          field,
          `${field} when.${cond.kind} needs a positive ${
            UNIT[cond.kind] === " ms" ? "duration" : "size"
          }`,
          `${String(cond.threshold)}${UNIT[cond.kind]}`,
          BOUND_FIX[cond.kind],
        );
      }
      return;
    case "dirtyRateAbove":
    case "dirtyRateBelow":
      if (
        typeof cond.threshold !== "function" && !_isPositive(cond.threshold)
      ) {
        throw _invalid(
          name,
          field,
          `${field} when.${cond.kind} needs a positive rate or a function of the stats`,
          `${String(cond.threshold)} B/s`,
          BOUND_FIX[cond.kind],
        );
      }
      return;
    case "rounds":
      if (!_isCount(cond.count, 1)) {
        throw _invalid(
          name,
          field,
          `${field} when.rounds needs a whole number of rounds of at least 1`,
          String(cond.count),
          "pass e.g. when.rounds(30)",
        );
      }
      return;
    case "any":
    case "all":
      if (!Array.isArray(cond.conditions) || cond.conditions.length === 0) {
        throw _invalid(
          name,
          field,
          `${field} when.${cond.kind}() needs at least one condition`,
          `when.${cond.kind}()`,
          `pass e.g. when.${cond.kind}(when.remainingBelow(MiB(64)), when.rounds(30))`,
        );
      }
      for (const member of cond.conditions) {
        _checkCondition(name, field, member);
      }
      return;
    case "not":
      _checkCondition(name, field, cond.condition);
      return;
    case "custom":
      if (
        typeof cond.description !== "string" || cond.description.trim() === ""
      ) {
        throw _invalid(
          name,
          field,
          `${field} when.custom needs a description`,
          String(cond.description),
          'pass e.g. when.custom("half the memory sent", (s) => ...)',
        );
      }
      if (typeof cond.fn !== "function") {
        throw _invalid(
          name,
          field,
          `${field} when.custom needs a function`,
          _show(cond.fn),
          "pass e.g. (s) => s.round > 3",
        );
      }
      return;
    case "stalled":
      _checkStall(name, field, cond.options);
      return;
    case "downtimeRamp":
      _checkRamp(name, field, cond.options);
      return;
    case "elapsedAbovePerGiB":
      if (!_isPositive(cond.msPerGiB)) {
        throw _invalid(
          name,
          field,
          `${field} when.elapsedAbovePerGiB needs a positive duration per GiB`,
          `${String(cond.msPerGiB)} ms`,
          "pass e.g. when.elapsedAbovePerGiB(seconds(150))",
        );
      }
      return;
    default:
      throw _invalid(
        name,
        field,
        `${field} has an unknown condition kind`,
        String((cond as { kind: unknown }).kind),
        "build conditions with when.*",
      );
  }
}

/** Throws unless `options` is an object with only `known` keys. */
function _checkKeys(
  name: string,
  field: string,
  what: string,
  options: unknown,
  known: readonly string[],
  example: string,
): void {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw _invalid(
      name,
      field,
      `${field} ${what} needs an options object`,
      _show(options),
      `pass e.g. ${example}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw _invalid(
        name,
        field,
        `${field} ${what} has no option "${key}": it takes ${known.join(", ")}`,
        _show(options),
        `pass e.g. ${example}`,
      );
    }
  }
}

function _checkMinProgress(
  name: string,
  field: string,
  what: string,
  v: unknown,
  example: string,
): void {
  if (
    v !== undefined &&
    (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v >= 1)
  ) {
    throw _invalid(
      name,
      field,
      `${field} ${what} minProgress must be a fraction from 0 to under 1 (0.1: shrinking by under 10% is a stall)`,
      _show(v),
      `pass e.g. ${example}`,
    );
  }
}

const STALL_EXAMPLE =
  "when.stalled({ rounds: 3 }) or when.stalled({ forMs: seconds(30) })";

function _checkStall(name: string, field: string, options: unknown): void {
  const what = "when.stalled";
  _checkKeys(
    name,
    field,
    what,
    options,
    ["rounds", "forMs", "minProgress"],
    STALL_EXAMPLE,
  );
  const o = options as StallOptions;
  if (o.rounds === undefined && o.forMs === undefined) {
    throw _invalid(
      name,
      field,
      `${field} ${what} needs rounds, forMs or both: how long remaining bytes must fail to shrink`,
      _show(options),
      `pass e.g. ${STALL_EXAMPLE}`,
    );
  }
  if (o.rounds !== undefined && !_isCount(o.rounds, 1)) {
    throw _invalid(
      name,
      field,
      `${field} ${what} rounds must be a whole number of at least 1`,
      _show(o.rounds),
      "pass e.g. when.stalled({ rounds: 3 })",
    );
  }
  if (o.forMs !== undefined && !_isPositive(o.forMs)) {
    throw _invalid(
      name,
      field,
      `${field} ${what} forMs must be a positive duration`,
      `${_show(o.forMs)} ms`,
      "pass e.g. when.stalled({ forMs: seconds(30) })",
    );
  }
  _checkMinProgress(
    name,
    field,
    what,
    o.minProgress,
    "when.stalled({ rounds: 3, minProgress: 0.1 })",
  );
}

const RAMP_EXAMPLE =
  "when.downtimeRamp({ startMs: ms(50), stepMs: ms(50), maxMs: ms(500), every: { rounds: 2 } })";

function _checkRamp(name: string, field: string, options: unknown): void {
  const what = "when.downtimeRamp";
  _checkKeys(
    name,
    field,
    what,
    options,
    ["startMs", "stepMs", "maxMs", "every"],
    RAMP_EXAMPLE,
  );
  const o = options as DowntimeRampOptions;
  for (const key of ["startMs", "stepMs", "maxMs"] as const) {
    if (!_isPositive(o[key])) {
      throw _invalid(
        name,
        field,
        `${field} ${what} ${key} must be a positive duration${
          key === "stepMs" ? " (a ramp only rises)" : ""
        }`,
        `${_show(o[key])} ms`,
        `pass e.g. ${RAMP_EXAMPLE}`,
      );
    }
  }
  if (o.maxMs <= o.startMs) {
    throw _invalid(
      name,
      field,
      `${field} ${what} maxMs must be above startMs, else the ramp never rises`,
      `startMs ${o.startMs}, maxMs ${o.maxMs}`,
      `raise maxMs, or use when.downtimeBelow(ms(${o.startMs})) for a fixed bound`,
    );
  }
  const every = o.every as Record<string, unknown> | undefined;
  const everyExample =
    "every: { rounds: 2 }, every: { stalls: 1 } or every: { ms: seconds(10) }";
  _checkKeys(
    name,
    field,
    `${what} every`,
    every,
    ["rounds", "stalls", "minProgress", "ms"],
    everyExample,
  );
  const by = ["rounds", "stalls", "ms"].filter((k) =>
    (every as Record<string, unknown>)[k] !== undefined
  );
  if (by.length !== 1) {
    throw _invalid(
      name,
      field,
      `${field} ${what} every needs exactly one of rounds, stalls or ms`,
      _show(every),
      `pass e.g. ${everyExample}`,
    );
  }
  const e = every as Record<string, unknown>;
  if (by[0] === "ms") {
    if (!_isPositive(e.ms)) {
      throw _invalid(
        name,
        field,
        `${field} ${what} every.ms must be a positive duration`,
        `${_show(e.ms)} ms`,
        "pass e.g. every: { ms: seconds(10) }",
      );
    }
  } else if (!_isCount(e[by[0]], 1)) {
    throw _invalid(
      name,
      field,
      `${field} ${what} every.${by[0]} must be a whole number of at least 1`,
      _show(e[by[0]]),
      `pass e.g. every: { ${by[0]}: 2 }`,
    );
  }
  if (e.minProgress !== undefined && by[0] !== "stalls") {
    throw _invalid(
      name,
      field,
      `${field} ${what} every.minProgress only applies to every.stalls`,
      _show(every),
      "pass e.g. every: { stalls: 1, minProgress: 0.1 }",
    );
  }
  _checkMinProgress(
    name,
    field,
    `${what} every`,
    e.minProgress,
    "every: { stalls: 1, minProgress: 0.1 }",
  );
}

/** Why a condition can never hold, or undefined when it can (as far as bounds tell). */
function _impossible(c: Condition): string | undefined {
  if (c.kind === "any") {
    const reasons = c.conditions.map(_impossible);
    return reasons.every((r) => r !== undefined) ? reasons[0] : undefined;
  }
  if (c.kind !== "all") return undefined;
  const leaves: Condition[] = [];
  const flatten = (x: Condition): void => {
    if (x.kind === "all") x.conditions.forEach(flatten);
    else leaves.push(x);
  };
  flatten(c);
  for (const leaf of leaves) {
    const inner = _impossible(leaf);
    if (inner) return inner;
  }
  const pairs = [
    {
      measure: "remaining",
      above: "remainingAbove",
      below: "remainingBelow",
      fmt: formatBytes,
    },
    {
      measure: "dirty rate",
      above: "dirtyRateAbove",
      below: "dirtyRateBelow",
      fmt: formatRate,
    },
  ];
  for (const p of pairs) {
    const bounds = (kind: string): number[] =>
      leaves.flatMap((l) =>
        l.kind === kind && "threshold" in l && typeof l.threshold === "number"
          ? [l.threshold]
          : []
      );
    const lows = bounds(p.above);
    const highs = bounds(p.below);
    if (lows.length === 0 || highs.length === 0) continue;
    const low = Math.max(...lows);
    const high = Math.min(...highs);
    if (low >= high) {
      return `${p.measure} would have to be above ${p.fmt(low)} and below ${
        p.fmt(high)
      } at once`;
    }
  }
  return undefined;
}

/** Rounds that must finish before the condition can hold. */
function _minRounds(c: Condition): number {
  switch (c.kind) {
    case "rounds":
      return c.count;
    case "all":
      return Math.max(0, ...c.conditions.map(_minRounds));
    case "any":
      return Math.min(...c.conditions.map(_minRounds));
    case "stalled":
      // Stalled for n rounds first holds in round n (the (n + 1)th); for a
      // time, in round 1 at the earliest.
      return c.options.forMs !== undefined ? 2 : (c.options.rounds ?? 0) + 1;
    default:
      return 0;
  }
}

// ---------------------------------------------------------------- settings

function _bandwidth(name: string, rate: unknown): number | null {
  if (rate === undefined || rate === null) return null;
  if (typeof rate === "string") {
    try {
      return parseBandwidth(rate);
    } catch (e) {
      throw _invalid(
        name,
        "bandwidth",
        'bandwidth must be a rate such as "1Gbit", "125MB/s" or "unlimited"',
        rate,
        'pass e.g. Gbit(1), "100Mbit" or null for an unpaced link',
        e,
      );
    }
  }
  if (!_isPositive(rate)) {
    throw _invalid(
      name,
      "bandwidth",
      "bandwidth must be positive",
      typeof rate === "number" ? `${rate} B/s` : _show(rate),
      "pass e.g. Gbit(1), or null for an unpaced link",
    );
  }
  return rate;
}

function _gpu(name: string, gpu: unknown): GpuSettings {
  const g = {
    ...POLICY_DEFAULTS.gpu,
    ...(gpu as Partial<GpuSettings> | undefined),
  };
  if (!_isCount(g.batch, 1, MAX_GPU_BATCH)) {
    throw _invalid(
      name,
      "gpu.batch",
      `gpu.batch must be a whole number of pages from 1 to ${MAX_GPU_BATCH}`,
      String(g.batch),
      "pass e.g. .gpu({ batch: 8192 })",
    );
  }
  if (!["gpu", "cpu", "auto"].includes(g.prefer)) {
    throw _invalid(
      name,
      "gpu.prefer",
      'gpu.prefer must be "gpu", "cpu" or "auto"',
      String(g.prefer),
      'pass e.g. .gpu({ prefer: "auto" })',
    );
  }
  if (typeof g.require !== "boolean") {
    throw _invalid(
      name,
      "gpu.require",
      "gpu.require must be true or false",
      _show(g.require),
      ".gpu({ require: true }) fails when no GPU is present",
    );
  }
  if (g.require && g.prefer === "cpu") {
    throw _invalid(
      name,
      "gpu.require",
      'gpu.require cannot be true when gpu.prefer is "cpu"',
      "require: true, prefer: cpu",
      'drop require, or use prefer: "gpu"',
    );
  }
  return Object.freeze({
    batch: g.batch,
    prefer: g.prefer,
    require: g.require,
  });
}

function _channels(name: string, n: unknown): number | undefined {
  if (n === undefined) return undefined;
  if (!_isCount(n, 1, MAX_CHANNELS)) {
    throw _invalid(
      name,
      "channels",
      `channels must be a whole number from 1 to ${MAX_CHANNELS}`,
      _show(n),
      "pass e.g. .channels(4), or leave it out for one channel per core",
    );
  }
  return n;
}

/** Longest deadline a plan may set: a day (setTimeout's limit is 24.8 days). */
const MAX_DEADLINE_MS = 86_400_000;

function _deadlines(name: string, d: unknown): Deadlines {
  if (d === undefined) return DEFAULT_DEADLINES;
  if (typeof d !== "object" || d === null) {
    throw _invalid(
      name,
      "deadlines",
      "deadlines must be an object with reply and/or downtime in milliseconds",
      _show(d),
      "pass e.g. .deadlines({ downtime: ms(500) })",
    );
  }
  const given = d as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== "reply" && key !== "downtime") {
      throw _invalid(
        name,
        "deadlines",
        `deadlines has no field "${key}": it takes reply and downtime`,
        _show(d),
        "pass e.g. .deadlines({ reply: seconds(30), downtime: ms(500) })",
      );
    }
  }
  const { reply, downtime } = given;
  const check = (field: string, v: unknown) => {
    if (!_isCount(v, 1, MAX_DEADLINE_MS)) {
      throw _invalid(
        name,
        `deadlines.${field}`,
        `deadlines.${field} must be a whole number of milliseconds from 1 to ${MAX_DEADLINE_MS} (a day)`,
        _show(v),
        `pass e.g. .deadlines({ ${field}: ms(500) })`,
      );
    }
  };
  if (reply !== undefined) check("reply", reply);
  if (downtime !== undefined) check("downtime", downtime);
  return Object.freeze({
    replyMs: (reply as number | undefined) ?? DEFAULT_DEADLINES.replyMs,
    downtimeMs: (downtime as number | null | undefined) ?? null,
  });
}

/** Most reconnections a plan may try per lost link. */
const MAX_RESUME_ATTEMPTS = 100;

function _resume(name: string, r: unknown): ResumeSettings | undefined {
  if (r === undefined) return undefined;
  const example = ".resume({ grace: seconds(30), attempts: 3 })";
  if (typeof r !== "object" || r === null) {
    throw _invalid(
      name,
      "resume",
      "resume must be an object with grace (milliseconds) and attempts",
      _show(r),
      `pass e.g. ${example}`,
    );
  }
  const given = r as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== "grace" && key !== "attempts") {
      throw _invalid(
        name,
        "resume",
        `resume has no field "${key}": it takes grace and attempts`,
        _show(r),
        `pass e.g. ${example}`,
      );
    }
  }
  if (!_isCount(given.grace, 1, MAX_DEADLINE_MS)) {
    throw _invalid(
      name,
      "resume.grace",
      `resume.grace must be a whole number of milliseconds from 1 to ${MAX_DEADLINE_MS} (a day)`,
      _show(given.grace),
      `pass e.g. ${example}`,
    );
  }
  const attempts = given.attempts ?? 3;
  if (!_isCount(attempts, 1, MAX_RESUME_ATTEMPTS)) {
    throw _invalid(
      name,
      "resume.attempts",
      `resume.attempts must be a whole number from 1 to ${MAX_RESUME_ATTEMPTS}`,
      _show(attempts),
      `pass e.g. ${example}`,
    );
  }
  return Object.freeze({ graceMs: given.grace, attempts });
}

/** A plan's resume settings in the policy's words, to be checked the same way. */
function _resumeAsInput(r: ResumeSettings | undefined): unknown {
  if (typeof r !== "object" || r === null) return r;
  return { grace: r.graceMs, attempts: r.attempts };
}

/** A plan's deadlines in the policy's words, to be checked the same way. */
function _asInput(d: Deadlines | undefined): unknown {
  if (typeof d !== "object" || d === null) return d;
  return {
    reply: d.replyMs,
    ...(d.downtimeMs === null ? {} : { downtime: d.downtimeMs }),
  };
}

function _batchPages(name: string, pages: unknown): number {
  if (pages === undefined) return POLICY_DEFAULTS.batchPages;
  if (!_isCount(pages, 1, MAX_BATCH_PAGES)) {
    throw _invalid(
      name,
      "batchPages",
      `batchPages must be a whole number from 1 to ${MAX_BATCH_PAGES}`,
      _show(pages),
      "pass e.g. .batchPages(256)",
    );
  }
  return pages;
}

function _maxRounds(name: string, rounds: unknown): number {
  if (rounds === undefined) return POLICY_DEFAULTS.maxRounds;
  if (!_isCount(rounds, 1)) {
    throw _invalid(
      name,
      "maxRounds",
      "maxRounds must be a whole number of at least 1",
      _show(rounds),
      "pass e.g. .maxRounds(64)",
    );
  }
  return rounds;
}

function _name(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw _invalid(
      String(name ?? ""),
      "name",
      "name must not be empty",
      _show(name ?? ""),
      'pass e.g. policy("fast")',
    );
  }
  return name;
}

// ---------------------------------------------------------------- decide

function _checkDecision(
  name: string,
  answer: unknown,
  round: number,
): Decision {
  if (typeof answer !== "string" || !DECISIONS.includes(answer)) {
    throw _invalid(
      name,
      "decide",
      `decide must return "continue", "switchover" or "abort" (round ${round})`,
      _show(answer),
      "return one of those three strings",
    );
  }
  return answer as Decision;
}

function _evaluate(
  name: string,
  field: string,
  c: Condition,
  stats: RoundStats,
): boolean {
  try {
    return c.test(stats);
  } catch (e) {
    throw new PolicyError(
      field,
      `Invalid policy "${name}": ${field} condition failed in round ${stats.round}: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
}

function _fromPolicy(p: Policy): Plan {
  const spec = p.spec;
  const name = _name(spec.name);
  if (
    spec.decide !== undefined &&
    (spec.switchover !== undefined || spec.abortIf !== undefined)
  ) {
    throw _invalid(
      name,
      "decide",
      "decide cannot be combined with switchover or abortIf",
      spec.switchover !== undefined
        ? "decide and switchover"
        : "decide and abortIf",
      "use .decide() alone, or .switchover() and .abortIf() without it",
    );
  }
  if (spec.decide !== undefined && typeof spec.decide !== "function") {
    throw _invalid(
      name,
      "decide",
      "decide must be a function of the round's stats",
      _show(spec.decide),
      'pass e.g. (s) => s.round >= 5 ? "switchover" : "continue"',
    );
  }
  if (spec.decide === undefined && spec.switchover === undefined) {
    throw _invalid(
      name,
      "switchover",
      "a switchover condition is required",
      "none",
      "add .switchover(when.rounds(30)), or .decide((s) => ...)",
    );
  }
  for (
    const [field, c] of [["switchover", spec.switchover], [
      "abortIf",
      spec.abortIf,
    ]] as const
  ) {
    if (c === undefined) continue;
    _checkCondition(name, field, c);
    const never = _impossible(c);
    if (never) {
      throw _invalid(
        name,
        field,
        `${field} can never fire: ${never}`,
        c.describe(),
        "loosen one of the bounds",
      );
    }
  }
  const maxRounds = _maxRounds(name, spec.maxRounds);
  for (
    const [field, c] of [["switchover", spec.switchover], [
      "abortIf",
      spec.abortIf,
    ]] as const
  ) {
    if (c === undefined) continue;
    const needed = _minRounds(c);
    if (needed > maxRounds) {
      throw _invalid(
        name,
        "maxRounds",
        `maxRounds ${maxRounds} ends the migration before ${field} "${c.describe()}" can fire`,
        String(maxRounds),
        `raise it with .maxRounds(${needed}) or ask for fewer rounds in ${field}`,
      );
    }
  }
  const { codecsFor, fixed } = _codecsFor(name, spec.codec);
  const bandwidth = _bandwidth(name, spec.bandwidth);
  const batchPages = _batchPages(name, spec.batchPages);
  const channels = _channels(name, spec.channels);
  const deadlines = _deadlines(name, spec.deadlines);
  const resume = _resume(name, spec.resume);
  const gpu = _gpu(name, spec.gpu);

  let explainDecision: (stats: RoundStats) => [Decision, string];
  if (spec.decide !== undefined) {
    const userDecide = spec.decide;
    explainDecision = (s) => {
      const answer = _checkDecision(name, userDecide(s), s.round);
      return [
        answer,
        `${answer}: the policy's decide function answered "${answer}" after round ${s.round}`,
      ];
    };
  } else {
    const switchover = spec.switchover as Condition;
    const abortIf = spec.abortIf;
    explainDecision = (s) => {
      if (abortIf && _evaluate(name, "abortIf", abortIf, s)) {
        return ["abort", `abort: ${abortIf.why(s)}`];
      }
      if (_evaluate(name, "switchover", switchover, s)) {
        return ["switchover", `switchover: ${switchover.why(s)}`];
      }
      const limit = roundLimitReason(maxRounds, s.round + 1);
      if (limit !== null) return ["switchover", limit];
      return ["continue", `continue: ${switchover.why(s)}`];
    };
  }
  let last: { stats: RoundStats; reason: string } | undefined;
  const decide = (s: RoundStats): Decision => {
    const [answer, reason] = explainDecision(s);
    last = { stats: s, reason };
    return answer;
  };
  const reason = (s: RoundStats): string => {
    if (last?.stats === s) return last.reason;
    if (spec.decide !== undefined) {
      return `decided by the policy's decide function (round ${s.round} not decided yet)`;
    }
    return explainDecision(s)[1];
  };

  const plan: Plan = Object.freeze({
    name,
    codecsFor,
    decide,
    reason,
    bandwidth,
    batchPages,
    ...(channels === undefined ? {} : { channels }),
    maxRounds,
    deadlines,
    ...(resume === undefined ? {} : { resume }),
    gpu,
  });
  _setPlanInfo(plan, {
    source: "policy",
    fixedChain: fixed,
    switchover: spec.switchover,
    abortIf: spec.abortIf,
    lowLevel: spec.decide !== undefined,
  });
  return plan;
}

function _fromPlan(p: Plan): Plan {
  const name = _name(p.name);
  if (typeof p.codecsFor !== "function") {
    throw _invalid(
      name,
      "codecsFor",
      "codecsFor must be a function of the round's stats",
      _show(p.codecsFor),
      'pass e.g. () => [{ name: "raw" }]',
    );
  }
  if (typeof p.decide !== "function") {
    throw _invalid(
      name,
      "decide",
      "decide must be a function of the round's stats",
      _show(p.decide),
      'pass e.g. (s) => s.round >= 5 ? "switchover" : "continue"',
    );
  }
  const { codecsFor } = _codecsFor(name, p.codecsFor.bind(p));
  const userDecide = p.decide.bind(p);
  const plan: Plan = Object.freeze({
    name,
    codecsFor,
    decide: (s: RoundStats) => _checkDecision(name, userDecide(s), s.round),
    ...(typeof p.reason === "function" ? { reason: p.reason.bind(p) } : {}),
    bandwidth: _bandwidth(name, p.bandwidth),
    batchPages: _batchPages(name, p.batchPages),
    ...(p.channels === undefined
      ? {}
      : { channels: _channels(name, p.channels) }),
    maxRounds: _maxRounds(name, p.maxRounds),
    deadlines: _deadlines(name, _asInput(p.deadlines)),
    ...(p.resume === undefined
      ? {}
      : { resume: _resume(name, _resumeAsInput(p.resume)) }),
    gpu: _gpu(name, p.gpu),
  });
  _setPlanInfo(plan, { source: "plan", lowLevel: true });
  return plan;
}

/**
 * Checks a policy and compiles it into the engine's {@link Plan}. A plan
 * (e.g. written by hand) is checked the same way and wrapped so that its
 * chains and decisions are checked at run time too; a plan this function
 * made is returned as it is.
 *
 * The compiled plan appends `raw` to every chain that does not end with it,
 * checks chains a codec function returns each round (unknown names throw),
 * answers `abort` when `abortIf` holds, then `switchover` when `switchover`
 * holds or `maxRounds` rounds have finished, and says why in `reason`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { compile, policy, roundStats, when } from "@hakobu/hakobu";
 *
 * const plan = compile(policy("p").switchover(when.rounds(30)));
 * assert.deepEqual(plan.codecsFor(roundStats()), [
 *   { name: "zero" },
 *   { name: "raw" },
 * ]);
 * assert.equal(plan.decide(roundStats({ round: 28 })), "continue");
 * assert.equal(plan.decide(roundStats({ round: 29 })), "switchover");
 * ```
 *
 * @throws {PolicyError} naming the field that failed, the value and the fix.
 */
export function compile(source: Policy | Plan): Plan {
  if (_isBranded(source)) return _fromPolicy(source);
  if (typeof source === "object" && source !== null) {
    if (_planInfo(source)) return source;
    return _fromPlan(source);
  }
  throw new PolicyError(
    "policy",
    `Cannot compile "${
      _show(source)
    }": expected a policy or a plan: build one with policy("name")`,
  );
}
