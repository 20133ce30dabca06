/**
 * The rebalance runner: runs a plan's moves with the engine, at most
 * `maxConcurrent` at once and at most each host's `maxMigrations` involving
 * it, each under a timeout, and updates the inventory for the moves that
 * verified. How to reach a VM and a destination is the {@link Fabric}'s
 * business: `simFabric()` builds simulated VMs and in-process receivers; a
 * real backend implements the same interface.
 *
 * @module
 */

import type { SourceDriver } from "../../engine/driver.ts";
import type { Plan } from "../../engine/plan.ts";
import { type Duplex, migrate } from "../../engine/precopy.ts";
import type { MigrationReport } from "../../engine/report.ts";
import type { HostSpec, Inventory, VmSpec } from "./inventory.ts";
import { applyMoves, type Move, type RebalancePlan } from "./planner.ts";
import { MigrationSlots } from "./_slots.ts";

/** What a fabric needs to open one migration. */
export interface FabricRequest {
  /** The planned move. */
  readonly move: Move;
  /** The VM, as the inventory describes it. */
  readonly vm: VmSpec;
  /** Source host. */
  readonly from: HostSpec;
  /** Destination host. */
  readonly to: HostSpec;
  /** Aborted when the move times out or the run is cancelled. */
  readonly signal: AbortSignal;
}

/**
 * One opened migration that hakobu's engine runs: the VM's source driver
 * and a connection to a receiver on the destination (the sim fabric's kind).
 */
export interface EngineSession {
  /** The VM to migrate. */
  readonly source: SourceDriver;
  /** A connection to a receiver on the destination. */
  readonly conn: Duplex;
  /** Releases the source driver and the connection (after the migration settled). */
  close(): Promise<void>;
}

/** What a {@link BackendSession} is asked to run. */
export interface BackendMigrateOptions {
  /** The compiled policy that steers the migration. */
  readonly plan: Plan;
  /** Aborted on the move's timeout or when the run is cancelled: abort the migration, leave the VM on the source. */
  readonly signal: AbortSignal;
}

/**
 * One opened migration that a hypervisor backend runs itself (libvirt's
 * own migration steered by the policy, for instance) and reports in the
 * engine's `MigrationReport`.
 */
export interface BackendSession {
  /** Runs the migration under the policy; `verified` only when the VM runs on the destination. */
  migrate(options: BackendMigrateOptions): Promise<MigrationReport>;
  /** Releases what the session holds (after the migration settled). */
  close(): Promise<void>;
}

/** One opened migration: run by the engine, or by a backend. */
export type FabricSession = EngineSession | BackendSession;

/**
 * How the runner reaches VMs and hosts: sim, QEMU, Xen, libvirt. A fabric
 * opens one migration at a time on request, as an {@link EngineSession}
 * (the runner drives it with hakobu's engine) or a {@link BackendSession}
 * (the backend migrates under the policy itself); the runner applies the
 * limits and timeouts either way.
 */
export interface Fabric {
  /** Name for logs, e.g. `"sim"`. */
  readonly name: string;
  /** Opens one migration. */
  open(request: FabricRequest): Promise<FabricSession>;
  /**
   * Where the fabric's hosts say the VMs run now: `base` with each VM the
   * fabric moved on the host it is on. Optional: a fabric over live hosts
   * whose inventory source is live (an `InventorySource` with `live: true`)
   * is checked by reading the source again instead. The sim fabric answers
   * from what its receivers verified.
   */
  observe?(base: Inventory): Promise<Inventory>;
  /** Releases what the fabric holds (listeners, receivers). */
  close(): Promise<void>;
}

/** Options of {@link runPlan}. */
export interface RunPlanOptions {
  /** The compiled migration policy. */
  readonly policy: Plan;
  /** How to reach VMs and hosts. */
  readonly fabric: Fabric;
  /** Most migrations in flight at once (default 2). */
  readonly maxConcurrent?: number;
  /** Most in flight per host when the host sets no `maxMigrations` (default: no limit). */
  readonly maxPerHost?: number;
  /** Per-migration time limit in milliseconds (default 5 minutes). */
  readonly timeoutMs?: number;
  /** After an abort, how long to wait for the engine before closing the session (default 2000 ms). */
  readonly abortGraceMs?: number;
  /** Cancels the whole run: moves not started are skipped, running ones aborted. */
  readonly signal?: AbortSignal;
  /** Called when a move starts and when it ends. */
  readonly onEvent?: (event: RunEvent) => void;
}

/** Progress of a run. */
export type RunEvent =
  | { readonly type: "start"; readonly move: Move }
  | { readonly type: "end"; readonly result: MoveResult };

/** How one move went. */
export interface MoveResult {
  /** The planned move. */
  readonly move: Move;
  /** Whether the destination verified the memory (only then did the VM move). */
  readonly verified: boolean;
  /** Total migration time in milliseconds (until failure when it failed). */
  readonly totalTimeMs: number;
  /** Downtime in milliseconds (0 when it failed). */
  readonly downtimeMs: number;
  /** Bytes on the wire (0 when it failed). */
  readonly wireBytes: number;
  /** Why it failed, or why it was skipped. */
  readonly error?: string;
  /** The engine's report, when it finished. */
  readonly report?: MigrationReport;
}

/** The outcome of {@link runPlan}. */
export interface RunResult {
  /** One result per planned move, in plan order. */
  readonly results: readonly MoveResult[];
  /** The inventory with each verified move applied. */
  readonly inventory: Inventory;
  /** Whether every move verified. */
  readonly ok: boolean;
}

/**
 * Runs a plan's moves and returns a result per move and the updated
 * inventory. Moves start in plan order as the limits allow; a move that
 * fails, times out or does not verify leaves its VM where it was.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, when } from "@hakobu/hakobu";
 * import { parseInventory, planMoves, runPlan, simFabric } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "a", memory: "64MiB" }, { name: "b", memory: "64MiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "48MiB" },
 *     { name: "small", host: "a", memory: "8MiB" },
 *   ],
 * });
 * const plan = planMoves(inv, { bandwidth: 125e6 });
 * await using fabric = simFabric();
 * const run = await runPlan(inv, plan, {
 *   policy: policy("p").switchover(when.rounds(3)).compile(),
 *   fabric,
 *   maxConcurrent: 2,
 *   timeoutMs: 60_000,
 * });
 * assert.deepEqual(run.results.map((r) => r.verified), [true]);
 * ```
 */
export async function runPlan(
  inventory: Inventory,
  plan: RebalancePlan,
  options: RunPlanOptions,
): Promise<RunResult> {
  const slots = new MigrationSlots(inventory.hosts, options);
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  const hosts = new Map(inventory.hosts.map((h) => [h.name, h]));
  const vms = new Map(inventory.vms.map((v) => [v.name, v]));
  const results: (MoveResult | undefined)[] = plan.moves.map(() => undefined);
  const pending = plan.moves.map((m, i) => ({ m, i }));
  const running = new Set<Promise<void>>();

  // Moves that cannot run at all are settled first.
  for (let k = pending.length - 1; k >= 0; k--) {
    const { m, i } = pending[k];
    const vm = vms.get(m.vm);
    const problem = !vm
      ? `VM "${m.vm}" is not in the inventory`
      : vm.host !== m.from
      ? `VM "${m.vm}" runs on "${vm.host}", not on "${m.from}"`
      : !hosts.has(m.to)
      ? `host "${m.to}" is not in the inventory`
      : null;
    if (problem) {
      results[i] = _failed(m, 0, problem);
      options.onEvent?.({ type: "end", result: results[i]! });
      pending.splice(k, 1);
    }
  }

  const start = (m: Move, i: number): void => {
    slots.take(m);
    options.onEvent?.({ type: "start", move: m });
    const p = _runOne(m, {
      vm: vms.get(m.vm)!,
      from: hosts.get(m.from)!,
      to: hosts.get(m.to)!,
      policy: options.policy,
      fabric: options.fabric,
      timeoutMs,
      graceMs: options.abortGraceMs ?? 2000,
      signal: options.signal,
    }).then((r) => {
      results[i] = r;
      slots.release(m);
      running.delete(p);
      options.onEvent?.({ type: "end", result: r });
    });
    running.add(p);
  };

  while (pending.length > 0 || running.size > 0) {
    if (options.signal?.aborted) {
      for (const { m, i } of pending.splice(0)) {
        results[i] = _failed(
          m,
          0,
          `skipped: the run was cancelled (${_reason(options.signal)})`,
        );
        options.onEvent?.({ type: "end", result: results[i]! });
      }
    }
    for (let k = 0; k < pending.length;) {
      const { m, i } = pending[k];
      if (slots.canStart(m)) {
        pending.splice(k, 1);
        start(m, i);
      } else k++;
    }
    if (running.size === 0) {
      // Nothing can start and nothing runs: a host limit of 0 is impossible,
      // so this only happens when pending is empty.
      break;
    }
    await Promise.race(running);
  }

  const done = results.map((r, i) => r ?? _failed(plan.moves[i], 0, "not run"));
  const verified = done.filter((r) => r.verified).map((r) => r.move);
  return {
    results: done,
    inventory: applyMoves(inventory, verified),
    ok: done.every((r) => r.verified),
  };
}

async function _runOne(
  move: Move,
  ctx: {
    vm: VmSpec;
    from: HostSpec;
    to: HostSpec;
    policy: Plan;
    fabric: Fabric;
    timeoutMs: number;
    graceMs: number;
    signal?: AbortSignal;
  },
): Promise<MoveResult> {
  const t0 = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        `timed out after ${ctx.timeoutMs} ms (the per-migration limit)`,
      ),
    ctx.timeoutMs,
  );
  const onCancel = () =>
    controller.abort(`the run was cancelled (${_reason(ctx.signal!)})`);
  ctx.signal?.addEventListener("abort", onCancel, { once: true });
  if (ctx.signal?.aborted) onCancel();
  let session: FabricSession | null = null;
  let grace: ReturnType<typeof setTimeout> | undefined;
  try {
    session = await ctx.fabric.open({
      move,
      vm: ctx.vm,
      from: ctx.from,
      to: ctx.to,
      signal: controller.signal,
    });
    const opened = session;
    // If the engine does not notice the abort in time (a stuck link), close under it.
    const onAbort = () => {
      grace = setTimeout(() => {
        opened.close().catch(() => {});
      }, ctx.graceMs);
    };
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener("abort", onAbort, { once: true });
    const report = "migrate" in session
      ? await session.migrate({ plan: ctx.policy, signal: controller.signal })
      : await migrate({
        plan: ctx.policy,
        source: session.source,
        conn: session.conn,
        signal: controller.signal,
      });
    return {
      move,
      verified: report.verified,
      totalTimeMs: report.totalTimeMs,
      downtimeMs: report.downtimeMs,
      wireBytes: report.wireBytes,
      ...(report.verified ? {} : { error: report.outcome }),
      report,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const why = controller.signal.aborted && !message.includes("timed out") &&
        !message.includes("cancelled")
      ? `${message} (${_reason(controller.signal)})`
      : message;
    return _failed(move, performance.now() - t0, why);
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
    ctx.signal?.removeEventListener("abort", onCancel);
    await session?.close().catch(() => {});
  }
}

function _failed(move: Move, ms: number, error: string): MoveResult {
  return {
    move,
    verified: false,
    totalTimeMs: ms,
    downtimeMs: 0,
    wireBytes: 0,
    error,
  };
}

function _reason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return r instanceof Error ? r.message : String(r ?? "aborted");
}
