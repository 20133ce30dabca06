/**
 * One yardstick for every QEMU migration, whatever carries the stream: the
 * host times QEMU itself stamps on three QMP events.
 *
 * - start: the source's `MIGRATION` event with status `setup` (the
 *   `migrate` command was accepted);
 * - stop: the source's `STOP` event (its vCPUs stopped for the switchover);
 * - resume: the destination's `RESUME` event (its vCPUs run the guest).
 *
 * Total time is resume − start and downtime is resume − stop. Both end at
 * the destination guest running, so a tunnel's draining, its receiver's
 * checks and the destination loading the stream are all inside, for
 * QEMU's own transports and for hakobu's alike. (QEMU's own `total-time`
 * and `downtime` stop earlier, before it waits for an `exec:` child.)
 *
 * @example
 * ```ts
 * import { migrateQemu, policy, when } from "@hakobu/hakobu";
 * import { watchMigration } from "./migration_clock.ts";
 * import { startPair } from "./qemu_pair.ts";
 *
 * // Needs QEMU and the lab's guests: the doc tests type-check this function
 * // and do not call it.
 * async function timeOneMigration() {
 *   const plan = policy("p").switchover(when.rounds(3)).compile();
 *   const pair = await startPair({ app: "memcached", memMiB: 512 });
 *   const clock = watchMigration(pair.src, pair.dst);
 *   await migrateQemu({ plan, source: pair.src, uri: pair.uri });
 *   const t = await clock.result(30_000);
 *   await pair.close();
 *   return [t.totalMs, t.downtimeMs];
 * }
 * ```
 *
 * @module
 */

import type { QmpClient } from "../../engine/qemu/qmp.ts";

/** The three event times of one migration, ms since the epoch (QEMU's host clock). */
export interface MigrationTimes {
  /** Source `MIGRATION` `setup`. */
  readonly startMs: number;
  /** Source `STOP`. */
  readonly stopMs: number;
  /** Destination `RESUME`. */
  readonly resumeMs: number;
  /** resume − start. */
  readonly totalMs: number;
  /** resume − stop. */
  readonly downtimeMs: number;
}

/** A watch on one migration's events. */
export interface MigrationClock {
  /**
   * Waits (at most `timeoutMs` after the call) until all three events were
   * seen; rejects naming the ones missing.
   */
  result(timeoutMs: number): Promise<MigrationTimes>;
  /** Stops listening. */
  close(): void;
}

/**
 * Starts listening on both QMP sessions; call before `migrate`. Only the
 * first event of each kind counts (a later STOP, after completion, is not
 * the switchover).
 */
export function watchMigration(
  source: QmpClient,
  destination: QmpClient,
): MigrationClock {
  const seen: { start?: number; stop?: number; resume?: number } = {};
  let wake: (() => void) | null = null;
  const offs = [
    source.on("MIGRATION", (e) => {
      if (e.data.status === "setup") seen.start ??= e.timeMs;
    }),
    source.on("STOP", (e) => {
      if (seen.start !== undefined) seen.stop ??= e.timeMs;
    }),
    destination.on("RESUME", (e) => {
      seen.resume ??= e.timeMs;
      wake?.();
    }),
  ];
  const close = () => offs.forEach((off) => off());
  return {
    close,
    async result(timeoutMs: number): Promise<MigrationTimes> {
      const deadline = performance.now() + timeoutMs;
      while (
        seen.start === undefined || seen.stop === undefined ||
        seen.resume === undefined
      ) {
        const left = deadline - performance.now();
        if (left <= 0) {
          const missing = [
            seen.start === undefined ? "source MIGRATION setup" : "",
            seen.stop === undefined ? "source STOP" : "",
            seen.resume === undefined ? "destination RESUME" : "",
          ].filter(Boolean).join(", ");
          throw new Error(
            `Migration events missing after ${timeoutMs} ms: ${missing}`,
          );
        }
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.min(left, 100));
        });
        wake = null;
      }
      close();
      return {
        startMs: seen.start,
        stopMs: seen.stop,
        resumeMs: seen.resume,
        totalMs: seen.resume - seen.start,
        downtimeMs: seen.resume - seen.stop,
      };
    },
  };
}
