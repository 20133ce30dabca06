import assert from "node:assert/strict";
import { loadPolicy } from "../../dsl/mod.ts";
import { parseInventory } from "./inventory.ts";
import { type Move, planMoves } from "./planner.ts";
import { runPlan } from "./runner.ts";
import { scheduleMoves } from "./schedule.ts";
import { simFabric } from "./sim_fabric.ts";

const HOSTS = parseInventory({
  hosts: [
    { name: "a", memory: "1GiB", maxMigrations: 1 },
    { name: "b", memory: "1GiB" },
    { name: "c", memory: "1GiB" },
    { name: "d", memory: "1GiB" },
  ],
  vms: [],
}).hosts;

function move(vm: string, from: string, to: string, ms: number): Move {
  return {
    vm,
    from,
    to,
    bytes: 4096,
    predictedBytes: 4096,
    predictedWireBytes: 4096,
    predictedMs: ms,
    predictedDowntimeMs: 0,
    reason: "",
    memory: "",
  };
}

Deno.test("scheduleMoves replays the runner's rule: plan order, global and per-host limits, waves by start time", () => {
  const moves = [
    move("m1", "a", "b", 100), // a allows one at a time
    move("m2", "a", "c", 50),
    move("m3", "b", "c", 30),
    move("m4", "c", "d", 10),
  ];
  const s = scheduleMoves({ moves }, HOSTS, { maxConcurrent: 2 });
  // t=0: m1 (a busy), m2 waits for a, m3 starts (2 in flight), m4 waits.
  // t=30: m3 ends, m4 starts (m2 still waits for a). t=40: m4 ends.
  // t=100: m1 ends, m2 starts; ends at 150.
  assert.deepEqual(
    s.moves.map((m) => [m.move.vm, m.startMs, m.endMs, m.wave]),
    [["m1", 0, 100, 1], ["m2", 100, 150, 3], ["m3", 0, 30, 1], [
      "m4",
      30,
      40,
      2,
    ]],
  );
  assert.equal(s.waves, 3);
  assert.equal(s.totalMs, 150);
  assert.equal(s.maxConcurrent, 2);
});

Deno.test("scheduleMoves caps a move at the timeout and flags it", () => {
  const s = scheduleMoves({ moves: [move("slow", "b", "c", 10_000)] }, HOSTS, {
    timeoutMs: 1000,
  });
  assert.equal(s.moves[0].endMs, 1000);
  assert.equal(s.moves[0].overTimeout, true);
  assert.equal(s.totalMs, 1000);
  assert.throws(
    () => scheduleMoves({ moves: [] }, HOSTS, { maxConcurrent: 0 }),
    /Invalid maxConcurrent "0"/,
  );
});

Deno.test("the first wave of the schedule is what runPlan starts before any move ends", async () => {
  const inv = parseInventory({
    hosts: [
      { name: "h1", memory: "64MiB", maxMigrations: 2 },
      { name: "h2", memory: "256MiB", maxMigrations: 1 },
      { name: "h3", memory: "256MiB" },
    ],
    vms: ["v1", "v2", "v3", "v4", "v5", "v6"].map((name) => ({
      name,
      host: "h1",
      memory: "8MiB",
      workload: "idle",
    })),
    targets: { maxHostMemoryPercent: 20 },
  });
  const policy = await loadPolicy(
    new URL("../../examples/policies/unlimited.ts", import.meta.url).pathname,
  );
  const plan = planMoves(inv, { bandwidth: 1.25e9, policy });
  assert.ok(plan.moves.length >= 3, JSON.stringify(plan.moves));
  const schedule = scheduleMoves(plan, inv.hosts, { maxConcurrent: 3 });
  const firstWave = schedule.moves.filter((m) => m.wave === 1).map((m) =>
    m.move.vm
  );
  assert.ok(firstWave.length < plan.moves.length); // the limits bite
  const startedBeforeAnyEnd: string[] = [];
  let ended = false;
  await using fabric = simFabric();
  const run = await runPlan(inv, plan, {
    policy,
    fabric,
    maxConcurrent: 3,
    timeoutMs: 60_000,
    onEvent: (e) => {
      if (e.type === "end") ended = true;
      else if (!ended) startedBeforeAnyEnd.push(e.move.vm);
    },
  });
  assert.ok(run.ok, run.results.map((r) => r.error).join("; "));
  assert.deepEqual(startedBeforeAnyEnd, firstWave);
});
