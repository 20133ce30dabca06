/**
 * A rebalance plan and its results as text tables, as `hakobu rebalance`
 * and `examples/rebalance_cron.ts` print them.
 *
 * @module
 */

import Table from "cli-table3";
import { formatBytes, formatDuration } from "../../engine/format.ts";
import type { HostLoad, RebalancePlan } from "./planner.ts";
import type { MoveResult } from "./runner.ts";

/**
 * The plan for people: the moves, each host's memory before and after, the
 * unmovable VMs and the hosts that cannot be fixed.
 *
 * @param plan The plan `planMoves` made.
 * @param linkRateSource Where the link rate came from, e.g. `policy "default"`.
 *
 * @example
 * ```ts
 * import { formatPlan, parseInventory, planMoves } from "./mod.ts";
 *
 * const inventory = parseInventory({
 *   hosts: [{ name: "a", memory: "1GiB" }, { name: "b", memory: "1GiB" }],
 *   vms: [
 *     { name: "web", host: "a", memory: "600MiB" },
 *     { name: "db", host: "a", memory: "300MiB" },
 *   ],
 * });
 * const text = formatPlan(planMoves(inventory, { bandwidth: 1.25e9 }), "assumed");
 * console.assert(text.includes("db") && text.includes("a → b"));
 * ```
 */
export function formatPlan(
  plan: RebalancePlan,
  linkRateSource: string,
): string {
  const lines: string[] = [];
  lines.push(
    `target: every host at most ${plan.maxHostMemoryPercent}% of its memory; link ${
      (plan.bandwidth * 8 / 1e9).toFixed(2)
    } Gbit/s (${linkRateSource})`,
  );
  if (plan.moves.length === 0) {
    lines.push(
      plan.infeasible.length === 0
        ? "balanced: no moves needed"
        : "no moves possible",
    );
  } else {
    const moves = new Table({
      head: ["vm", "from → to", "size", "predicted", "downtime", "reason"],
      style: { head: [], border: [] },
    });
    for (const m of plan.moves) {
      moves.push([
        m.vm,
        `${m.from} → ${m.to}`,
        formatBytes(m.bytes),
        formatDuration(m.predictedMs),
        formatDuration(m.predictedDowntimeMs),
        m.reason,
      ]);
    }
    lines.push(`${plan.moves.length} move(s):`, moves.toString());
  }
  const hosts = new Table({
    head: ["host", "memory", "before", "after", "target"],
    style: { head: [], border: [] },
  });
  for (const h of plan.hosts) {
    hosts.push([
      h.host,
      formatBytes(h.capacityBytes),
      _load(h.beforeBytes, h),
      _load(h.afterBytes, h),
      formatBytes(h.targetBytes),
    ]);
  }
  lines.push(hosts.toString());
  for (const u of plan.unmovable) {
    lines.push(`unmovable: ${u.vm} on ${u.host}: ${u.reason}`);
  }
  for (const i of plan.infeasible) lines.push(`cannot fix: ${i.reason}`);
  return lines.join("\n");
}

/**
 * The run's results for people: one row per move, then how many verified.
 *
 * @param results `runPlan`'s results.
 *
 * @example
 * ```ts ignore
 * // inventory, plan, policy and fabric as in the module's example
 * const run = await runPlan(inventory, plan, { policy, fabric, maxConcurrent: 2 });
 * console.log(formatResults(run.results));
 * ```
 */
export function formatResults(results: readonly MoveResult[]): string {
  const table = new Table({
    head: ["vm", "from → to", "result", "time", "downtime", "wire", "error"],
    style: { head: [], border: [] },
  });
  for (const r of results) {
    table.push([
      r.move.vm,
      `${r.move.from} → ${r.move.to}`,
      r.verified ? "verified" : "FAILED",
      formatDuration(r.totalTimeMs),
      r.verified ? formatDuration(r.downtimeMs) : "-",
      r.verified ? formatBytes(r.wireBytes) : "-",
      r.error ?? "",
    ]);
  }
  const ok = results.filter((r) => r.verified).length;
  return `${table.toString()}\n${ok} of ${results.length} move(s) verified`;
}

function _load(bytes: number, h: HostLoad): string {
  const pct = (bytes / h.capacityBytes) * 100;
  return `${formatBytes(bytes)} (${pct.toFixed(1)}%)${
    bytes > h.targetBytes ? " !" : ""
  }`;
}
