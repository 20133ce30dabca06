/**
 * Cron-driven rebalancing: every 10 minutes, read the inventory, plan the
 * moves that bring every host under its memory target, run them with a
 * policy (two at a time, 5 minutes each at most) and write the updated
 * inventory back.
 *
 *   deno run -A --unstable-cron examples/rebalance_cron.ts          # schedule (Deno.cron)
 *   deno run -A examples/rebalance_cron.ts --once                   # one pass now
 *
 * Settings: HAKOBU_INVENTORY (default examples/inventory.json), HAKOBU_POLICY
 * (default examples/policies/default.ts), HAKOBU_INVENTORY_OUT (default: the
 * inventory itself; the example writes to out/inventory.json to keep the
 * example file as it is).
 *
 * The same with the system's cron instead of Deno.cron (crontab -e), every
 * 10 minutes, one pass each, logging to a file:
 *
 *   *\/10 * * * * cd /srv/hakobu && deno run -A scripts/hakobu.ts rebalance --inventory /etc/hakobu/inventory.json --policy /etc/hakobu/policy.ts --max-concurrent 2 --timeout 5m --write-inventory /etc/hakobu/inventory.json >> /var/log/hakobu-rebalance.log 2>&1
 *
 * (write `*` followed by `/10` in the crontab; the backslash only keeps this
 * comment open.)
 *
 * @module
 */

import { loadPolicy } from "../dsl/mod.ts";
import {
  formatPlan,
  formatResults,
  inventoryToJson,
  loadInventory,
  planMoves,
  runPlan,
  simFabric,
} from "../scripts/rebalance/mod.ts";
import { Command } from "@commander-js/extra-typings";

const flags = new Command("rebalance_cron.ts")
  .description(
    "Rebalances the inventory every 10 minutes (Deno.cron), or once with --once.",
  )
  .option("--once", "one pass now, then exit (0 when balanced)")
  .parse(Deno.args, { from: "user" })
  .opts();

const INVENTORY = Deno.env.get("HAKOBU_INVENTORY") ??
  new URL("./inventory.json", import.meta.url).pathname;
const POLICY = Deno.env.get("HAKOBU_POLICY") ??
  new URL("./policies/default.ts", import.meta.url).pathname;
const OUT = Deno.env.get("HAKOBU_INVENTORY_OUT") ??
  (Deno.env.get("HAKOBU_INVENTORY")
    ? INVENTORY
    : new URL("../out/inventory.json", import.meta.url).pathname);

/** One rebalance pass; returns true when every host ends under the target and every move verified. */
async function rebalanceOnce(): Promise<boolean> {
  const stamp = new Date().toISOString();
  const inventory = await loadInventory(INVENTORY);
  const policy = await loadPolicy(POLICY);
  const bandwidth = policy.bandwidth ?? inventory.targets.linkRate ?? 1.25e9;
  const plan = planMoves(inventory, { bandwidth, policy });
  console.log(`[${stamp}] rebalance ${INVENTORY} with policy "${policy.name}"`);
  console.log(formatPlan(plan, `policy "${policy.name}"`));
  if (plan.moves.length === 0) return plan.balanced;
  await using fabric = simFabric(); // a real deployment plugs in its own Fabric
  const run = await runPlan(inventory, plan, {
    policy,
    fabric,
    maxConcurrent: 2,
    timeoutMs: 5 * 60_000,
  });
  console.log(formatResults(run.results));
  await Deno.mkdir(OUT.slice(0, OUT.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(
    OUT,
    JSON.stringify(inventoryToJson(run.inventory), null, 2) + "\n",
  );
  console.log(`inventory written to ${OUT}`);
  return run.ok && plan.balanced;
}

type CronFn = (
  name: string,
  schedule: string,
  handler: () => Promise<void>,
) => Promise<void>;

const cron = (Deno as unknown as { cron?: CronFn }).cron;

if (flags.once) {
  Deno.exit((await rebalanceOnce()) ? 0 : 1);
} else if (typeof cron !== "function") {
  console.error(
    "Deno.cron is not available: it is unstable; run with --unstable-cron:\n" +
      "  deno run -A --unstable-cron examples/rebalance_cron.ts\n" +
      "or run one pass now with --once (e.g. from the system's cron).",
  );
  Deno.exit(2);
} else {
  // Registered at the top level, as Deno.cron requires; runs do not overlap.
  cron("hakobu rebalance", "*/10 * * * *", async () => {
    try {
      await rebalanceOnce();
    } catch (e) {
      console.error(
        `rebalance failed: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  });
  console.log(
    `scheduled "hakobu rebalance" every 10 minutes (UTC) for ${INVENTORY}`,
  );
}
