/**
 * Drives a QEMU migration with a hakobu {@link Plan} (stream mode: QEMU runs
 * the rounds, the plan decides through QMP).
 *
 * - A round ends at each `MIGRATION_PASS` event (one per dirty-bitmap sync;
 *   pass 1 starts round 0, pass n+2 ends round n). After each, the driver
 *   reads `query-migrate` and asks the plan through the steering helper.
 * - QEMU's own switchover test (`remaining < bandwidth × downtime-limit`) is
 *   kept out of the way with a 1 ms `downtime-limit`, so QEMU switches over
 *   on its own only when nothing is left to send. `"switchover"` raises
 *   `downtime-limit` (default 60 s) so QEMU stops the guest and sends the
 *   rest at its next check; `"abort"` runs `migrate_cancel` and the source
 *   keeps running. The decision comes from {@link Steering} (`../steering.ts`),
 *   which also applies `plan.maxRounds`.
 * - `plan.bandwidth` becomes `max-bandwidth` (unpaced: 10 GiB/s).
 *
 * Works with any `migrate` URI: `tcp:` for QEMU-native migrations, `exec:`
 * into the hakobu tunnel.
 *
 * @example
 * ```ts
 * import { migrateQemu, policy, QmpClient, when } from "@hakobu/hakobu";
 *
 * // Needs two running QEMUs with QMP sockets: the doc tests type-check this
 * // function and do not call it.
 * async function migrateOnce() {
 *   const plan = policy("p").switchover(when.rounds(30)).compile();
 *   const src = await QmpClient.connect("/tmp/src.qmp");
 *   const dst = await QmpClient.connect("/tmp/dst.qmp");
 *   await dst.migrateIncoming("tcp:10.77.0.2:4444");
 *   const report = await migrateQemu({
 *     plan,
 *     source: src,
 *     destination: dst,
 *     uri: "tcp:10.77.0.2:4444",
 *   });
 *   console.log(report.status, report.totalTimeMs, report.downtimeMs);
 * }
 * ```
 *
 * @module
 */

import { PROC_TICKS_PER_SECOND, procStatTimes } from "../proc_stat.ts";
import { PAGE_SIZE, type Plan } from "../plan.ts";
import type { MigrationProgress } from "../precopy.ts";
import type { MigrationReport, RoundReport, StreamVerdict } from "../report.ts";
import { MigrationError } from "../errors.ts";
import { decidedRoundReport, finalRoundReport } from "../round_report.ts";
import { Steering } from "../steering.ts";
import type {
  QmpClient,
  QmpMigrateRam,
  QmpMigrationInfo,
  QmpMigrationParameters,
} from "./qmp.ts";

/** A QEMU migration could not be driven: QMP broke, or a command failed. */
export class QemuMigrationError extends MigrationError {
  /** What the driver saw up to the failure (rounds so far), when any. */
  readonly partial: QemuMigrationReport | undefined;
  /**
   * Creates the error, with the report of what happened before it.
   *
   * @param message What went wrong and why.
   * @param partial The report up to the failure.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(
    message: string,
    partial?: QemuMigrationReport,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.partial = partial;
  }
}

export type { StreamVerdict } from "../report.ts";

/** Options of {@link migrateQemu}. */
export interface QemuMigrationOptions {
  /** The compiled policy. */
  readonly plan: Plan;
  /** QMP session of the source QEMU. */
  readonly source: QmpClient;
  /** `migrate` URI: `tcp:HOST:PORT`, `unix:PATH`, `exec:CMD`. */
  readonly uri: string;
  /** QMP session of the destination, already listening (`migrate-incoming`); lets the driver wait for it to resume. */
  readonly destination?: QmpClient;
  /** Extra capabilities for the source, e.g. `{ xbzrle: true }` (`events` is always on). */
  readonly capabilities?: Readonly<Record<string, boolean>>;
  /** Extra parameters for the source, e.g. `{ "multifd-channels": 4 }`. */
  readonly parameters?: QmpMigrationParameters;
  /** `downtime-limit` set at switchover, ms (default 60000). */
  readonly switchoverDowntimeMs?: number;
  /** Give up (cancel) after this many ms (default 30 minutes). */
  readonly timeoutMs?: number;
  /** How often to poll `query-migrate` besides events, ms (default 500). */
  readonly pollMs?: number;
  /** Aborting cancels the migration; the source keeps running. */
  readonly signal?: AbortSignal;
  /** Pids whose CPU time counts as source CPU (QEMU, tunnel); their reaped children count too. */
  readonly sourcePids?: readonly number[];
  /** Description of the VM for the report. */
  readonly vm?: string;
  /** Called after each round's decision. */
  readonly onRound?: (round: RoundReport) => void;
  /**
   * Called at each poll of `query-migrate` (every `pollMs`) with the round
   * QEMU is in and the pages it sent of it so far, as the native engine's
   * progress (the stop-and-copy round is not seen: QEMU runs it at once).
   */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /**
   * Checks what the destination got, called once QEMU reports completion
   * (e.g. `ExecTunnel.verdict` of the hakobu tunnel the `uri` runs). Without
   * it the report's `verification` is `"none"` and `verified` is false:
   * QEMU's own transport carried bytes that hakobu never saw.
   */
  readonly verify?: () => Promise<StreamVerdict>;
}

/** A {@link MigrationReport} with what QEMU said. */
export interface QemuMigrationReport extends MigrationReport {
  /** QEMU's final status: `completed`, `failed` or `cancelled`. */
  readonly status: string;
  /** QEMU's `error-desc` (or the driver's reason) when it did not complete. */
  readonly error: string | null;
  /** The `migrate` URI. */
  readonly uri: string;
  /** QEMU's `setup-time`, ms. */
  readonly setupTimeMs: number;
  /** Destination run state after the migration (`running` on success), when a destination was given. */
  readonly destinationStatus: string | null;
  /** Source run state after the migration (`postmigrate` on success, `running` after a failure). */
  readonly sourceStatus: string | null;
}

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const UNPACED = 10 * 1024 ** 3;

/**
 * Runs one QEMU migration under a plan. Resolves with a report whatever
 * QEMU's outcome (`status` says which); rejects with
 * {@link QemuMigrationError} only when the driver loses control (QMP gone,
 * a command refused).
 */
export async function migrateQemu(
  options: QemuMigrationOptions,
): Promise<QemuMigrationReport> {
  const { plan, source: qmp } = options;
  const startedAt = new Date().toISOString();
  const rounds: RoundReport[] = [];
  const cpu0 = cpuSeconds(options.sourcePids ?? [], { children: true });
  const t0 = performance.now();
  const steering = new Steering(plan);
  let lastInfo: QmpMigrationInfo = {};
  let switchoverAt: number | null = null;
  let switchoverSnap: Snap | null = null;
  let abortReason: string | null = null;
  let prev: Snap | null = null;
  let roundStartDirty = 0;
  let driverError: Error | null = null;
  let work: Promise<void> = Promise.resolve();
  const codecs = codecLabels(options);

  const fail = (e: unknown) => {
    driverError ??= e instanceof Error ? e : new Error(String(e));
  };

  const onPass = async (pass: number) => {
    const info = await qmp.queryMigrate();
    lastInfo = info.ram ? info : { ...info, ram: lastInfo.ram };
    const ram = info.ram;
    if (!ram || switchoverAt !== null || abortReason !== null) return;
    const now = performance.now();
    const snap = snapOf(ram, now);
    if (pass <= 1 || prev === null) {
      prev = snap;
      roundStartDirty = Math.ceil(ram.total / pageSizeOf(ram));
      return;
    }
    const round = pass - 2;
    const ps = pageSizeOf(ram);
    const dt = Math.max(1e-3, (now - prev.t) / 1000);
    const wire = ram.transferred - prev.transferred;
    const pages = snap.pages - prev.pages;
    const { stats, decision, reason } = steering.decide({
      round,
      remainingBytes: ram.remaining,
      dirtyRate: (ram["dirty-pages-rate"] ?? 0) * ps,
      sendRate: (pages * ps) / dt,
      wireRate: wire / dt,
      elapsedMs: info["total-time"] ?? now - t0,
      bytesSent: ram.transferred,
      rawBytesSent: snap.pages * ps,
      memoryBytes: ram.total,
      pageSize: ps,
    });
    const report = decidedRoundReport({ stats, decision, reason }, {
      dirtyPages: roundStartDirty,
      pagesSent: pages,
      rawBytes: pages * ps,
      wireBytes: wire,
      codecMix: mixOf(prev, snap),
      codecs,
      durationMs: now - prev.t,
    });
    rounds.push(report);
    options.onRound?.(report);
    prev = snap;
    roundStartDirty = stats.dirtyPages;
    if (decision === "switchover") {
      switchoverAt = now;
      switchoverSnap = snap;
      await qmp.setParameters({
        "downtime-limit": options.switchoverDowntimeMs ?? 60_000,
      });
    } else if (decision === "abort") {
      abortReason =
        `aborted by policy "${plan.name}" after round ${round}: ${reason}`;
      await qmp.cancel();
    }
  };

  const offPass = qmp.on("MIGRATION_PASS", (e) => {
    const pass = Number(e.data.pass);
    work = work.then(() => onPass(pass)).catch(fail);
  });
  let status = "none";
  let wake: (() => void) | null = null;
  const offMig = qmp.on("MIGRATION", (e) => {
    status = String(e.data.status);
    if (TERMINAL.has(status)) wake?.();
  });
  const onAbort = () => {
    if (abortReason === null) {
      abortReason = `cancelled: ${String(options.signal?.reason ?? "aborted")}`;
      work = work.then(() => qmp.cancel()).catch(fail);
    }
  };

  let migrateAt = t0;
  let verdictAt: number | null = null;
  const finish = async (): Promise<QemuMigrationReport> => {
    let info = await qmp.queryMigrate().catch(() => lastInfo);
    // QEMU reports "completed" a moment before it fills total-time/downtime
    for (
      let i = 0;
      i < 60 && info.status === "completed" && !info["total-time"];
      i++
    ) {
      await new Promise((r) => setTimeout(r, 50));
      info = await qmp.queryMigrate().catch(() => info);
    }
    // after a failure QEMU drops the ram counters: keep the last ones seen
    const ram = info.ram ?? lastInfo.ram;
    const ps = ram ? pageSizeOf(ram) : PAGE_SIZE;
    const st = info.status ?? status;
    if (ram && st === "completed" && prev !== null) {
      const now = performance.now();
      const snap = snapOf(ram, now);
      const from: Snap = switchoverSnap ?? prev;
      const pages = snap.pages - (prev as Snap).pages;
      rounds.push(finalRoundReport({
        round: rounds.length,
        reason: switchoverAt === null
          ? "QEMU switched over on its own (nothing left or within its downtime-limit)"
          : "stop-and-copy after the policy's switchover",
      }, {
        dirtyPages: roundStartDirty,
        pagesSent: pages,
        rawBytes: pages * ps,
        wireBytes: ram.transferred - (prev as Snap).transferred,
        codecMix: mixOf(prev, snap),
        codecs,
        durationMs: now - from.t,
      }));
    }
    let destinationStatus: string | null = null;
    if (options.destination && st === "completed") {
      destinationStatus = await waitRunning(options.destination, 30_000);
    }
    const sourceStatus = await settledStatus(qmp, 5000);
    const cpu = cpuSeconds(options.sourcePids ?? [], { children: true }) - cpu0;
    const rawBytes = ram ? (ram.normal + ram.duplicate) * ps : 0;
    const wireBytes = ram?.transferred ?? 0;
    const completed = st === "completed";
    const error = completed ? null : abortReason ?? info["error-desc"] ??
      (st === "failed"
        ? "QEMU reported the migration failed"
        : `ended as "${st}"`);
    const verdict = completed && options.verify
      ? await options.verify().then((v) => {
        verdictAt = performance.now();
        return v;
      }).catch((e): StreamVerdict => ({
        verified: false,
        sourceDigest: "",
        destinationDigest: "",
        detail: `the stream check failed: ${
          e instanceof Error ? e.message : String(e)
        }`,
      }))
      : null;
    const destinationOk = options.destination === undefined ||
      destinationStatus === "running";
    const verified = completed && verdict !== null && verdict.verified &&
      destinationOk;
    const destination = destinationStatus
      ? `, destination ${destinationStatus}`
      : "";
    return {
      verified,
      verification: verdict ? "stream-digest" : "none",
      aborted: abortReason !== null,
      outcome: !completed
        ? `${st}: ${error}${sourceStatus ? ` (source ${sourceStatus})` : ""}`
        : verdict === null
        ? `completed: QEMU reported completion${destination}; not verified: QEMU's own transport carried the stream, hakobu compared nothing`
        : verified
        ? `completed and verified: ${verdict.detail}${destination}`
        : `completed but NOT verified: ${verdict.detail}${destination}`,
      policy: plan.name,
      vm: options.vm ?? "qemu",
      memoryBytes: ram?.total ?? 0,
      pageSize: ps,
      bandwidth: plan.bandwidth,
      startedAt,
      // QEMU's total-time stops before it waits for an exec: child; with a
      // verdict the migration lasted until the tunnel had checked the stream.
      totalTimeMs: Math.max(
        info["total-time"] ?? performance.now() - t0,
        verdictAt === null ? 0 : verdictAt - migrateAt,
      ),
      downtimeMs: info.downtime ?? 0,
      verifyMs: 0,
      wireBytes,
      rawBytes,
      compressionRatio: wireBytes > 0 ? rawBytes / wireBytes : 0,
      pagesSent: ram ? ram.normal + ram.duplicate : 0,
      sourceCpuSeconds: cpu,
      sourceCpuSecondsPerGiB: rawBytes > 0 ? cpu / (rawBytes / 1024 ** 3) : 0,
      digest: verdict?.sourceDigest ?? "",
      gpu: {
        used: false,
        adapter: null,
        pagesEncoded: 0,
        note: "QEMU encoded the stream itself; no hakobu codec ran",
      },
      rounds,
      status: st,
      error,
      uri: options.uri,
      setupTimeMs: info["setup-time"] ?? 0,
      destinationStatus,
      sourceStatus,
    };
  };

  try {
    await qmp.setCapabilities({ events: true, ...options.capabilities });
    await qmp.setParameters({
      "downtime-limit": 1,
      "max-bandwidth": plan.bandwidth ?? UNPACED,
      ...options.parameters,
    });
    options.signal?.addEventListener("abort", onAbort);
    migrateAt = performance.now();
    await qmp.migrate(options.uri);
    const deadline = t0 + (options.timeoutMs ?? 30 * 60_000);
    while (true) {
      if (driverError) throw driverError;
      if (qmp.isClosed) {
        throw new Error("source QMP connection closed (QEMU exited?)");
      }
      const info = await qmp.queryMigrate();
      lastInfo = info.ram ? info : { ...info, ram: lastInfo.ram };
      if (info.status) status = info.status;
      if (TERMINAL.has(status)) break;
      if (options.onProgress && info.ram && prev !== null) {
        const ram = info.ram;
        const ps = pageSizeOf(ram);
        const done = ram.normal + ram.duplicate - (prev as Snap).pages;
        const secs = (performance.now() - (prev as Snap).t) / 1000;
        options.onProgress({
          round: rounds.length,
          final: false,
          pagesDone: Math.min(done, roundStartDirty),
          pagesTotal: roundStartDirty,
          wireBytes: ram.transferred,
          elapsedMs: info["total-time"] ?? performance.now() - t0,
          pageSize: ps,
          sendRate: secs > 0 ? (done * ps) / secs : 0,
        });
      }
      if (performance.now() > deadline && abortReason === null) {
        abortReason = `timed out after ${options.timeoutMs ?? 1_800_000} ms`;
        await qmp.cancel();
      }
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, options.pollMs ?? 500);
      });
      wake = null;
    }
    await work.catch(() => {});
    return await finish();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    let partial: QemuMigrationReport | undefined;
    try {
      partial = await finish();
    } catch { /* no partial report */ }
    throw new QemuMigrationError(
      `Cannot drive QEMU migration to "${options.uri}": ${msg}`,
      partial,
      { cause: e },
    );
  } finally {
    offPass();
    offMig();
    options.signal?.removeEventListener("abort", onAbort);
  }
}

interface Snap {
  readonly t: number;
  readonly transferred: number;
  readonly pages: number;
  readonly normal: number;
  readonly duplicate: number;
}

function snapOf(ram: QmpMigrateRam, t: number): Snap {
  return {
    t,
    transferred: ram.transferred,
    pages: ram.normal + ram.duplicate,
    normal: ram.normal,
    duplicate: ram.duplicate,
  };
}

function mixOf(a: Snap, b: Snap): Record<string, number> {
  return { zero: b.duplicate - a.duplicate, page: b.normal - a.normal };
}

function pageSizeOf(ram: QmpMigrateRam): number {
  return ram["page-size"] || PAGE_SIZE;
}

function codecLabels(options: QemuMigrationOptions): string[] {
  const caps = options.capabilities ?? {};
  const p = options.parameters ?? {};
  const out = ["zero"];
  if (caps.xbzrle) out.push("xbzrle");
  if (caps.multifd) {
    out.push(`multifd-${String(p["multifd-compression"] ?? "none")}`);
  } else out.push("raw");
  return out;
}

/** The run state once it has left `finish-migrate` (or null when QMP is gone). */
async function settledStatus(
  qmp: QmpClient,
  timeoutMs: number,
): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const st = await qmp.queryStatus().then((s) => s.status).catch(() => null);
    if (st !== "finish-migrate" || Date.now() > deadline) return st;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitRunning(qmp: QmpClient, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let st = "unknown";
  while (Date.now() < deadline) {
    st = await qmp.queryStatus().then((s) => s.status).catch(() => "gone");
    if (st === "running" || st === "gone") return st;
    await new Promise((r) => setTimeout(r, 100));
  }
  return st;
}

/**
 * User + system CPU seconds of processes, from `/proc/PID/stat` (a pid that
 * is gone counts 0); with `children`, also that of their reaped children
 * (an `exec:` tunnel QEMU has waited for).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuSeconds } from "@hakobu/hakobu";
 *
 * const before = cpuSeconds([Deno.pid]);
 * let x = 0;
 * for (let i = 0; i < 1e7; i++) x += i; // burn some CPU
 * assert.ok(x > 0 && cpuSeconds([Deno.pid]) >= before);
 * assert.equal(cpuSeconds([2 ** 22 + 1]), 0); // a pid that is gone counts 0
 * ```
 */
export function cpuSeconds(
  pids: readonly number[],
  options: { children?: boolean } = {},
): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const t = procStatTimes(Deno.readTextFileSync(`/proc/${pid}/stat`));
      ticks += t.ticks;
      // reaped children (e.g. an exec: tunnel)
      if (options.children) ticks += t.childTicks;
    } catch { /* gone */ }
  }
  return ticks / PROC_TICKS_PER_SECOND;
}
