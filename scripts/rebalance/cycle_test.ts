import assert from "node:assert/strict";
import { loadPolicy } from "../../dsl/mod.ts";
import { rebalanceOnce } from "./cycle.ts";
import { formatOutcome } from "./format.ts";
import { type Inventory, parseInventory } from "./inventory.ts";
import type { Fabric } from "./runner.ts";
import { simFabric } from "./sim_fabric.ts";
import type { InventorySource } from "./source.ts";
import { staticInventory } from "./source.ts";
import { loadState } from "./state.ts";

const policy = await loadPolicy(
  new URL("../../examples/policies/unlimited.ts", import.meta.url).pathname,
);

/** Host a must shed x (8 MiB); y dirties too fast to move. */
const INVENTORY = parseInventory({
  hosts: [{ name: "a", memory: "64MiB" }, { name: "b", memory: "64MiB" }],
  vms: [
    { name: "x", host: "a", memory: "8MiB", workload: "memcached" },
    {
      name: "y",
      host: "a",
      memory: "48MiB",
      workload: "idle",
      dirtyRate: "2GB/s",
    },
  ],
  targets: { maxHostMemoryPercent: 80 },
});

/** A fabric over `inner` without its own view, closed by the test. */
function blind(inner: Fabric): Fabric {
  return {
    name: inner.name,
    open: (r) => inner.open(r),
    close: async () => {},
  };
}

async function withState(fn: (path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(`${dir}/state.json`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a live source is read again after the run and each VM checked on its destination", async () => {
  await using sim = simFabric();
  let reads = 0;
  // A live source over the sim's hosts: where its receivers put the VMs.
  const live: InventorySource = {
    description: "the sim hosts",
    live: true,
    read: () => {
      reads++;
      return sim.observe(INVENTORY);
    },
  };
  await withState(async (statePath) => {
    const out = await rebalanceOnce({
      source: live,
      fabric: () => blind(sim),
      policy,
      statePath,
      timeoutMs: 60_000,
    });
    assert.equal(reads, 2);
    assert.equal(out.exitCode, 0, JSON.stringify(out.results));
    assert.equal(out.readBack, "the sim hosts");
    assert.deepEqual(out.checks.map((c) => [c.vm, c.found, c.ok]), [[
      "x",
      "b",
      true,
    ]]);
    assert.equal(out.after.vms.find((v) => v.name === "x")!.host, "b");
    const state = await loadState(statePath);
    assert.deepEqual(state.moves.map((m) => [m.vm, m.to, m.moved]), [[
      "x",
      "b",
      true,
    ]]);
    // The next pass reads the live source: x is on b, a is under its target.
    const next = await rebalanceOnce({
      source: live,
      fabric: () => blind(sim),
      policy,
      statePath,
    });
    assert.equal(next.plan.moves.length, 0);
    assert.equal(next.plan.balanced, true);
    assert.deepEqual(next.plan.skipped.map((s) => s.vm), ["x"]); // still cooling down
  });
});

Deno.test("a VM the read-back inventory does not show on its destination fails the pass and starts no cooldown", async () => {
  await using sim = simFabric();
  // A fabric whose view says nothing moved (as a host whose migration was rolled back).
  const lying: Fabric = {
    name: "lying",
    open: (r) => sim.open(r),
    observe: (base: Inventory) => Promise.resolve(base),
    close: async () => {},
  };
  await withState(async (statePath) => {
    const out = await rebalanceOnce({
      source: staticInventory(INVENTORY, "test inventory"),
      fabric: () => lying,
      policy,
      statePath,
      timeoutMs: 60_000,
    });
    assert.equal(out.results[0].verified, true);
    assert.equal(out.readBack, "the lying fabric");
    assert.equal(out.checks[0].ok, false);
    assert.equal(
      out.checks[0].detail,
      'the migration verified, yet read back from the lying fabric it is on "a", not "b"',
    );
    assert.equal(out.exitCode, 1);
    assert.equal(out.after.vms.find((v) => v.name === "x")!.host, "a");
    const state = await loadState(statePath);
    assert.equal(state.moves[0].moved, false);
    const text = formatOutcome(out);
    assert.match(text, /MISMATCH: the migration verified, yet/);
    assert.match(text, /1 VM\(s\) not where their result says/);
  });
});

Deno.test("a failed migration that the live hosts show on its destination counts as moved (cooldown)", async () => {
  const moved = {
    ...INVENTORY,
    vms: INVENTORY.vms.map((v) => v.name === "x" ? { ...v, host: "b" } : v),
  };
  let reads = 0;
  const live: InventorySource = {
    description: "the hosts",
    live: true,
    read: () => Promise.resolve(reads++ === 0 ? INVENTORY : moved),
  };
  const broken: Fabric = {
    name: "broken",
    open: () => Promise.reject(new Error("connection reset")),
    close: async () => {},
  };
  await withState(async (statePath) => {
    const out = await rebalanceOnce({
      source: live,
      fabric: () => broken,
      policy,
      statePath,
    });
    assert.equal(out.results[0].verified, false);
    assert.match(out.results[0].error ?? "", /connection reset/);
    assert.equal(
      out.checks[0].detail,
      'the migration failed, yet read back from the hosts it is on "b"',
    );
    assert.equal(out.exitCode, 1);
    const state = await loadState(statePath);
    assert.deepEqual(state.moves.map((m) => [m.vm, m.moved]), [["x", true]]);
  });
});

Deno.test("a dry run opens no fabric and writes no state; exclusions and cooldowns hold VMs", async () => {
  await withState(async (statePath) => {
    const dry = await rebalanceOnce({
      source: staticInventory(INVENTORY),
      fabric: () => {
        throw new Error("a dry run must not open the fabric");
      },
      policy,
      dryRun: true,
      statePath,
      exclude: { tags: ["none"] },
    });
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.results, []);
    assert.deepEqual(dry.plan.moves.map((m) => m.vm), ["x"]);
    assert.equal(dry.after.vms.find((v) => v.name === "x")!.host, "b"); // planned
    await assert.rejects(Deno.stat(statePath), Deno.errors.NotFound);

    const excluded = await rebalanceOnce({
      source: staticInventory(INVENTORY),
      fabric: () => {
        throw new Error("no moves: the fabric is not needed");
      },
      policy,
      exclude: { names: ["x"] },
    });
    assert.deepEqual(excluded.plan.skipped, [{
      vm: "x",
      host: "a",
      kind: "excluded",
      reason: 'excluded by name "x"',
    }]);
    assert.equal(excluded.exitCode, 2);
    // x still counts for a's load.
    assert.equal(excluded.plan.hosts[0].afterBytes, 56 * 2 ** 20);

    // A move 10 minutes ago: in cooldown at 30 min, not at 5 min.
    const now = new Date("2025-06-01T10:00:00Z");
    await Deno.writeTextFile(
      statePath,
      JSON.stringify({
        version: 1,
        moves: [{
          vm: "x",
          from: "b",
          to: "a",
          at: "2025-06-01T09:50:00Z",
          moved: true,
        }],
      }),
    );
    const cooling = await rebalanceOnce({
      source: staticInventory(INVENTORY),
      fabric: () => blind(simFabric()),
      policy,
      statePath,
      dryRun: true,
      now: () => now,
    });
    assert.equal(cooling.plan.skipped[0].kind, "cooldown");
    assert.equal(
      cooling.plan.skipped[0].reason,
      "in its cooldown: moved b → a at 2025-06-01T09:50:00.000Z (10 min 0 s ago), may move again from 2025-06-01T10:20:00.000Z (cooldown 30 min 0 s)",
    );
    const short = await rebalanceOnce({
      source: staticInventory(INVENTORY),
      fabric: () => blind(simFabric()),
      policy,
      statePath,
      dryRun: true,
      now: () => now,
      cooldownMs: 5 * 60_000,
    });
    assert.deepEqual(short.plan.skipped, []);
    assert.deepEqual(short.plan.moves.map((m) => m.vm), ["x"]);
  });
});
