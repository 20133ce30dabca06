/**
 * explain(): a compiled plan (or a policy) in words, for people deciding
 * whether it does what they meant.
 *
 * @module
 */

import {
  type CodecSpec,
  DEFAULT_DEADLINES,
  type Plan,
  type RoundStats,
} from "../engine/plan.ts";
import { _planInfo } from "./_plan_info.ts";
import { compile } from "./compile.ts";
import type { Policy } from "./policy.ts";
import type {
  Condition,
  DowntimeRampCondition,
  PerGiBCondition,
} from "./conditions.ts";
import { roundStats } from "./stats.ts";
import { formatBytes, formatDuration, formatRate } from "./units.ts";

/** The round explain() shows as a typical later round. */
const LATER_ROUND = 5;

function _chainText(chain: readonly CodecSpec[]): string {
  return chain.map((c) =>
    c.options && Object.keys(c.options).length > 0
      ? `${c.name} ${JSON.stringify(c.options)}`
      : c.name
  ).join(" → ");
}

/** Round 0 (every page, nothing measured) and a typical later round, for a plan's bandwidth. */
function _samples(plan: Plan): [RoundStats, RoundStats] {
  const memoryBytes = 4 * 1024 ** 3;
  const sendRate = plan.bandwidth ?? 1e9 / 8;
  const first = roundStats({ memoryBytes });
  const later = roundStats({
    round: LATER_ROUND,
    memoryBytes,
    remainingBytes: memoryBytes / 20,
    dirtyRate: sendRate / 4,
    sendRate,
    wireRate: sendRate,
    elapsedMs: 60_000,
    bytesSent: memoryBytes * 1.5,
    rawBytesSent: memoryBytes * 1.5,
  });
  return [first, later];
}

function _codecLine(plan: Plan): string {
  const info = _planInfo(plan);
  if (info?.fixedChain) return `${_chainText(info.fixedChain)}, every round`;
  const [first, later] = _samples(plan);
  const a = _chainText(plan.codecsFor(first));
  const b = _chainText(plan.codecsFor(later));
  return a === b
    ? `chosen per round by a function; ${a} in round 0 and in a typical round ${LATER_ROUND}`
    : `chosen per round by a function; round 0: ${a}; a typical round ${LATER_ROUND}: ${b}`;
}

/** Conditions that need more than one line to explain, with where they sit. */
interface Notable {
  readonly condition: Condition;
  /** `"abort"` or `"switchover"` when it alone decides that, else `undefined`. */
  readonly acts?: "abort" | "switchover";
}

function _notable(
  c: Condition,
  acts: Notable["acts"],
  out: Notable[],
): Notable[] {
  switch (c.kind) {
    case "any":
      c.conditions.forEach((m) => _notable(m, acts, out));
      break;
    case "all":
      c.conditions.forEach((m) => _notable(m, undefined, out));
      break;
    case "not":
      _notable(c.condition, undefined, out);
      break;
    case "stalled":
    case "downtimeRamp":
    case "elapsedAbovePerGiB":
      out.push({ condition: c, acts });
      break;
  }
  return out;
}

function _uses(c: Condition): boolean {
  return c.kind === "stalled" ||
    (c.kind === "downtimeRamp" && "stalls" in c.options.every);
}

/** A ramp's values step by step: the first three and the last, where there are more. */
function _rampSchedule(c: DowntimeRampCondition): string {
  const { startMs, stepMs, maxMs, every } = c.options;
  const last = Math.ceil((maxMs - startMs) / stepMs);
  const value = (k: number) =>
    formatDuration(Math.min(maxMs, startMs + k * stepMs));
  const at = (k: number): string => {
    if ("rounds" in every) {
      const n = every.rounds;
      const from = k * n;
      if (k === last) return `${value(k)} from round ${from}`;
      return n === 1
        ? `${value(k)} in round ${from}`
        : `${value(k)} in rounds ${from}–${from + n - 1}`;
    }
    if ("stalls" in every) {
      const n = every.stalls;
      if (k === 0) {
        return `${value(k)} until ${
          n === 1 ? "the first stalled round" : `${n} stalled rounds`
        }`;
      }
      return `${value(k)} after ${k * n} stalled round${
        k * n === 1 ? "" : "s"
      }`;
    }
    return k === 0
      ? `${value(k)} for the first ${formatDuration(every.ms)}`
      : `${value(k)} from ${formatDuration(k * every.ms)}`;
  };
  const ks = last <= 4 ? [...Array(last + 1).keys()] : [0, 1, 2, last];
  // The first three steps, then "…" and the last one.
  return ks.map((k, i) => (i === 3 && last > 4 ? "…, " : "") + at(k))
    .join(", ");
}

function _budget(c: PerGiBCondition, acts: Notable["acts"]): string {
  const sizes = [1, 4, 16].map((g) =>
    `${formatDuration(c.msPerGiB * g)} for ${g} GiB`
  );
  const then = acts === "abort"
    ? "then abort"
    : acts === "switchover"
    ? "then switch over (forced completion)"
    : "as part of a larger condition";
  return `${formatDuration(c.msPerGiB)} per GiB of memory: ${
    sizes.join(", ")
  }; ${then}`;
}

/**
 * The plan in words, one fact per line: codecs per round, when it switches
 * over, when it aborts, the round limit, bandwidth, frame batch and GPU. A
 * policy is compiled first (and so checked). A codec function is evaluated
 * on round 0 and on a typical later round.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { explain, policy, when } from "@hakobu/hakobu";
 *
 * const text = explain(policy("p").switchover(when.rounds(30)));
 * assert.match(text, /^Policy "p"\n/);
 * assert.match(text, /codecs: +zero → raw, every round/);
 * assert.match(text, /switchover: when 30 rounds have finished/);
 * assert.match(text, /rounds: +at most 64 \(maxRounds\), then switchover/);
 * ```
 *
 * @throws {PolicyError} when the policy does not compile.
 */
export function explain(source: Policy | Plan): string {
  const plan = compile(source);
  const info = _planInfo(plan);
  const lines = [`Policy "${plan.name}"`];
  const row = (label: string, text: string) =>
    lines.push(`  ${(label + ":").padEnd(12)}${text}`);
  row("codecs", _codecLine(plan));
  if (info?.switchover) {
    row("switchover", `when ${info.switchover.describe()}`);
    row("rounds", `at most ${plan.maxRounds} (maxRounds), then switchover`);
  } else {
    const who = info?.source === "plan"
      ? "the plan's decide function"
      : "the policy's decide function";
    row("switchover", `decided after each round by ${who}`);
    row("rounds", `at most ${plan.maxRounds} (maxRounds), whatever it decides`);
  }
  if (info?.abortIf) row("abort", `when ${info.abortIf.describe()}`);
  else if (info?.lowLevel) row("abort", "decided by the decide function");
  else row("abort", "never (no abort condition)");
  const notable = [
    ...(info?.switchover ? _notable(info.switchover, "switchover", []) : []),
    ...(info?.abortIf ? _notable(info.abortIf, "abort", []) : []),
  ];
  if (notable.some((n) => _uses(n.condition))) {
    row(
      "stalls",
      "a round stalls when its remaining bytes are not below those of the last round that shrank them (less minProgress of them, where set); counted from RoundStats.history, which the backend must fill in",
    );
  }
  for (const { condition: c, acts } of notable) {
    if (c.kind === "downtimeRamp") row("ramp", _rampSchedule(c));
    if (c.kind === "elapsedAbovePerGiB") row("budget", _budget(c, acts));
  }
  row(
    "bandwidth",
    plan.bandwidth === null
      ? "unlimited (unpaced)"
      : `${formatRate(plan.bandwidth)} (${formatBytes(plan.bandwidth)}/s)`,
  );
  row("batch", `${plan.batchPages} non-zero pages per batch (BATCH frame)`);
  row(
    "channels",
    plan.channels === undefined ? "one per core (default)" : `${plan.channels}`,
  );
  const deadlines = plan.deadlines ?? DEFAULT_DEADLINES;
  row(
    "deadlines",
    `${deadlines.replyMs} ms per receiver answer or write; downtime ${
      deadlines.downtimeMs === null
        ? "not bounded"
        : `at most ${deadlines.downtimeMs} ms, else the VM resumes on the source`
    }`,
  );
  row(
    "resume",
    plan.resume
      ? `a link lost during pre-copy is resumed: up to ${plan.resume.attempts} reconnection${
        plan.resume.attempts === 1 ? "" : "s"
      } within ${plan.resume.graceMs} ms, the VM running meanwhile`
      : "no: a lost link fails the migration (the VM runs on at the source)",
  );
  const gpu = plan.gpu;
  const device = gpu.prefer === "cpu"
    ? "CPU only"
    : gpu.prefer === "gpu"
    ? "prefers the GPU"
    : "GPU when one is present";
  const fallback = gpu.prefer === "cpu"
    ? ""
    : gpu.require
    ? ", fails without one"
    : ", else CPU";
  // No codec has a GPU twin yet (issue 4): say so rather than promise one.
  row(
    "gpu",
    `${device}${fallback}; ${gpu.batch} pages per dispatch (no GPU codec yet: all codecs run on the CPU)`,
  );
  return lines.join("\n");
}

/**
 * Why a plan would answer as it does for these stats, in words (the plan's
 * `reason`, or the bare answer when a hand-written plan has none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   compile,
 *   explainDecision,
 *   MiB,
 *   policy,
 *   roundStats,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * const plan = compile(policy("p").switchover(when.remainingBelow(MiB(64))));
 * assert.equal(
 *   explainDecision(plan, roundStats({ round: 3, remainingBytes: MiB(10) })),
 *   "switchover: remaining 10.00 MiB is below 64.00 MiB",
 * );
 * ```
 */
export function explainDecision(plan: Plan, stats: RoundStats): string {
  const answer = plan.decide(stats);
  return plan.reason
    ? plan.reason(stats)
    : `${answer} after round ${stats.round}`;
}
