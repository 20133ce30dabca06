import assert from "node:assert/strict";
import {
  codec,
  compile,
  loadPolicy,
  MBps,
  policy,
  when,
} from "../../dsl/mod.ts";
import { parseInventory } from "./inventory.ts";
import { planMoves } from "./planner.ts";
import { migrate } from "../../engine/precopy.ts";
import { type Fabric, runPlan } from "./runner.ts";
import { simFabric } from "./sim_fabric.ts";

const UNLIMITED =
  new URL("../../examples/policies/unlimited.ts", import.meta.url)
    .pathname;
const MIB = 2 ** 20;

/** Wraps a fabric to count migrations in flight, overall and per host. */
function counting(inner: Fabric): Fabric & {
  max: number;
  maxPerHost: Map<string, number>;
} {
  let now = 0;
  const perHost = new Map<string, number>();
  const bump = (h: string, d: number) => {
    const n = (perHost.get(h) ?? 0) + d;
    perHost.set(h, n);
    if (n > (wrapper.maxPerHost.get(h) ?? 0)) wrapper.maxPerHost.set(h, n);
  };
  const wrapper = {
    name: `counting(${inner.name})`,
    max: 0,
    maxPerHost: new Map<string, number>(),
    async open(req: Parameters<Fabric["open"]>[0]) {
      now++;
      wrapper.max = Math.max(wrapper.max, now);
      bump(req.from.name, 1);
      bump(req.to.name, 1);
      const s = await inner.open(req);
      return {
        ...s,
        async close() {
          now--;
          bump(req.from.name, -1);
          bump(req.to.name, -1);
          await s.close();
        },
      };
    },
    close: () => inner.close(),
  };
  return wrapper;
}

function overloaded(maxMigrations?: number) {
  // h1 holds 6 VMs (144 MiB of 160); the target 50% (80 MiB) needs 64 MiB moved off.
  return parseInventory({
    hosts: [
      {
        name: "h1",
        memory: "160MiB",
        ...(maxMigrations ? { maxMigrations } : {}),
      },
      { name: "h2", memory: "160MiB" },
      { name: "h3", memory: "160MiB" },
    ],
    vms: [
      {
        name: "v1",
        host: "h1",
        memory: "16MiB",
        workload: "memcached",
        dirtyRate: "1MB/s",
      },
      { name: "v2", host: "h1", memory: "16MiB", workload: "idle" },
      {
        name: "v3",
        host: "h1",
        memory: "16MiB",
        workload: "random",
        dirtyRate: "2MB/s",
      },
      {
        name: "v4",
        host: "h1",
        memory: "16MiB",
        workload: "memcached",
        dirtyRate: "1MB/s",
      },
      // Dirtying faster than the 10 Gbit/s planning link: unmovable.
      {
        name: "v5",
        host: "h1",
        memory: "32MiB",
        workload: "postgres",
        dirtyRate: "2GB/s",
      },
      {
        name: "v6",
        host: "h1",
        memory: "48MiB",
        workload: "idle",
        dirtyRate: "2GB/s",
      },
    ],
    targets: { maxHostMemoryPercent: 50 },
  });
}

Deno.test("runPlan runs sim migrations two at a time, all verify, inventory updated", async () => {
  const inv = overloaded();
  const policy = await loadPolicy(UNLIMITED);
  const plan = planMoves(inv, { bandwidth: 1.25e9, policy });
  assert.deepEqual(plan.moves.map((m) => m.vm), ["v1", "v2", "v3", "v4"]);
  assert.deepEqual(plan.unmovable.map((u) => u.vm), ["v5", "v6"]);
  const sim = simFabric();
  const fabric = counting(sim);
  const events: string[] = [];
  const run = await runPlan(inv, plan, {
    policy,
    fabric,
    maxConcurrent: 2,
    timeoutMs: 60_000,
    onEvent: (e) =>
      events.push(
        `${e.type}:${e.type === "start" ? e.move.vm : e.result.move.vm}`,
      ),
  });
  await fabric.close();
  for (const r of run.results) {
    assert.ok(r.verified, `${r.move.vm}: ${r.error}`);
    assert.ok(r.wireBytes > 0 && r.totalTimeMs > 0 && r.downtimeMs >= 0);
    assert.equal(r.report?.memoryBytes, 16 * MIB);
  }
  assert.ok(run.ok);
  assert.equal(fabric.max, 2, "the global limit was reached and honoured");
  assert.equal(events.length, 8);
  assert.equal(sim.receipts.length, 4);
  assert.ok(
    sim.receipts.every((r) => "verified" in r.result && r.result.verified),
  );
  const where = Object.fromEntries(
    run.inventory.vms.map((v) => [v.name, v.host]),
  );
  for (const m of plan.moves) assert.equal(where[m.vm], m.to);
  assert.equal(where.v5, "h1");
  assert.equal(where.v6, "h1");
  // The sim fabric knows which VM each receiver got: its view agrees.
  assert.deepEqual(sim.receipts.map((r) => r.vm).sort(), [
    "v1",
    "v2",
    "v3",
    "v4",
  ]);
  assert.deepEqual(await sim.observe(inv), run.inventory);
  // The input inventory is left as it was.
  assert.ok(inv.vms.every((v) => v.host === "h1"));
});

Deno.test("runPlan honours a host's maxMigrations", async () => {
  const inv = overloaded(1);
  const policy = await loadPolicy(UNLIMITED);
  const plan = planMoves(inv, { bandwidth: 1.25e9, policy });
  await using sim = simFabric();
  const fabric = counting(sim);
  const run = await runPlan(inv, plan, { policy, fabric, maxConcurrent: 3 });
  assert.ok(run.ok, run.results.map((r) => r.error).join("; "));
  assert.equal(fabric.max, 1);
  assert.equal(fabric.maxPerHost.get("h1"), 1);
});

Deno.test("a per-migration timeout fails the move and leaves the VM where it was", async () => {
  const inv = parseInventory({
    hosts: [{ name: "h1", memory: "64MiB" }, { name: "h2", memory: "64MiB" }],
    vms: [
      { name: "slow", host: "h1", memory: "16MiB", workload: "idle" },
      { name: "stay", host: "h1", memory: "40MiB", workload: "idle" },
    ],
    targets: { maxHostMemoryPercent: 80 },
  });
  // 2 MB/s: 16 MiB would take 8 s; the limit is 300 ms.
  const slow = compile(
    policy("slow").codec([codec.raw()]).switchover(when.rounds(3))
      .bandwidth(MBps(2)).batchPages(16),
  );
  const plan = planMoves(inv, { bandwidth: MBps(2), policy: slow });
  assert.deepEqual(plan.moves.map((m) => m.vm), ["slow"]);
  await using sim = simFabric();
  const t0 = performance.now();
  const run = await runPlan(inv, plan, {
    policy: slow,
    fabric: sim,
    timeoutMs: 300,
  });
  const took = performance.now() - t0;
  assert.equal(run.ok, false);
  const [r] = run.results;
  assert.equal(r.verified, false);
  assert.match(r.error ?? "", /timed out after 300 ms/);
  assert.ok(took < 5000, `took ${took} ms`);
  assert.equal(run.inventory.vms.find((v) => v.name === "slow")!.host, "h1");
  await sim.close();
  // The receiver saw the abort and discarded the memory.
  assert.equal(sim.receipts.length, 1);
  const got = sim.receipts[0].result;
  assert.ok(!("verified" in got) || !got.verified);
  assert.equal(sim.receipts[0].vm, "slow");
  assert.deepEqual(await sim.observe(inv), inv); // nothing moved
});

Deno.test("runPlan refuses moves that do not match the inventory without running them", async () => {
  const inv = overloaded();
  const policy = await loadPolicy(UNLIMITED);
  const plan = planMoves(inv, { bandwidth: 1.25e9, policy });
  const moved = {
    ...inv,
    vms: inv.vms.map((v) => v.name === "v1" ? { ...v, host: "h3" } : v),
  };
  const bad = {
    ...plan,
    moves: [plan.moves[0], { ...plan.moves[1], to: "h9" }],
  };
  await using sim = simFabric();
  const fabric = counting(sim);
  const run = await runPlan(moved, bad, { policy, fabric });
  assert.equal(fabric.max, 0);
  assert.match(run.results[0].error ?? "", /VM "v1" runs on "h3", not on "h1"/);
  assert.match(run.results[1].error ?? "", /host "h9" is not in the inventory/);
  assert.deepEqual(run.inventory, moved);
});

Deno.test("a fabric whose sessions run the migration themselves (a backend) is driven through migrate(), under the same timeout", async () => {
  const inv = overloaded();
  const policy = await loadPolicy(UNLIMITED);
  const plan = planMoves(inv, { bandwidth: 1.25e9, policy });
  await using sim = simFabric();
  const ran: string[] = [];
  // A backend that migrates on its own terms: here it runs the engine over
  // a sim session, as a libvirt backend would run libvirt's migration.
  const backend: Fabric = {
    name: "backend",
    async open(req) {
      const s = await sim.open(req);
      return {
        migrate: ({ plan, signal }) => {
          ran.push(`${req.vm.name}:${plan.name}`);
          return migrate({ plan, source: s.source, conn: s.conn, signal });
        },
        close: () => s.close(),
      };
    },
    close: async () => {},
  };
  const run = await runPlan(inv, plan, {
    policy,
    fabric: backend,
    timeoutMs: 60_000,
  });
  assert.ok(run.ok, run.results.map((r) => r.error).join("; "));
  assert.deepEqual(ran.sort(), [
    "v1:unlimited",
    "v2:unlimited",
    "v3:unlimited",
    "v4:unlimited",
  ]);
  assert.deepEqual(await sim.observe(inv), run.inventory);
  // The runner's timeout reaches the backend through its signal.
  let aborted = "";
  const stuck: Fabric = {
    name: "stuck",
    open: () =>
      Promise.resolve({
        migrate: ({ signal }) =>
          new Promise((_, reject) =>
            signal.addEventListener("abort", () => {
              aborted = String(signal.reason);
              reject(new Error("Migration aborted by the backend"));
            })
          ),
        close: async () => {},
      }),
    close: async () => {},
  };
  const slow = await runPlan(inv, { ...plan, moves: plan.moves.slice(0, 1) }, {
    policy,
    fabric: stuck,
    timeoutMs: 200,
  });
  assert.equal(slow.ok, false);
  assert.match(aborted, /timed out after 200 ms/);
  assert.match(slow.results[0].error ?? "", /aborted by the backend/);
});
