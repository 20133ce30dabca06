/**
 * Cron-driven rebalancing: read where VMs run, plan the moves that bring
 * every host under a memory target, run them with a policy within limits.
 *
 * Read in this order: `inventory.ts` (hosts, VMs, targets), `predict.ts`
 * (the pre-copy time model), `planner.ts` (which VMs go where), `runner.ts`
 * (running a plan through a fabric), `sim_fabric.ts` (simulated hosts),
 * `format.ts` (a plan and its results as tables).
 *
 * @example
 * ```ts ignore
 * import { loadInventory, planMoves, runPlan, simFabric } from "./mod.ts";
 * import { loadPolicy } from "../../dsl/mod.ts";
 *
 * const inventory = await loadInventory("examples/inventory.json");
 * const policy = await loadPolicy("examples/policies/default.ts");
 * const plan = planMoves(inventory, { bandwidth: policy.bandwidth ?? 1.25e9, policy });
 * await using fabric = simFabric();
 * const run = await runPlan(inventory, plan, { policy, fabric, maxConcurrent: 2 });
 * ```
 *
 * @module
 */

export * from "./inventory.ts";
export * from "./predict.ts";
export * from "./planner.ts";
export * from "./runner.ts";
export * from "./sim_fabric.ts";
export * from "./format.ts";
