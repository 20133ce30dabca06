/**
 * Round reports: the one place where a backend's counters over a round and
 * its `Steering` decision become a {@link RoundReport}. A backend
 * measures what a round sent ({@link RoundTraffic}); the rates, the pages
 * left and the decision come from the step `Steering.decide` answered
 * at the round's end, so the report shows what the plan saw.
 *
 * @module
 */

import type { Decision, RoundStats } from "./plan.ts";
import type { ChannelRoundReport, RoundReport } from "./report.ts";

/** What one round sent, as a backend counted it. */
export interface RoundTraffic {
  /** Pages dirty when the round started: what it set out to send (round 0: all pages). */
  readonly dirtyPages: number;
  /** Pages sent in the round. */
  readonly pagesSent: number;
  /** Page bytes before encoding. */
  readonly rawBytes: number;
  /** Bytes on the wire. */
  readonly wireBytes: number;
  /** Pages per codec name. */
  readonly codecMix: Readonly<Record<string, number>>;
  /** The active codec chain. */
  readonly codecs: readonly string[];
  /** Wall time of the round in milliseconds. */
  readonly durationMs: number;
  /** Each channel's share of the round, in channel order, where the backend has channels. */
  readonly channels?: readonly ChannelRoundReport[];
}

/**
 * The decision a live round ended with: a `SteeringStep`, or the same
 * fields from a backend that reconstructs its decisions afterwards (Xen's
 * libxc calls the policy itself). `stats.dirtyPages` is what the next round
 * would send; the rates are the round's.
 */
export interface RoundDecision {
  /** The statistics at the round's end (the round index, its rates, the pages left). */
  readonly stats: Pick<
    RoundStats,
    "round" | "dirtyPages" | "dirtyRate" | "sendRate" | "wireRate"
  >;
  /** What the plan decided after the round. */
  readonly decision: Decision;
  /** Why, in words. */
  readonly reason: string;
}

/**
 * The report of a live round: its traffic, and the rates, pages left and
 * decision of the step that ended it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decidedRoundReport, MiB, policy, Steering, when } from "@hakobu/hakobu";
 *
 * const plan = policy("p").switchover(when.remainingBelow(MiB(16))).compile();
 * let t = 0;
 * const steering = new Steering(plan, { memoryBytes: MiB(64), now: () => t });
 * t = 1000; // round 0 sent all 64 MiB in one second; 8 MiB is dirty again
 * const step = steering.decide({
 *   round: 0,
 *   dirtyPages: 2048,
 *   bytesSent: MiB(32),
 *   rawBytesSent: MiB(64),
 * });
 * const round = decidedRoundReport(step, {
 *   dirtyPages: 16384,
 *   pagesSent: 16384,
 *   rawBytes: MiB(64),
 *   wireBytes: MiB(32),
 *   codecMix: { zero: 8192, lz4: 8192 },
 *   codecs: ["zero", "lz4"],
 *   durationMs: 1000,
 * });
 * assert.equal(round.final, false);
 * assert.equal(round.decision, "switchover"); // 8 MiB left, under 16 MiB
 * assert.equal(round.remainingPages, 2048);
 * assert.equal(round.sendRate, MiB(64)); // per second, from the steering
 * assert.equal(round.wireRate, MiB(32));
 * ```
 */
export function decidedRoundReport(
  step: RoundDecision,
  traffic: RoundTraffic,
): RoundReport {
  const { stats } = step;
  return {
    round: stats.round,
    final: false,
    ...trafficFields(traffic),
    dirtyRate: stats.dirtyRate,
    sendRate: stats.sendRate,
    wireRate: stats.wireRate,
    remainingPages: stats.dirtyPages,
    decision: step.decision,
    reason: step.reason,
  };
}

/** What ends a migration's stop-and-copy round ({@link finalRoundReport}). */
export interface FinalRound {
  /** The round's index (after the last live round's). */
  readonly round: number;
  /** How the switchover came about, in words. */
  readonly reason: string;
}

/**
 * The report of the stop-and-copy round, run with the VM paused: its
 * traffic, no rates (nothing was dirtied or decided), nothing left.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finalRoundReport } from "@hakobu/hakobu";
 *
 * const round = finalRoundReport({
 *   round: 3,
 *   reason: "stop-and-copy after the policy's switchover",
 * }, {
 *   dirtyPages: 120,
 *   pagesSent: 120,
 *   rawBytes: 120 * 4096,
 *   wireBytes: 100 * 4096,
 *   codecMix: { raw: 100, zero: 20 },
 *   codecs: ["zero", "raw"],
 *   durationMs: 42,
 * });
 * assert.equal(round.final, true);
 * assert.equal(round.decision, "final");
 * assert.equal(round.remainingPages, 0);
 * assert.equal(round.sendRate, 0);
 * assert.equal(round.durationMs, 42); // the downtime's share of the round
 * ```
 */
export function finalRoundReport(
  final: FinalRound,
  traffic: RoundTraffic,
): RoundReport {
  return {
    round: final.round,
    final: true,
    ...trafficFields(traffic),
    dirtyRate: 0,
    sendRate: 0,
    wireRate: 0,
    remainingPages: 0,
    decision: "final",
    reason: final.reason,
  };
}

/** The traffic's fields in a report's order; `channels` only when given. */
function trafficFields(t: RoundTraffic): Pick<
  RoundReport,
  | "dirtyPages"
  | "pagesSent"
  | "rawBytes"
  | "wireBytes"
  | "codecMix"
  | "channels"
  | "codecs"
  | "durationMs"
> {
  return {
    dirtyPages: t.dirtyPages,
    pagesSent: t.pagesSent,
    rawBytes: t.rawBytes,
    wireBytes: t.wireBytes,
    codecMix: t.codecMix,
    ...(t.channels === undefined ? {} : { channels: t.channels }),
    codecs: t.codecs,
    durationMs: t.durationMs,
  };
}
