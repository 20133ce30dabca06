/**
 * `hakobu rebalance`: plan the moves that bring every host under its memory
 * target, print them, and (without `--dry-run`) run them: one
 * `rebalanceOnce` pass over an inventory source and a fabric: a JSON file
 * and simulated hosts (`--inventory`), or live libvirt hosts (`--hosts
 * libvirt:URI,...`), read and moved through the libvirt backend.
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
  InventoryError,
  type InventorySource,
  inventoryToJson,
  libvirtFabric,
  type LibvirtHostRef,
  libvirtInventory,
  parseHostMemory,
  parseHostsFlag,
  rebalanceOnce,
  type RebalanceOutcome,
  saveInventory,
  simFabric,
} from "../rebalance/mod.ts";

/** Link rate assumed for predictions when neither the policy, `--bandwidth` nor the inventory gives one: 10 Gbit/s. */
export const ASSUMED_LINK_RATE: number = _ASSUMED_LINK_RATE;

/** Options of `hakobu rebalance`. */
export interface RebalanceCommandOptions {
  /** Inventory JSON file (exactly one of this and {@link hosts}). */
  inventory?: string;
  /** `--hosts`: live libvirt hosts, `libvirt:URI,...` (exactly one of this and {@link inventory}). */
  hosts?: string;
  /** `--host-memory`: `SIZE` or `NAME=SIZE`, memory VMs may use on libvirt hosts (default: the node's). */
  hostMemory?: string[];
  /** `--dirty-rate-sample`: seconds to measure each domain's dirty rate on libvirt hosts (0: the last measurement). */
  dirtyRateSeconds?: number;
  /** `--sample-pages`: pages of each domain read to measure its memory profile on libvirt hosts (0: none). */
  samplePages?: number;
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
export interface Cluster {
  /** Where the inventory is read from. */
  readonly source: InventorySource;
  /** Makes the fabric the moves run through. */
  readonly fabric: () => Fabric;
  /** The fabric in words, for the dry run. */
  readonly fabricName: string;
}

/**
 * The inventory source and fabric the flags name: `--inventory FILE` and
 * simulated hosts, or `--hosts libvirt:URI,...`: the live hosts, moved
 * through the libvirt backend.
 *
 * @throws {InventoryError} when both or neither are given, or `--hosts`
 *   does not parse.
 */
export function rebalanceCluster(
  opts: Pick<
    RebalanceCommandOptions,
    | "inventory"
    | "hosts"
    | "hostMemory"
    | "dirtyRateSeconds"
    | "samplePages"
    | "json"
  >,
): Cluster {
  if ((opts.inventory === undefined) === (opts.hosts === undefined)) {
    throw new InventoryError(
      opts.hosts === undefined ? "--inventory" : "--hosts",
      opts.hosts === undefined
        ? "No inventory: give --inventory FILE (a JSON inventory, run on sim hosts) or --hosts libvirt:URI,... (live libvirt hosts)"
        : "Both --inventory and --hosts given: give one, --inventory FILE (a JSON inventory) or --hosts libvirt:URI,... (live libvirt hosts)",
    );
  }
  if (opts.hosts === undefined) {
    if (
      opts.hostMemory?.length || opts.dirtyRateSeconds !== undefined ||
      opts.samplePages !== undefined
    ) {
      throw new InventoryError(
        "--host-memory",
        "--host-memory, --dirty-rate-sample and --sample-pages apply to --hosts (live libvirt hosts); a JSON inventory gives each host's memory and each VM's profile itself",
      );
    }
    return {
      source: fileInventory(opts.inventory!),
      fabric: () => simFabric(),
      fabricName: "sim hosts",
    };
  }
  let hosts: LibvirtHostRef[] = parseHostsFlag(opts.hosts);
  let allMemory: number | undefined;
  for (const text of opts.hostMemory ?? []) {
    const m = parseHostMemory(text);
    if (m.name === undefined) {
      allMemory = m.memoryBytes;
      continue;
    }
    const i = hosts.findIndex((h) => h.name === m.name);
    if (i < 0) {
      throw new InventoryError(
        "--host-memory",
        `Invalid --host-memory "${text}": no host of --hosts is named "${m.name}" (name one with NAME=libvirt:URI)`,
      );
    }
    hosts = hosts.with(i, { ...hosts[i], memoryBytes: m.memoryBytes });
  }
  const log = opts.json ? undefined : (l: string) => console.error(l);
  const source = libvirtInventory(hosts, {
    memoryBytes: allMemory,
    dirtyRateSeconds: opts.dirtyRateSeconds ?? 1,
    ...(opts.samplePages === undefined
      ? {}
      : { samplePages: opts.samplePages }),
    log,
  });
  return {
    source,
    fabric: () => libvirtFabric(source, { log }),
    fabricName: "libvirt hosts (libvirt backend)",
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
  const cluster = rebalanceCluster(opts);
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
