/**
 * Cron-driven rebalancing: read where VMs run, plan the moves that bring
 * every host under a memory target, run them with a policy within limits.
 *
 * Read in this order: `inventory.ts` (hosts, VMs, targets), `source.ts`
 * (where an inventory comes from), `memory_model.ts` (what a VM's memory
 * costs under a codec chain), `predict.ts` (the pre-copy time model),
 * `exclude.ts` and `state.ts` (VMs that stay: excluded, or moved recently),
 * `planner.ts` (which VMs go where), `schedule.ts` (the waves a run takes),
 * `runner.ts` (running a plan through a fabric), `sim_fabric.ts` (simulated
 * hosts), `check.ts` (each VM where its result says, read back),
 * `cycle.ts` (one pass, as `hakobu rebalance` and cron run it), `format.ts`
 * (a plan and its results as text); live libvirt hosts:
 * `libvirt_source.ts` (the inventory read from them) and
 * `libvirt_fabric.ts` (moves through the libvirt backend).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadPolicy } from "@hakobu/hakobu";
 * import { parseInventory, planMoves, runPlan, simFabric } from "./mod.ts";
 *
 * // Usually `await loadInventory("inventory.json")`; here two small hosts.
 * const inventory = parseInventory({
 *   hosts: [{ name: "a", memory: "64MiB" }, { name: "b", memory: "64MiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "48MiB" },
 *     { name: "small", host: "a", memory: "8MiB" },
 *   ],
 * });
 * const policy = await loadPolicy("examples/policies/default.ts");
 * const plan = planMoves(inventory, {
 *   bandwidth: policy.bandwidth ?? 1.25e9,
 *   policy,
 * });
 * await using fabric = simFabric(); // sim VMs and receivers on loopback
 * const run = await runPlan(inventory, plan, {
 *   policy,
 *   fabric,
 *   maxConcurrent: 2,
 * });
 * assert.equal(run.ok, true, run.results.map((r) => r.error).join("; "));
 * assert.deepEqual(run.inventory.vms.map((vm) => `${vm.name}@${vm.host}`), [
 *   "big@a",
 *   "small@b",
 * ]);
 * ```
 *
 * @module
 */

export * from "./inventory.ts";
export * from "./source.ts";
export * from "./memory_model.ts";
export * from "./memory_sample.ts";
export * from "./predict.ts";
export * from "./exclude.ts";
export * from "./state.ts";
export * from "./planner.ts";
export * from "./schedule.ts";
export * from "./runner.ts";
export * from "./sim_fabric.ts";
export * from "./check.ts";
export * from "./cycle.ts";
export * from "./format.ts";
export * from "./libvirt_source.ts";
export * from "./libvirt_fabric.ts";
