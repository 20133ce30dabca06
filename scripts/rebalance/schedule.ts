/**
 * The order a run would take: the runner's rule (start moves in plan order
 * as soon as the concurrency limits allow) replayed with each move's
 * predicted time, capped at the per-migration timeout. Moves that start at
 * the same predicted instant form a wave. `--dry-run` prints it.
 *
 * @module
 */

import type { HostSpec } from "./inventory.ts";
import type { Move, RebalancePlan } from "./planner.ts";
import { DEFAULT_MAX_CONCURRENT, MigrationSlots } from "./_slots.ts";

/** Default per-migration time limit: 5 minutes. */
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/** Options of {@link scheduleMoves}: the run's limits. */
export interface ScheduleOptions {
  /** Most migrations in flight at once (default 2). */
  readonly maxConcurrent?: number;
  /** Most in flight per host when the host sets no `maxMigrations`. */
  readonly maxPerHost?: number;
  /** Per-migration time limit in milliseconds (default 5 minutes). */
  readonly timeoutMs?: number;
}

/** One move in the schedule. */
export interface ScheduledMove {
  /** The planned move. */
  readonly move: Move;
  /** Its wave, from 1: the moves that start at the same predicted instant. */
  readonly wave: number;
  /** Predicted start, milliseconds after the run starts. */
  readonly startMs: number;
  /** Predicted end (the timeout's, when it would time out). */
  readonly endMs: number;
  /** Whether its predicted time exceeds the timeout: it would be aborted and the VM stay. */
  readonly overTimeout: boolean;
}

/** A run's predicted order. */
export interface Schedule {
  /** The moves in plan order. */
  readonly moves: readonly ScheduledMove[];
  /** How many waves. */
  readonly waves: number;
  /** Predicted time of the whole run in milliseconds. */
  readonly totalMs: number;
  /** The limit used: most migrations at once. */
  readonly maxConcurrent: number;
  /** The limit used: per-migration timeout in milliseconds. */
  readonly timeoutMs: number;
}

/**
 * Replays the runner's start rule with predicted times.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInventory, planMoves, scheduleMoves } from "./mod.ts";
 *
 * const inventory = parseInventory({
 *   hosts: [{ name: "a", memory: "1GiB" }, { name: "b", memory: "1GiB" }, { name: "c", memory: "1GiB" }],
 *   vms: ["v1", "v2", "v3"].map((name) => ({ name, host: "a", memory: "256MiB" })),
 *   targets: { maxHostMemoryPercent: 30 },
 * });
 * const plan = planMoves(inventory, { bandwidth: 125e6 });
 * const s = scheduleMoves(plan, inventory.hosts, { maxConcurrent: 1 });
 * // One at a time: two moves, two waves, one after the other.
 * assert.deepEqual(s.moves.map((m) => m.wave), [1, 2]);
 * assert.equal(s.moves[1].startMs, s.moves[0].endMs);
 * ```
 */
export function scheduleMoves(
  plan: Pick<RebalancePlan, "moves">,
  hosts: readonly HostSpec[],
  options: ScheduleOptions = {},
): Schedule {
  const slots = new MigrationSlots(hosts, options);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const starts: number[] = plan.moves.map(() => NaN);
  const ends: number[] = plan.moves.map(() => NaN);
  const pending = plan.moves.map((_, i) => i);
  const running = new Set<number>();
  let now = 0;
  while (pending.length > 0 || running.size > 0) {
    for (let k = 0; k < pending.length;) {
      const i = pending[k];
      const m = plan.moves[i];
      if (slots.canStart(m)) {
        pending.splice(k, 1);
        slots.take(m);
        running.add(i);
        starts[i] = now;
        ends[i] = now + Math.min(m.predictedMs, timeoutMs);
      } else k++;
    }
    if (running.size === 0) break;
    now = Math.min(...[...running].map((i) => ends[i]));
    for (const i of [...running]) {
      if (ends[i] <= now) {
        running.delete(i);
        slots.release(plan.moves[i]);
      }
    }
  }
  const instants = [...new Set(starts)].sort((a, b) => a - b);
  return {
    moves: plan.moves.map((move, i) => ({
      move,
      wave: instants.indexOf(starts[i]) + 1,
      startMs: starts[i],
      endMs: ends[i],
      overTimeout: move.predictedMs > timeoutMs,
    })),
    waves: instants.length,
    totalMs: plan.moves.length === 0 ? 0 : Math.max(...ends),
    maxConcurrent: options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT,
    timeoutMs,
  };
}
