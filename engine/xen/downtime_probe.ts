/**
 * Watches a migration on one host from dom0 and measures its downtime the
 * same way whoever migrates: polling every domain's state through
 * libxenctrl, from the moment Xen reports the source domain shut down for
 * suspend until a newer domain (the incoming copy) runs unpaused. It works
 * for `xl migrate` and `hakobu xen migrate` alike, which is what a fair
 * comparison needs (hakobu's own `downtimeMs` starts at the suspend request
 * and ends at the receiver's report, which `xl` does not expose).
 *
 * Its command line, which the Xen lab runs in dom0, is
 * `scripts/lab/downtime_probe.ts DOMID [--interval-ms 5] [--timeout-ms 600000]`.
 *
 * @module
 */

import type { DomainInfo } from "../../ffi/xen/xenctrl.ts";
import { ShutdownReason } from "../../ffi/xen/xenctrl.ts";

/** What {@link probeDowntime} saw. */
export interface DowntimeProbeResult {
  /** The source domain. */
  readonly domid: number;
  /** The domain that took over (null when none ran before the timeout). */
  readonly newDomid: number | null;
  /** Source suspended → new domain running, in ms (null if not both seen). */
  readonly downtimeMs: number | null;
  /** Polls made, and the polling interval asked for. */
  readonly polls: number;
  /** The polling interval asked for, in ms. */
  readonly intervalMs: number;
  /** Why it stopped: "resumed" (new domain runs), "source-resumed" (the source ran again), "timeout". */
  readonly outcome: "resumed" | "source-resumed" | "timeout";
}

/** Options of {@link probeDowntime}. */
export interface DowntimeProbeOptions {
  /** Poll interval (default 5 ms). */
  readonly intervalMs?: number;
  /** Give up after this long (default 10 minutes). */
  readonly timeoutMs?: number;
  /** The domain list (default: libxenctrl's `xc_domain_getinfolist`). */
  readonly list?: () => readonly DomainInfo[];
  /** The clock in ms (default `performance.now`). */
  readonly now?: () => number;
  /** Waits `ms` (default `setTimeout`). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Polls until `domid` has been suspended and a domain with a higher id runs
 * unpaused (or the source runs again, or the timeout).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DomainInfo, probeDowntime } from "@hakobu/hakobu";
 *
 * // On a dom0, `probeDowntime(7)` polls libxenctrl while a migration runs.
 * // Here, a scripted host: domain 7 is suspended at 5 ms, its copy runs at 10.
 * const dom = (domid: number, shutdown = false): DomainInfo => ({
 *   domid,
 *   flags: 0,
 *   hvm: false,
 *   paused: false,
 *   dying: false,
 *   shutdown,
 *   shutdownReason: shutdown ? 2 : 0, // 2: suspend
 *   totPages: 0,
 *   maxPages: 0,
 *   cpuTimeNs: 0n,
 *   onlineVcpus: 1,
 * });
 * const polls = [[dom(7)], [dom(7, true)], [dom(7, true), dom(8)]];
 * let now = 0;
 * const r = await probeDowntime(7, {
 *   list: () => polls.shift()!,
 *   now: () => now,
 *   sleep: (ms) => Promise.resolve(void (now += ms)),
 * });
 * assert.equal(r.outcome, "resumed");
 * assert.equal(r.newDomid, 8);
 * assert.equal(r.downtimeMs, 5);
 * ```
 */
export async function probeDowntime(
  domid: number,
  options: DowntimeProbeOptions = {},
): Promise<DowntimeProbeResult> {
  const intervalMs = options.intervalMs ?? 5;
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ??
    ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let list = options.list;
  if (!list) {
    const { openXenctrl } = await import("../../ffi/xen/xenctrl.ts");
    const xc = openXenctrl();
    list = () => xc.listDomains();
  }
  const start = now();
  let suspendedAt: number | null = null;
  let polls = 0;
  for (;;) {
    const t = now();
    const doms = list();
    polls++;
    const src = doms.find((d) => d.domid === domid);
    const suspended = src !== undefined && src.shutdown &&
      src.shutdownReason === ShutdownReason.suspend;
    if (suspendedAt === null && suspended) suspendedAt = t;
    if (suspendedAt !== null) {
      const next = doms.find((d) =>
        d.domid > domid && !d.paused && !d.shutdown && !d.dying
      );
      if (next) {
        return {
          domid,
          newDomid: next.domid,
          downtimeMs: Math.round(t - suspendedAt),
          polls,
          intervalMs,
          outcome: "resumed",
        };
      }
      if (src && !src.shutdown && !src.paused) {
        return {
          domid,
          newDomid: null,
          downtimeMs: Math.round(t - suspendedAt),
          polls,
          intervalMs,
          outcome: "source-resumed",
        };
      }
    }
    if (t - start > (options.timeoutMs ?? 600_000)) {
      return {
        domid,
        newDomid: null,
        downtimeMs: null,
        polls,
        intervalMs,
        outcome: "timeout",
      };
    }
    await sleep(intervalMs);
  }
}
