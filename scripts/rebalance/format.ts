/**
 * A rebalance plan and its results as text tables, as `hakobu rebalance`
 * and `examples/rebalance_cron.ts` print them.
 *
 * @module
 */

import Table from "cli-table3";
import { formatBytes, formatDuration } from "../../engine/format.ts";
import type { PlacementCheck } from "./check.ts";
import type { RebalanceOutcome } from "./cycle.ts";
import type { HostLoad, RebalancePlan } from "./planner.ts";
import type { MoveResult } from "./runner.ts";
import type { Schedule } from "./schedule.ts";

/**
 * The plan for people: the moves (with their predicted time, downtime and
 * bytes on the wire, and their wave when a schedule is given), each host's
 * memory before and after, the VMs held back (excluded, in their cooldown)
 * or unmovable, and the hosts that cannot be fixed.
 *
 * @param plan The plan `planMoves` made.
 * @param linkRateSource Where the link rate came from, e.g. `policy "default"`.
 * @param schedule The run's predicted order (`scheduleMoves`), for the wave column.
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
  schedule?: Schedule,
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
      head: [
        "vm",
        "from → to",
        "size",
        "predicted",
        "downtime",
        "wire",
        ...(schedule ? ["wave"] : []),
        "reason",
      ],
      style: { head: [], border: [] },
    });
    plan.moves.forEach((m, i) => {
      moves.push([
        m.vm,
        `${m.from} → ${m.to}`,
        formatBytes(m.bytes),
        formatDuration(m.predictedMs),
        formatDuration(m.predictedDowntimeMs),
        formatBytes(m.predictedWireBytes),
        ...(schedule ? [String(schedule.moves[i]?.wave ?? "")] : []),
        m.reason,
      ]);
    });
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
  for (const u of plan.skipped) {
    lines.push(`skipped: ${u.vm} on ${u.host}: ${u.reason}`);
  }
  for (const u of plan.unmovable) {
    lines.push(`unmovable: ${u.vm} on ${u.host}: ${u.reason}`);
  }
  for (const i of plan.infeasible) lines.push(`cannot fix: ${i.reason}`);
  return lines.join("\n");
}

/**
 * The run's results for people: one row per move, then how many verified;
 * with `checks`, a column with where the inventory read back has each VM.
 *
 * @param results `runPlan`'s results.
 * @param checks `checkPlacements`'s answer for the same results.
 *
 * @example
 * ```ts ignore
 * // inventory, plan, policy and fabric as in the module's example
 * const run = await runPlan(inventory, plan, { policy, fabric, maxConcurrent: 2 });
 * console.log(formatResults(run.results));
 * ```
 */
export function formatResults(
  results: readonly MoveResult[],
  checks: readonly PlacementCheck[] = [],
): string {
  const checked = checks.length > 0;
  const table = new Table({
    head: [
      "vm",
      "from → to",
      "result",
      "time",
      "downtime",
      "wire",
      "error",
      ...(checked ? ["read back"] : []),
    ],
    style: { head: [], border: [] },
  });
  results.forEach((r, i) => {
    const c = checks[i];
    table.push([
      r.move.vm,
      `${r.move.from} → ${r.move.to}`,
      r.verified ? "verified" : "FAILED",
      formatDuration(r.totalTimeMs),
      r.verified ? formatDuration(r.downtimeMs) : "-",
      r.verified ? formatBytes(r.wireBytes) : "-",
      r.error ?? "",
      ...(checked ? [c ? `${c.ok ? "ok" : "MISMATCH"}: ${c.detail}` : ""] : []),
    ]);
  });
  const ok = results.filter((r) => r.verified).length;
  const bad = checks.filter((c) => !c.ok).length;
  return `${table.toString()}\n${ok} of ${results.length} move(s) verified${
    checked
      ? bad === 0
        ? "; each VM is where its result says"
        : `; ${bad} VM(s) not where their result says`
      : ""
  }`;
}

/** Options of {@link formatOutcome}. */
export interface FormatOutcomeOptions {
  /** The fabric the moves run through, in words (e.g. `"sim hosts"`), for the dry run's steps. */
  readonly fabric?: string;
  /** Where the updated inventory is (would be) written. */
  readonly writeInventory?: string;
}

/**
 * A whole pass for people: the plan, then in a dry run each step it would
 * take in order (every move by wave, with source, destination and
 * predictions; what it would check, record and write), else the results
 * and what was recorded.
 *
 * @param outcome `rebalanceOnce`'s answer.
 * @param options What the caller knows beyond the outcome.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadPolicy } from "@hakobu/hakobu";
 * import { fileInventory, formatOutcome, rebalanceOnce, simFabric } from "./mod.ts";
 *
 * const outcome = await rebalanceOnce({
 *   source: fileInventory("examples/inventory.json"),
 *   fabric: () => simFabric(),
 *   policy: await loadPolicy("examples/policies/default.ts"),
 *   dryRun: true,
 * });
 * const text = formatOutcome(outcome, { fabric: "sim hosts" });
 * assert.match(text, /would run 1 move\(s\) on sim hosts in 1 wave/);
 * assert.match(text, /1\. queue1: h1 → h3/);
 * assert.match(text, /nothing was changed/);
 * ```
 */
export function formatOutcome(
  outcome: RebalanceOutcome,
  options: FormatOutcomeOptions = {},
): string {
  const lines = [
    `inventory: ${outcome.source}`,
    formatPlan(outcome.plan, outcome.linkRate.source, outcome.schedule),
  ];
  const { plan, schedule, state } = outcome;
  if (outcome.dryRun) {
    lines.push("dry run: what a run would do, in order:");
    if (plan.moves.length === 0) {
      lines.push("  no moves: nothing would run");
    } else {
      lines.push(
        `  would run ${plan.moves.length} move(s)${
          options.fabric ? ` on ${options.fabric}` : ""
        } in ${schedule.waves} wave(s), at most ${schedule.maxConcurrent} at once and ${
          formatDuration(schedule.timeoutMs)
        } per move; predicted ${formatDuration(schedule.totalMs)} in all`,
      );
      let wave = 0;
      schedule.moves
        .map((s, i) => ({ s, i }))
        .sort((a, b) => a.s.startMs - b.s.startMs || a.i - b.i)
        .forEach(({ s, i }) => {
          if (s.wave !== wave) {
            wave = s.wave;
            lines.push(
              s.startMs === 0
                ? `  wave ${wave}, at the start:`
                : `  wave ${wave}, from ${formatDuration(s.startMs)} on:`,
            );
          }
          const m = s.move;
          lines.push(
            `    ${i + 1}. ${m.vm}: ${m.from} → ${m.to}, ${
              formatBytes(m.bytes)
            } (${formatBytes(m.predictedWireBytes)} on the wire), predicted ${
              formatDuration(m.predictedMs)
            }, downtime ${formatDuration(m.predictedDowntimeMs)}${
              s.overTimeout
                ? ` — over the ${
                  formatDuration(schedule.timeoutMs)
                } timeout: it would be aborted and ${m.vm} stay on ${m.from}`
                : ""
            } [memory: ${m.memory}]`,
          );
        });
      lines.push(
        "  then: read the inventory back (a live source, else the fabric's view) and check each VM is on its destination",
      );
      if (state) {
        lines.push(
          `  then: record the moves in ${state.path} (cooldown ${
            formatDuration(state.cooldownMs)
          })`,
        );
      }
      if (options.writeInventory) {
        lines.push(`  then: write the inventory to ${options.writeInventory}`);
      }
    }
    lines.push(
      `  skipped: ${
        plan.skipped.length + plan.unmovable.length
      } VM(s) (listed above); ${
        state
          ? `cooldowns read from ${state.path}`
          : "no state file: no cooldowns"
      }`,
      "dry run: nothing was changed (no VM moved, no file written)",
    );
    return lines.join("\n");
  }
  if (outcome.results.length > 0) {
    lines.push(formatResults(outcome.results, outcome.checks));
    if (outcome.readBack) lines.push(`read back from ${outcome.readBack}`);
    else {
      lines.push(
        "not read back: neither the inventory source nor the fabric can say where VMs run",
      );
    }
  }
  if (state && state.recorded > 0) {
    lines.push(`recorded ${state.recorded} move(s) in ${state.path}`);
  }
  if (!state && outcome.results.length > 0) {
    lines.push("no state file (--state): these moves start no cooldown");
  }
  return lines.join("\n");
}

function _load(bytes: number, h: HostLoad): string {
  const pct = (bytes / h.capacityBytes) * 100;
  return `${formatBytes(bytes)} (${pct.toFixed(1)}%)${
    bytes > h.targetBytes ? " !" : ""
  }`;
}
