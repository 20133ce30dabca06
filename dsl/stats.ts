/**
 * Hand-made {@link RoundStats} for trying policies in the REPL, in tests
 * and in explain(): give the fields you care about, get consistent defaults
 * for the rest.
 *
 * @module
 */

import { PAGE_SIZE, type RoundStats } from "../engine/plan.ts";

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
