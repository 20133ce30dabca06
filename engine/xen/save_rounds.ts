/**
 * The round table of a Xen save, from the policy calls libxc made
 * (`save.ts`): libxc reports no rounds of its own, but each iteration of its
 * `send_memory_live()` asks the policy once with the dirty count it is about
 * to send, and once after sending it.
 *
 * - Live round i is the decision call with `iteration` i: it sends the
 *   `dirty_count` pages of that call (libxc sends them even when the answer
 *   is STOP_AND_COPY, then stops), and lasts until the after-send call, or
 *   for the last live round until the guest is asked to suspend.
 * - libxc sends pages raw and tells nobody how many it sends with the guest
 *   suspended: the stop-and-copy round's pages are estimated from the image
 *   bytes left after the live rounds' pages, and its reason says so.
 *
 * @module
 */

import { PAGE_SIZE } from "../plan.ts";
import type { RoundReport } from "../report.ts";
import { decidedRoundReport, finalRoundReport } from "../round_report.ts";
import type { PolicyCall } from "./save.ts";
import { XgsPolicy } from "../../ffi/xen/xenguest.ts";

/** Options of {@link xenRoundReports}. */
export interface XenRoundOptions {
  /** Page size (default 4096). */
  readonly pageSize?: number;
  /** Bytes of the libxc image, when known: the stop-and-copy round's share is what the live rounds did not send. */
  readonly imageBytes?: number | null;
  /** When the guest was asked to suspend (ms on the calls' clock): the end of the last live round. */
  readonly suspendRequestedAt?: number;
  /** Suspend request to the destination running, ms: the stop-and-copy round's duration. */
  readonly downtimeMs?: number;
}

/**
 * The rounds of a Xen save: one per live iteration libxc ran, then the
 * stop-and-copy round.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xenRoundReports } from "@hakobu/hakobu";
 *
 * const stats = (iteration: number, totalWritten: number, dirtyCount: number) => ({
 *   iteration, totalWritten, dirtyCount,
 * });
 * const rounds = xenRoundReports([
 *   { stats: stats(0, 0, 1000), decision: "continue", answer: 0, at: 0, reason: "continue: ..." },
 *   { stats: stats(1, 1000, -1), decision: null, answer: 0, at: 400 },
 *   { stats: stats(1, 1000, 50), decision: "switchover", answer: 1, at: 410, reason: "switchover: ..." },
 * ], { imageBytes: 1060 * 4096, suspendRequestedAt: 430, downtimeMs: 90 });
 * assert.deepEqual(rounds.map((r) => [r.round, r.pagesSent, r.decision]), [
 *   [0, 1000, "continue"],
 *   [1, 50, "switchover"],
 *   [2, 10, "final"], // the image's bytes beyond the live rounds' pages
 * ]);
 * assert.equal(rounds[0].durationMs, 400);
 * assert.equal(rounds[0].remainingPages, 50);
 * ```
 */
export function xenRoundReports(
  calls: readonly PolicyCall[],
  options: XenRoundOptions = {},
): RoundReport[] {
  const ps = options.pageSize ?? PAGE_SIZE;
  const rounds: RoundReport[] = [];
  const decisions = calls.filter((c) => c.stats.dirtyCount >= 0);
  let livePages = 0;
  for (let i = 0; i < decisions.length; i++) {
    const call = decisions[i];
    if (call.answer === XgsPolicy.ABORT) break; // nothing more was sent
    const pages = call.stats.dirtyCount;
    livePages += pages;
    // The after-send call of this iteration, if libxc made one.
    const after = calls.find((c) =>
      c.stats.dirtyCount < 0 && c.stats.iteration === call.stats.iteration + 1
    );
    const end = after?.at ?? options.suspendRequestedAt ?? call.at;
    const durationMs = Math.max(0, end - call.at);
    const secs = durationMs / 1000;
    const stoppedAfter = after !== undefined &&
      after.answer !== XgsPolicy.CONTINUE_PRECOPY;
    const sendRate = secs > 0 ? (pages * ps) / secs : 0;
    rounds.push(decidedRoundReport({
      stats: {
        round: call.stats.iteration,
        dirtyPages: decisions[i + 1]?.stats.dirtyCount ?? 0,
        dirtyRate: call.roundStats?.dirtyRate ?? 0,
        sendRate,
        wireRate: sendRate, // libxc sends pages raw
      },
      decision: stoppedAfter ? "switchover" : call.decision ?? "continue",
      reason: (stoppedAfter ? after.reason : call.reason) ?? "",
    }, {
      dirtyPages: pages,
      pagesSent: pages,
      rawBytes: pages * ps,
      wireBytes: pages * ps,
      codecMix: { raw: pages },
      codecs: ["raw"],
      durationMs,
    }));
    if (call.answer !== XgsPolicy.CONTINUE_PRECOPY || stoppedAfter) break;
  }
  const imageBytes = options.imageBytes ?? null;
  const finalPages = imageBytes === null
    ? 0
    : Math.max(0, Math.round((imageBytes - livePages * ps) / ps));
  if (rounds.length > 0) {
    const last = rounds[rounds.length - 1];
    rounds[rounds.length - 1] = { ...last, remainingPages: finalPages };
  }
  rounds.push(finalRoundReport({
    round: rounds.length,
    reason: imageBytes === null
      ? "stop-and-copy: libxc sent the rest with the guest suspended (how much is unknown: the image size was not measured)"
      : "stop-and-copy: libxc sent the rest with the guest suspended (pages estimated from the image bytes beyond the live rounds)",
  }, {
    dirtyPages: finalPages,
    pagesSent: finalPages,
    rawBytes: finalPages * ps,
    wireBytes: imageBytes === null
      ? 0
      : Math.max(0, imageBytes - livePages * ps),
    codecMix: { raw: finalPages },
    codecs: ["raw"],
    durationMs: options.downtimeMs ?? 0,
  }));
  return rounds;
}
