/**
 * How long a pre-copy migration should take, from the VM's size and dirty
 * rate and the link rate: the geometric model the planner ranks moves with.
 *
 * Model (one link of `bandwidth` B bytes/s, guest dirtying r bytes/s, memory M):
 * - round 0 sends D_0 = M bytes in t_0 = D_0 / B;
 * - while round i runs the guest dirties D_{i+1} = min(M, r · t_i) bytes,
 *   sent by round i+1 in t_{i+1} = D_{i+1} / B; so D_i = M · (r/B)^i, a
 *   geometric series that shrinks only when r < B;
 * - after round i the policy decides: with a compiled plan, `plan.decide()` is
 *   asked with the stats the engine would hand it (remaining D_{i+1}, dirty
 *   rate r, send rate B, elapsed Σt); without one, switch over once
 *   D_{i+1} < `remainingBelowBytes`; `maxRounds` live rounds at most;
 * - the stop-and-copy round sends what is left: downtime = D_last / B;
 * - total time = Σ t_i + downtime; bytes sent = Σ D_i (page bytes, before
 *   codecs: zero pages and compression only make the real run faster).
 *
 * A VM with r ≥ B cannot converge (each round sends at least as much as the
 * last) and is reported so.
 *
 * @module
 */

import { PAGE_SIZE, type Plan, type RoundStats } from "../../engine/plan.ts";

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
  /** Page bytes sent in all rounds. */
  readonly bytesSent: number;
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
  if (r >= b) {
    return {
      converges: false,
      rounds: 0,
      totalMs: Infinity,
      downtimeMs: Infinity,
      bytesSent: Infinity,
      reason: `dirty rate ${_mbps(r)} is not below the link rate ${
        _mbps(b)
      }: pre-copy cannot converge`,
    };
  }
  const maxRounds = plan?.maxRounds ?? options.maxRounds ?? 30;
  const threshold = options.remainingBelowBytes ?? 64 * 2 ** 20;
  let d = m;
  let elapsed = 0;
  let sent = 0;
  let round = 0;
  let reason = "";
  for (;;) {
    const t = (d / b) * 1000;
    elapsed += t;
    sent += d;
    const next = Math.min(m, Math.ceil((r * t) / 1000 / pageSize) * pageSize);
    d = next;
    if (round + 1 >= maxRounds) {
      reason = `reached ${maxRounds} live rounds`;
      break;
    }
    if (plan) {
      const stats: RoundStats = {
        round,
        dirtyPages: next / pageSize,
        remainingBytes: next,
        dirtyRate: r,
        sendRate: b,
        wireRate: b,
        elapsedMs: elapsed,
        bytesSent: sent,
        rawBytesSent: sent,
        memoryBytes: m,
        pageSize,
      };
      const decision = plan.decide(stats);
      if (decision === "abort") {
        return {
          converges: false,
          rounds: round + 1,
          totalMs: Infinity,
          downtimeMs: Infinity,
          bytesSent: Infinity,
          reason: `policy "${plan.name}" would abort after round ${round}: ${
            plan.reason?.(stats) ?? "abort"
          }`,
        };
      }
      if (decision === "switchover") {
        reason = plan.reason?.(stats) ?? "policy switches over";
        break;
      }
    } else if (next < threshold) {
      reason = `under ${threshold} bytes remain`;
      break;
    }
    round++;
  }
  const downtime = (d / b) * 1000;
  return {
    converges: true,
    rounds: round + 1,
    totalMs: elapsed + downtime,
    downtimeMs: downtime,
    bytesSent: sent + d,
    reason,
  };
}

function _mbps(rate: number): string {
  return `${(rate / 1e6).toFixed(1)} MB/s`;
}
