/**
 * How long a pre-copy migration should take, from the VM's size, dirty
 * rate and memory profile, the link rate and the policy's codecs: the
 * geometric model the planner ranks moves with.
 *
 * Model (one link of `bandwidth` B bytes/s, guest dirtying r bytes/s, memory M):
 * - round 0 sends D_0 = M page bytes; the policy's codec chain for the round
 *   (`plan.codecsFor`) turns them into W_0 wire bytes (`memory_model.ts`: its
 *   zero pages cost about nothing under `zero`, its other pages the codec's
 *   measured ratio), sent in t_0 = W_0 / B;
 * - while round i runs the guest dirties D_{i+1} = min(M, r · t_i) bytes,
 *   sent again by round i+1 as W_{i+1} wire bytes in t_{i+1} = W_{i+1} / B;
 *   with a ratio k on pages sent again, D_i shrinks by r / (k · B) a round,
 *   so pre-copy converges only when r < k · B;
 * - after round i the policy decides: with a compiled plan, `plan.decide()` is
 *   asked with the stats the engine would hand it (remaining D_{i+1}, dirty
 *   rate r, send rate D_i / t_i, wire rate B, elapsed Σt); without one,
 *   switch over once D_{i+1} < `remainingBelowBytes`; `maxRounds` live
 *   rounds at most;
 * - the stop-and-copy round sends what is left: downtime = W_last / B;
 * - total time = Σ t_i + downtime; page bytes = Σ D_i; wire bytes = Σ W_i
 *   (frame headers and the codecs' CPU time are not counted).
 *
 * Without a plan the chain is `options.codecs` (default: raw only, the
 * model before codecs were counted); without a memory profile nothing is
 * known of the memory, and no codec gains anything.
 *
 * @module
 */

import { PAGE_SIZE, type Plan, type RoundStats } from "../../engine/plan.ts";
import { roundLimitReason, Steering } from "../../engine/steering.ts";
import {
  type MemoryProfile,
  type NamedCodec,
  pageCosts,
  type PageSend,
  UNKNOWN_MEMORY,
} from "./memory_model.ts";

/** Options of {@link predictMigration}. */
export interface PredictOptions {
  /** Guest memory in bytes. */
  readonly memoryBytes: number;
  /** Guest dirty rate in bytes per second. */
  readonly dirtyRate: number;
  /** Link rate in bytes per second. */
  readonly bandwidth: number;
  /** The policy: its `decide()` picks the switchover round, its `maxRounds` bounds them. */
  readonly plan?: Plan;
  /** Without a plan: switch over once fewer bytes remain (default 64 MiB). */
  readonly remainingBelowBytes?: number;
  /** Without a plan: most live rounds (default 30). */
  readonly maxRounds?: number;
  /** Page size (default 4096). */
  readonly pageSize?: number;
  /** What is known of the VM's memory (default {@link UNKNOWN_MEMORY}: no zero pages, no codec gains). */
  readonly memory?: MemoryProfile;
  /** Without a plan: the codec chain of every round (default raw only). */
  readonly codecs?: readonly NamedCodec[];
}

/** A predicted migration. */
export interface Prediction {
  /** Whether pre-copy converges (dirty rate below the link rate) and the policy does not abort. */
  readonly converges: boolean;
  /** Live rounds before the stop-and-copy round. */
  readonly rounds: number;
  /** Predicted total time in milliseconds. */
  readonly totalMs: number;
  /** Predicted downtime (stop-and-copy) in milliseconds. */
  readonly downtimeMs: number;
  /** Page bytes sent in all rounds (before the codecs). */
  readonly bytesSent: number;
  /** Bytes on the wire in all rounds: the page bytes after the codecs. */
  readonly wireBytes: number;
  /** Why it stops, or why it cannot converge. */
  readonly reason: string;
}

/**
 * Predicts a pre-copy migration with the geometric model of this module.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { predictMigration } from "./mod.ts";
 *
 * const p = predictMigration({
 *   memoryBytes: 2 ** 30,
 *   dirtyRate: 0,
 *   bandwidth: 125e6,
 * });
 * assert.equal(Math.round(p.totalMs), 8590); // 1 GiB at 1 Gbit/s
 * assert.equal(p.converges, true);
 * // Half its pages zero, and a zero codec in the chain: half the time.
 * const q = predictMigration({
 *   memoryBytes: 2 ** 30,
 *   dirtyRate: 0,
 *   bandwidth: 125e6,
 *   codecs: [{ name: "zero" }, { name: "raw" }],
 *   memory: { zeroFraction: 0.5, ratios: {}, source: "measured" },
 * });
 * assert.equal(Math.round(q.totalMs), 4295);
 * assert.equal(q.wireBytes, 2 ** 29);
 * ```
 */
export function predictMigration(options: PredictOptions): Prediction {
  const { memoryBytes: m, dirtyRate: r, bandwidth: b, plan } = options;
  const pageSize = options.pageSize ?? PAGE_SIZE;
  if (!(b > 0) || !Number.isFinite(b)) {
    throw new RangeError(
      `Invalid bandwidth "${b}": expected a positive number of bytes per second`,
    );
  }
  const profile = options.memory ?? UNKNOWN_MEMORY;
  const fixed = options.codecs ?? [{ name: "raw" }];
  const chainFor = (stats: RoundStats): readonly NamedCodec[] =>
    plan ? plan.codecsFor(stats) : fixed;
  const wireOf = (
    bytes: number,
    send: PageSend,
    chain: readonly NamedCodec[],
  ): number => {
    const c = pageCosts(chain, profile, send, pageSize);
    const pages = bytes / pageSize;
    const zeros = send === "first" ? pages * profile.zeroFraction : 0;
    return zeros * c.zeroPage + (pages - zeros) * c.page;
  };
  const maxRounds = plan?.maxRounds ?? options.maxRounds ?? 30;
  const threshold = options.remainingBelowBytes ?? 64 * 2 ** 20;
  let d = m;
  let elapsed = 0;
  let sent = 0;
  let wire = 0;
  let round = 0;
  let sendRate = 0;
  let reason = "";
  const steering = plan
    ? new Steering(plan, { memoryBytes: m, pageSize, now: () => elapsed })
    : null;
  // The stats the engine hands the codec chooser before round `i` runs.
  const before = (i: number, bytes: number): RoundStats => ({
    round: i,
    dirtyPages: bytes / pageSize,
    remainingBytes: bytes,
    dirtyRate: i === 0 ? 0 : r,
    sendRate,
    wireRate: i === 0 ? 0 : b,
    elapsedMs: elapsed,
    bytesSent: wire,
    rawBytesSent: sent,
    memoryBytes: m,
    pageSize,
  });
  for (;;) {
    const w = wireOf(
      d,
      round === 0 ? "first" : "again",
      chainFor(before(round, d)),
    );
    const t = (w / b) * 1000;
    elapsed += t;
    sent += d;
    wire += w;
    sendRate = w > 0 ? (b * d) / w : b * pageSize;
    const next = Math.min(m, Math.ceil((r * t) / 1000 / pageSize) * pageSize);
    if (round === 0) {
      // Pages sent again shrink only while the guest dirties them slower than they go.
      const again = pageCosts(
        chainFor(before(1, next)),
        profile,
        "again",
        pageSize,
      );
      const rate = (b * pageSize) / again.page;
      if (r >= rate) {
        return {
          converges: false,
          rounds: 0,
          totalMs: Infinity,
          downtimeMs: Infinity,
          bytesSent: Infinity,
          wireBytes: Infinity,
          reason: `dirty rate ${_mbps(r)} is not below the link rate ${
            _mbps(b)
          }${
            rate === b
              ? ""
              : ` times ${again.pageCodec}'s ratio ${
                (pageSize / again.page).toFixed(2)
              } (${_mbps(rate)} of pages sent again)`
          }: pre-copy cannot converge`,
        };
      }
    }
    d = next;
    if (steering) {
      // The engine's own steering: the same stats, history and maxRounds
      // wording a real migration gets, so looking-back conditions work here.
      const step = steering.decide({
        round,
        dirtyPages: next / pageSize,
        dirtyRate: r,
        sendRate,
        wireRate: b,
        elapsedMs: elapsed,
        bytesSent: wire,
        rawBytesSent: sent,
      });
      if (step.decision === "abort") {
        return {
          converges: false,
          rounds: round + 1,
          totalMs: Infinity,
          downtimeMs: Infinity,
          bytesSent: Infinity,
          wireBytes: Infinity,
          reason: `policy "${
            plan!.name
          }" would abort after round ${round}: ${step.reason}`,
        };
      }
      if (step.decision === "switchover") {
        reason = step.reason;
        break;
      }
    } else if (round + 1 >= maxRounds) {
      reason = roundLimitReason(maxRounds, round + 1) ?? "";
      break;
    } else if (next < threshold) {
      reason = `under ${threshold} bytes remain`;
      break;
    }
    round++;
  }
  const last = wireOf(d, "again", chainFor(before(round + 1, d)));
  const downtime = (last / b) * 1000;
  return {
    converges: true,
    rounds: round + 1,
    totalMs: elapsed + downtime,
    downtimeMs: downtime,
    bytesSent: sent + d,
    wireBytes: wire + last,
    reason,
  };
}

function _mbps(rate: number): string {
  return `${(rate / 1e6).toFixed(1)} MB/s`;
}
