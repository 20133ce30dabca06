/**
 * Hand-made {@link RoundStats} for trying policies in the REPL, in tests
 * and in explain(): give the fields you care about, get consistent defaults
 * for the rest.
 *
 * @module
 */

import {
  PAGE_SIZE,
  type RoundHistoryEntry,
  type RoundStats,
} from "../engine/plan.ts";

/**
 * Round stats with defaults: a 4 GiB VM of 4 KiB pages, round 0 sending
 * every page, nothing measured yet. `remainingBytes` follows `dirtyPages`
 * (and the other way round) when only one of them is given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Gbit, MiB, roundStats } from "@hakobu/hakobu";
 *
 * const s = roundStats({
 *   round: 5,
 *   remainingBytes: MiB(32),
 *   sendRate: Gbit(1),
 * });
 * assert.equal(s.dirtyPages, 8192); // 32 MiB of 4 KiB pages
 * ```
 */
export function roundStats(fields: Partial<RoundStats> = {}): RoundStats {
  const pageSize = fields.pageSize ?? PAGE_SIZE;
  const memoryBytes = fields.memoryBytes ?? 4 * 1024 ** 3;
  const dirtyPages = fields.dirtyPages ??
    (fields.remainingBytes !== undefined
      ? Math.ceil(fields.remainingBytes / pageSize)
      : Math.ceil(memoryBytes / pageSize));
  return Object.freeze({
    round: 0,
    dirtyRate: 0,
    sendRate: 0,
    wireRate: 0,
    elapsedMs: 0,
    bytesSent: 0,
    rawBytesSent: 0,
    ...fields,
    pageSize,
    memoryBytes,
    dirtyPages,
    remainingBytes: fields.remainingBytes ?? dirtyPages * pageSize,
  });
}

/** Fields of {@link roundSeries}: the same for every round, plus the length of a round. */
export interface RoundSeriesOptions extends Partial<RoundStats> {
  /** Milliseconds each round takes (default 1000): round `i` ends at `(i + 1) * roundMs`. */
  readonly roundMs?: number;
}

/**
 * The decision points of one made-up migration, for trying conditions that
 * look back (`when.stalled`): one {@link RoundStats} per entry of
 * `remainingBytes`, round `i` with those remaining bytes, ending at
 * `(i + 1) * roundMs` milliseconds, and the rounds before it as its
 * `history`. Other fields are `options`' (or {@link roundStats}' defaults)
 * in every round.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, roundSeries } from "@hakobu/hakobu";
 *
 * const series = roundSeries([MiB(100), MiB(40), MiB(45)], { roundMs: 500 });
 * assert.equal(series[2].round, 2);
 * assert.equal(series[2].elapsedMs, 1500);
 * assert.deepEqual(series[2].history?.map((h) => h.remainingBytes), [
 *   MiB(100),
 *   MiB(40),
 * ]);
 * ```
 */
export function roundSeries(
  remainingBytes: readonly number[],
  options: RoundSeriesOptions = {},
): readonly RoundStats[] {
  const { roundMs = 1000, ...fields } = options;
  const history: RoundHistoryEntry[] = [];
  return Object.freeze(remainingBytes.map((remaining, round) => {
    const stats = roundStats({
      ...fields,
      dirtyPages: undefined,
      round,
      remainingBytes: remaining,
      elapsedMs: (round + 1) * roundMs,
      history: Object.freeze([...history]),
    });
    history.push(Object.freeze({
      round,
      remainingBytes: remaining,
      dirtyRate: stats.dirtyRate,
      elapsedMs: stats.elapsedMs,
    }));
    return stats;
  }));
}
