/**
 * `hakobu rebalance`: plan the moves that bring every host under its memory
 * target, print them, and (without `--dry-run`) run them on simulated hosts.
 *
 * @module
 */

import type { Plan } from "../../engine/plan.ts";
import { formatDuration } from "../../engine/format.ts";
import {
  formatPlan,
  formatResults,
  type Inventory,
  inventoryToJson,
  loadInventory,
  type MoveResult,
  planMoves,
  runPlan,
  simFabric,
} from "../rebalance/mod.ts";
import { applyMoves } from "../rebalance/planner.ts";
import { writeText } from "./_write_text.ts";

/** Link rate assumed for predictions when neither the policy, `--bandwidth` nor the inventory gives one: 10 Gbit/s. */
export const ASSUMED_LINK_RATE = 1.25e9;

/** Options of `hakobu rebalance`. */
export interface RebalanceCommandOptions {
  /** Inventory JSON file. */
  inventory: string;
  /** The compiled policy. */
  plan: Plan;
  /** Override of the link rate (bytes/s; `null` = unpaced), from `--bandwidth`. */
  bandwidth?: number | null;
  /** Print the plan only. */
  dryRun?: boolean;
  /** Most migrations at once. */
  maxConcurrent: number;
  /** Per-migration limit in milliseconds. */
  timeoutMs: number;
  /** Override of the inventory's target percentage. */
  maxHostMemoryPercent?: number;
  /** Override of the inventory's move limit. */
  maxMoves?: number;
  /** Print JSON instead of tables. */
  json?: boolean;
  /** Write the updated inventory here. */
  writeInventory?: string;
}

/**
 * Plans (and runs) a rebalance. Returns the exit code: 0 when every host
 * ends at or below the target and every move verified, 1 when a move failed,
 * 2 when some host cannot be brought under the target.
 */
export async function rebalanceCommand(
  opts: RebalanceCommandOptions,
): Promise<number> {
  const inventory = await loadInventory(opts.inventory);
  const policy: Plan = opts.bandwidth === undefined
    ? opts.plan
    : { ...opts.plan, bandwidth: opts.bandwidth };
  const { rate, source } = policy.bandwidth !== null
    ? {
      rate: policy.bandwidth,
      source: opts.bandwidth === undefined
        ? `policy "${policy.name}"`
        : "--bandwidth",
    }
    : inventory.targets.linkRate !== undefined
    ? { rate: inventory.targets.linkRate, source: "inventory targets.linkRate" }
    : {
      rate: ASSUMED_LINK_RATE,
      source: `assumed: policy "${policy.name}" is unpaced`,
    };
  const plan = planMoves(inventory, {
    bandwidth: rate,
    policy,
    maxHostMemoryPercent: opts.maxHostMemoryPercent,
    maxMoves: opts.maxMoves,
  });
  const infeasibleCode = plan.infeasible.length > 0 ? 2 : 0;

  if (opts.dryRun) {
    if (opts.writeInventory) {
      await _write(opts.writeInventory, applyMoves(inventory, plan.moves));
    }
    if (opts.json) {
      console.log(
        JSON.stringify({ dryRun: true, linkRateSource: source, plan }),
      );
    } else {
      console.log(formatPlan(plan, source));
      if (opts.writeInventory) {
        console.log(`planned inventory written to ${opts.writeInventory}`);
      }
    }
    return infeasibleCode;
  }

  if (!opts.json) {
    console.log(formatPlan(plan, source));
    if (plan.moves.length > 0) {
      console.error(
        `running ${plan.moves.length} move(s) on sim hosts, at most ${opts.maxConcurrent} at once, ${
          formatDuration(opts.timeoutMs)
        } each`,
      );
    }
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort("interrupted (SIGINT)");
  Deno.addSignalListener("SIGINT", onSignal);
  let results: readonly MoveResult[];
  let after: Inventory;
  try {
    await using fabric = simFabric();
    const run = await runPlan(inventory, plan, {
      policy,
      fabric,
      maxConcurrent: opts.maxConcurrent,
      timeoutMs: opts.timeoutMs,
      signal: controller.signal,
      onEvent: opts.json ? undefined : (e) => {
        if (e.type === "start") {
          console.error(`  ${e.move.vm}: ${e.move.from} → ${e.move.to} ...`);
        } else {
          console.error(
            `  ${e.result.move.vm}: ${
              e.result.verified ? "verified" : `FAILED: ${e.result.error}`
            }`,
          );
        }
      },
    });
    results = run.results;
    after = run.inventory;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (opts.writeInventory) await _write(opts.writeInventory, after);
  if (opts.json) {
    console.log(JSON.stringify({
      dryRun: false,
      linkRateSource: source,
      plan,
      results: results.map(({ report: _report, ...r }) => r),
      inventory: inventoryToJson(after),
    }));
  } else {
    if (results.length > 0) console.log(formatResults(results));
    if (opts.writeInventory) {
      console.log(`inventory written to ${opts.writeInventory}`);
    }
  }
  return results.some((r) => !r.verified) ? 1 : infeasibleCode;
}

async function _write(path: string, inventory: Inventory): Promise<void> {
  await writeText(
    path,
    JSON.stringify(inventoryToJson(inventory), null, 2) + "\n",
  );
}
