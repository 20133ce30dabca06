/**
 * Cron-driven rebalancing with `Deno.cron`: every 10 minutes, one
 * `rebalanceOnce` pass — read the inventory, hold back the VMs that are
 * excluded or were moved less than 30 minutes ago (the move history lives in
 * a state file), plan the moves that bring every host under its memory
 * target, run them with a policy (two at a time, 5 minutes each at most),
 * check each VM on its destination, record the moves and write the updated
 * inventory back.
 *
 *   deno run -A --unstable-cron examples/rebalance_cron.ts          # schedule (Deno.cron)
 *   deno run -A examples/rebalance_cron.ts --once                   # one pass now
 *   deno run -A examples/rebalance_cron.ts --once --dry-run         # what a pass would do
 *
 * Settings (environment):
 * - HAKOBU_HOSTS: live libvirt hosts instead of the inventory JSON, e.g.
 *   `libvirt:qemu+ssh://root@kvm1/system,libvirt:qemu+ssh://root@kvm2/system`
 *   (read from the hosts, moved through the libvirt backend, read back;
 *   nothing is written but the state file); HAKOBU_HOST_MEMORY: memory VMs
 *   may use per host (default: each node's memory);
 * - HAKOBU_INVENTORY: inventory JSON (default examples/inventory.json);
 * - HAKOBU_POLICY: policy file (default examples/policies/default.ts);
 * - HAKOBU_STATE: move history for cooldowns (default out/rebalance-state.json);
 * - HAKOBU_COOLDOWN: e.g. 30m (default);
 * - HAKOBU_EXCLUDE, HAKOBU_EXCLUDE_TAGS: comma-separated VM names/globs and tags
 *   that never move;
 * - HAKOBU_INVENTORY_OUT: where the updated inventory goes (default: the
 *   inventory itself; out/inventory.json while HAKOBU_INVENTORY is unset, to
 *   keep the example file as it is).
 *
 * The same with the system's cron: `examples/rebalance_cron.sh` and the
 * crontab line in it.
 *
 * @module
 */

import { loadPolicy, parseDuration, parseSize } from "../dsl/mod.ts";
import {
  type Fabric,
  fileInventory,
  formatOutcome,
  type InventorySource,
  libvirtFabric,
  libvirtInventory,
  parseHostsFlag,
  rebalanceOnce,
  saveInventory,
  simFabric,
} from "../scripts/rebalance/mod.ts";
import { Command } from "@commander-js/extra-typings";

const flags = new Command("rebalance_cron.ts")
  .description(
    "Rebalances the inventory every 10 minutes (Deno.cron), or once with --once.",
  )
  .option("--once", "one pass now, then exit (0 when balanced)")
  .option("--dry-run", "print what a pass would do; change nothing")
  .parse(Deno.args, { from: "user" })
  .opts();

const env = (name: string): string | undefined => Deno.env.get(name);
const here = (path: string): string => new URL(path, import.meta.url).pathname;
const list = (text: string | undefined): string[] =>
  (text ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");

const INVENTORY = env("HAKOBU_INVENTORY") ?? here("./inventory.json");
const POLICY = env("HAKOBU_POLICY") ?? here("./policies/default.ts");
const STATE = env("HAKOBU_STATE") ?? here("../out/rebalance-state.json");
const COOLDOWN_MS = parseDuration(env("HAKOBU_COOLDOWN") ?? "30m");
const OUT = env("HAKOBU_INVENTORY_OUT") ??
  (env("HAKOBU_INVENTORY") ? INVENTORY : here("../out/inventory.json"));

const HOSTS = env("HAKOBU_HOSTS");
const HOST_MEMORY = env("HAKOBU_HOST_MEMORY");

/**
 * Where the inventory comes from and what moves the VMs: live libvirt hosts
 * (HAKOBU_HOSTS: a live source, which `rebalanceOnce` reads again after the
 * moves to check them, and the libvirt fabric), else a JSON file and
 * simulated hosts.
 */
function cluster(): {
  source: InventorySource;
  fabric: () => Fabric;
  name: string;
} {
  if (HOSTS) {
    const source = libvirtInventory(parseHostsFlag(HOSTS), {
      memoryBytes: HOST_MEMORY ? parseSize(HOST_MEMORY) : undefined,
      dirtyRateSeconds: 1, // measure each domain's dirty rate for 1 s first
      log: console.log,
    });
    return {
      source,
      fabric: () => libvirtFabric(source, { log: console.log }),
      name: "libvirt hosts",
    };
  }
  return {
    source: fileInventory(INVENTORY),
    fabric: () => simFabric(),
    name: "sim hosts",
  };
}

/** One rebalance pass; returns true when every host ends under the target and every move verified on its destination. */
async function rebalancePass(dryRun: boolean): Promise<boolean> {
  const { source, fabric, name } = cluster();
  const policy = await loadPolicy(POLICY);
  console.log(
    `[${
      new Date().toISOString()
    }] rebalance ${source.description} with policy "${policy.name}"`,
  );
  const outcome = await rebalanceOnce({
    source,
    fabric,
    policy,
    dryRun,
    maxConcurrent: 2,
    timeoutMs: 5 * 60_000,
    statePath: STATE,
    cooldownMs: COOLDOWN_MS,
    exclude: {
      names: list(env("HAKOBU_EXCLUDE")),
      tags: list(env("HAKOBU_EXCLUDE_TAGS")),
    },
  });
  console.log(
    formatOutcome(outcome, {
      fabric: name,
      writeInventory: source.live ? undefined : OUT,
    }),
  );
  // A file is written back; live hosts are their own inventory.
  if (!dryRun && !source.live && outcome.results.length > 0) {
    await saveInventory(OUT, outcome.after); // atomic: temp file, then rename
    console.log(`inventory written to ${OUT}`);
  }
  return outcome.exitCode === 0;
}

type CronFn = (
  name: string,
  schedule: string,
  handler: () => Promise<void>,
) => Promise<void>;

const cron = (Deno as unknown as { cron?: CronFn }).cron;

if (flags.once || flags.dryRun) {
  Deno.exit((await rebalancePass(flags.dryRun === true)) ? 0 : 1);
} else if (typeof cron !== "function") {
  console.error(
    "Deno.cron is not available: it is unstable; run with --unstable-cron:\n" +
      "  deno run -A --unstable-cron examples/rebalance_cron.ts\n" +
      "or run one pass now with --once (e.g. from the system's cron: examples/rebalance_cron.sh).",
  );
  Deno.exit(2);
} else {
  // Registered at the top level, as Deno.cron requires; runs do not overlap.
  cron("hakobu rebalance", "*/10 * * * *", async () => {
    try {
      await rebalancePass(false);
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
