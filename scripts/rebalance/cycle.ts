/**
 * One rebalance pass, as `hakobu rebalance` and the cron examples run it:
 * read the inventory from its source, hold back the VMs that are excluded
 * or in their cooldown (from the state file), plan, and then either stop
 * there (a dry run: nothing is opened, moved or written) or run the moves
 * through the fabric, read the inventory back (a live source again, or the
 * fabric's own view) to check each VM is where its result says, and record
 * the moves in the state file.
 *
 * @module
 */

import { formatDuration } from "../../engine/format.ts";
import type { Plan } from "../../engine/plan.ts";
import { checkPlacements, type PlacementCheck } from "./check.ts";
import { excludeReason, type ExcludeRules } from "./exclude.ts";
import type { Inventory } from "./inventory.ts";
import {
  applyMoves,
  type Hold,
  planMoves,
  type RebalancePlan,
} from "./planner.ts";
import {
  type Fabric,
  type MoveResult,
  type RunEvent,
  runPlan,
} from "./runner.ts";
import {
  DEFAULT_TIMEOUT_MS,
  type Schedule,
  scheduleMoves,
} from "./schedule.ts";
import type { InventorySource } from "./source.ts";
import {
  type Cooldown,
  cooldowns,
  DEFAULT_COOLDOWN_MS,
  loadState,
  type MoveRecord,
  recordMoves,
  saveState,
  STATE_KEEP_MS,
} from "./state.ts";

/** Link rate assumed for predictions when neither the policy, the caller nor the inventory gives one: 10 Gbit/s. */
export const ASSUMED_LINK_RATE = 1.25e9;

/** Options of {@link rebalanceOnce}. */
export interface RebalanceOnceOptions {
  /** Where the inventory comes from. */
  readonly source: InventorySource;
  /**
   * Makes the fabric the moves run through. Called only when there are moves
   * to run (never in a dry run); the fabric is closed at the end of the pass.
   */
  readonly fabric: () => Fabric;
  /** The compiled migration policy. */
  readonly policy: Plan;
  /** Overrides the policy's link rate (bytes/s; `null`: unpaced), e.g. from `--bandwidth`. */
  readonly bandwidth?: number | null;
  /** Plan only: open nothing, move nothing, write nothing. */
  readonly dryRun?: boolean;
  /** Most migrations at once (default 2). */
  readonly maxConcurrent?: number;
  /** Most per host when the host sets no `maxMigrations`. */
  readonly maxPerHost?: number;
  /** Per-migration limit in milliseconds (default 5 minutes). */
  readonly timeoutMs?: number;
  /** Overrides the inventory's memory target. */
  readonly maxHostMemoryPercent?: number;
  /** Overrides the inventory's move limit. */
  readonly maxMoves?: number;
  /** Overrides the inventory's per-host move limit. */
  readonly maxMovesPerHost?: number;
  /** VMs that never move (still counted for their host's load). */
  readonly exclude?: ExcludeRules;
  /**
   * The state file: cooldowns come from it, and a pass that ran moves records
   * them in it. Absent: no history, so no cooldown.
   */
  readonly statePath?: string;
  /** How long a moved VM stays put, in milliseconds (default 30 minutes). */
  readonly cooldownMs?: number;
  /** The clock (tests). */
  readonly now?: () => Date;
  /** Cancels the run: moves not started are skipped, running ones aborted. */
  readonly signal?: AbortSignal;
  /** Called when a move starts and when it ends. */
  readonly onEvent?: (event: RunEvent) => void;
}

/** What one pass did (or, in a dry run, would do). */
export interface RebalanceOutcome {
  /** The inventory source's description. */
  readonly source: string;
  /** The inventory as read before planning. */
  readonly inventory: Inventory;
  /** The link rate the predictions used, bytes per second, and where it came from. */
  readonly linkRate: { readonly rate: number; readonly source: string };
  /** The plan (with the VMs held back in `skipped`). */
  readonly plan: RebalancePlan;
  /** The order the moves run (dry run: would run) in, with predicted times. */
  readonly schedule: Schedule;
  /** Whether this was a dry run. */
  readonly dryRun: boolean;
  /** One result per move, in plan order (empty in a dry run). */
  readonly results: readonly MoveResult[];
  /**
   * What the inventory was read back from after the moves (`null`: nothing
   * ran, or neither the source nor the fabric can tell).
   */
  readonly readBack: string | null;
  /** Each move checked against the inventory read back (empty when there was none). */
  readonly checks: readonly PlacementCheck[];
  /**
   * The inventory after the pass: the one read back, else the input with the
   * verified moves applied; in a dry run, the planned one.
   */
  readonly after: Inventory;
  /** The state file, the cooldown used, and how many moves this pass recorded (0 in a dry run). */
  readonly state: {
    readonly path: string;
    readonly cooldownMs: number;
    readonly recorded: number;
  } | null;
  /**
   * 0: every host ends at or below the target and every move verified and
   * checked; 1: a move failed or a check did not match; 2: some host cannot
   * be brought under the target.
   */
  readonly exitCode: 0 | 1 | 2;
}

/**
 * Runs one rebalance pass (see the module doc).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadPolicy } from "@hakobu/hakobu";
 * import { parseInventory, rebalanceOnce, simFabric, staticInventory } from "./mod.ts";
 *
 * const inventory = parseInventory({
 *   hosts: [{ name: "a", memory: "64MiB" }, { name: "b", memory: "64MiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "48MiB" },
 *     { name: "small", host: "a", memory: "8MiB" },
 *   ],
 * });
 * const policy = await loadPolicy("examples/policies/default.ts");
 * const dir = await Deno.makeTempDir();
 * const options = {
 *   source: staticInventory(inventory),
 *   fabric: () => simFabric(),
 *   policy,
 *   statePath: `${dir}/state.json`,
 * };
 * const first = await rebalanceOnce(options);
 * assert.equal(first.exitCode, 0);
 * // Read back from the sim's receivers: small runs on b now.
 * assert.deepEqual(first.checks.map((c) => c.detail), ['on "b"']);
 * // A dry run on the old inventory: small is in its cooldown.
 * const again = await rebalanceOnce({ ...options, dryRun: true });
 * assert.deepEqual(
 *   again.plan.skipped.map((s) => `${s.vm}: ${s.kind}`),
 *   ["small: cooldown"],
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function rebalanceOnce(
  options: RebalanceOnceOptions,
): Promise<RebalanceOutcome> {
  const now = options.now ?? (() => new Date());
  const inventory = await options.source.read();
  const policy: Plan = options.bandwidth === undefined
    ? options.policy
    : { ...options.policy, bandwidth: options.bandwidth };
  const linkRate = policy.bandwidth !== null
    ? {
      rate: policy.bandwidth,
      source: options.bandwidth === undefined
        ? `policy "${policy.name}"`
        : "--bandwidth",
    }
    : inventory.targets.linkRate !== undefined
    ? { rate: inventory.targets.linkRate, source: "inventory targets.linkRate" }
    : {
      rate: ASSUMED_LINK_RATE,
      source: `assumed: policy "${policy.name}" is unpaced`,
    };

  const cooldownMs = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  if (!(cooldownMs >= 0)) {
    throw new RangeError(
      `Invalid cooldown "${cooldownMs}": expected milliseconds ≥ 0`,
    );
  }
  const state = options.statePath !== undefined
    ? await loadState(options.statePath)
    : null;
  const hold = new Map<string, Hold>();
  const started = now();
  const cooling: ReadonlyMap<string, Cooldown> = state
    ? cooldowns(state, { now: started, cooldownMs })
    : new Map();
  for (const vm of inventory.vms) {
    const excluded = options.exclude
      ? excludeReason(vm, options.exclude)
      : null;
    if (excluded) {
      hold.set(vm.name, { kind: "excluded", reason: excluded });
      continue;
    }
    const c = cooling.get(vm.name);
    if (c) {
      const ago = started.getTime() - Date.parse(c.move.at);
      hold.set(vm.name, {
        kind: "cooldown",
        reason: `in its cooldown: moved ${c.move.from} → ${c.move.to} at ${
          new Date(c.move.at).toISOString()
        } (${
          formatDuration(Math.max(0, ago))
        } ago), may move again from ${c.until.toISOString()} (cooldown ${
          formatDuration(cooldownMs)
        })`,
      });
    }
  }

  const plan = planMoves(inventory, {
    bandwidth: linkRate.rate,
    policy,
    maxHostMemoryPercent: options.maxHostMemoryPercent,
    maxMoves: options.maxMoves,
    maxMovesPerHost: options.maxMovesPerHost,
    hold,
  });
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const schedule = scheduleMoves(plan, inventory.hosts, {
    maxConcurrent: options.maxConcurrent,
    maxPerHost: options.maxPerHost,
    timeoutMs,
  });
  const infeasibleCode = plan.infeasible.length > 0 ? 2 : 0;
  const stateInfo = options.statePath !== undefined
    ? { path: options.statePath, cooldownMs, recorded: 0 }
    : null;
  const base = {
    source: options.source.description,
    inventory,
    linkRate,
    plan,
    schedule,
  };

  if (options.dryRun || plan.moves.length === 0) {
    return {
      ...base,
      dryRun: options.dryRun === true,
      results: [],
      readBack: null,
      checks: [],
      after: options.dryRun ? applyMoves(inventory, plan.moves) : inventory,
      state: stateInfo,
      exitCode: infeasibleCode,
    };
  }

  const startedMoves = new Set<string>();
  const fabric = options.fabric();
  let results: readonly MoveResult[];
  let after: Inventory;
  let readBack: string | null = null;
  let checks: PlacementCheck[] = [];
  try {
    const run = await runPlan(inventory, plan, {
      policy,
      fabric,
      maxConcurrent: options.maxConcurrent,
      maxPerHost: options.maxPerHost,
      timeoutMs,
      signal: options.signal,
      onEvent: (e) => {
        if (e.type === "start") startedMoves.add(e.move.vm);
        options.onEvent?.(e);
      },
    });
    results = run.results;
    after = run.inventory;
    let observed: Inventory | null = null;
    if (options.source.live) {
      observed = await options.source.read();
      readBack = options.source.description;
    } else if (fabric.observe) {
      observed = await fabric.observe(inventory);
      readBack = `the ${fabric.name} fabric`;
    }
    if (observed) {
      checks = checkPlacements(results, observed, readBack!);
      after = observed;
    }
  } finally {
    await fabric.close();
  }

  let recorded = 0;
  if (state && options.statePath !== undefined) {
    const at = now();
    const found = new Map(checks.map((c) => [c.vm, c.found]));
    const records: MoveRecord[] = results
      .filter((r) => startedMoves.has(r.move.vm))
      .map((r) => ({
        vm: r.move.vm,
        from: r.move.from,
        to: r.move.to,
        at: at.toISOString(),
        moved: found.has(r.move.vm)
          ? found.get(r.move.vm) === r.move.to
          : r.verified,
      }));
    recorded = records.length;
    await saveState(
      options.statePath,
      recordMoves(state, records, {
        now: at,
        keepMs: Math.max(STATE_KEEP_MS, cooldownMs),
      }),
    );
  }
  const failed = results.some((r) => !r.verified) || checks.some((c) => !c.ok);
  return {
    ...base,
    dryRun: false,
    results,
    readBack,
    checks,
    after,
    state: stateInfo ? { ...stateInfo, recorded } : null,
    exitCode: failed ? 1 : infeasibleCode,
  };
}
