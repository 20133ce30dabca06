/**
 * `hakobu rebalance`: plan the moves that bring every host under its memory
 * target, print them, and (without `--dry-run`) run them: one
 * `rebalanceOnce` pass over an inventory source and a fabric (today a JSON
 * file and simulated hosts).
 *
 * @module
 */

import type { Plan } from "../../engine/plan.ts";
import { formatDuration } from "../../engine/format.ts";
import {
  ASSUMED_LINK_RATE as _ASSUMED_LINK_RATE,
  type Fabric,
  fileInventory,
  formatOutcome,
  type InventorySource,
  inventoryToJson,
  rebalanceOnce,
  type RebalanceOutcome,
  saveInventory,
  simFabric,
} from "../rebalance/mod.ts";

/** Link rate assumed for predictions when neither the policy, `--bandwidth` nor the inventory gives one: 10 Gbit/s. */
export const ASSUMED_LINK_RATE: number = _ASSUMED_LINK_RATE;

/** Options of `hakobu rebalance`. */
export interface RebalanceCommandOptions {
  /** Inventory JSON file. */
  inventory: string;
  /** The compiled policy. */
  plan: Plan;
  /** Override of the link rate (bytes/s; `null` = unpaced), from `--bandwidth`. */
  bandwidth?: number | null;
  /** Print the plan and what a run would do; change nothing. */
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
  /** The move history for cooldowns (JSON; written after a run). */
  state?: string;
  /** Cooldown in milliseconds (default 30 minutes). */
  cooldownMs?: number;
  /** VM names or globs that never move. */
  exclude?: string[];
  /** Tags whose VMs never move. */
  excludeTags?: string[];
}

/** Where the inventory comes from and what runs the moves. */
interface Cluster {
  readonly source: InventorySource;
  readonly fabric: () => Fabric;
  /** The fabric in words, for the dry run. */
  readonly fabricName: string;
}

/**
 * The inventory source and fabric the flags name. Today: `--inventory FILE`
 * and simulated hosts. (Live hosts, e.g. `--hosts libvirt:URI,...`, add a
 * live source and their fabric here.)
 */
function _cluster(opts: RebalanceCommandOptions): Cluster {
  return {
    source: fileInventory(opts.inventory),
    fabric: () => simFabric(),
    fabricName: "sim hosts",
  };
}

/**
 * Plans (and runs) a rebalance. Returns the exit code: 0 when every host
 * ends at or below the target and every move verified and was found on its
 * destination, 1 when a move failed or was not, 2 when some host cannot be
 * brought under the target.
 */
export async function rebalanceCommand(
  opts: RebalanceCommandOptions,
): Promise<number> {
  const cluster = _cluster(opts);
  const controller = new AbortController();
  const onSignal = () => controller.abort("interrupted (SIGINT)");
  Deno.addSignalListener("SIGINT", onSignal);
  let outcome: RebalanceOutcome;
  try {
    outcome = await rebalanceOnce({
      source: cluster.source,
      fabric: () => {
        if (!opts.json) {
          console.error(
            `running the moves on ${cluster.fabricName}, at most ${opts.maxConcurrent} at once, ${
              formatDuration(opts.timeoutMs)
            } each`,
          );
        }
        return cluster.fabric();
      },
      policy: opts.plan,
      bandwidth: opts.bandwidth,
      dryRun: opts.dryRun,
      maxConcurrent: opts.maxConcurrent,
      timeoutMs: opts.timeoutMs,
      maxHostMemoryPercent: opts.maxHostMemoryPercent,
      maxMoves: opts.maxMoves,
      exclude: { names: opts.exclude, tags: opts.excludeTags },
      statePath: opts.state,
      cooldownMs: opts.cooldownMs,
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
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }

  const write = !outcome.dryRun && opts.writeInventory !== undefined;
  if (write) {
    await saveInventory(opts.writeInventory!, outcome.after);
  }
  if (opts.json) {
    const { inventory: _before, after, results, ...rest } = outcome;
    console.log(JSON.stringify({
      ...rest,
      linkRateSource: outcome.linkRate.source,
      results: results.map(({ report: _report, ...r }) => r),
      inventory: inventoryToJson(after),
      ...(outcome.dryRun
        ? { wouldWriteInventory: opts.writeInventory ?? null }
        : { wroteInventory: write ? opts.writeInventory : null }),
    }));
  } else {
    console.log(formatOutcome(outcome, {
      fabric: cluster.fabricName,
      writeInventory: opts.writeInventory,
    }));
    if (write) console.log(`inventory written to ${opts.writeInventory}`);
  }
  return outcome.exitCode;
}
