import assert from "node:assert/strict";
import { formatPlan, formatResults } from "./format.ts";
import { parseInventory } from "./inventory.ts";
import { planMoves } from "./planner.ts";
import type { MoveResult } from "./runner.ts";

const MIB = 2 ** 20;
const inventory = parseInventory({
  hosts: [{ name: "a", memory: "1GiB" }, { name: "b", memory: "1GiB" }],
  vms: [
    { name: "web", host: "a", memory: "600MiB" },
    { name: "db", host: "a", memory: "300MiB" },
  ],
  targets: { maxHostMemoryPercent: 80 },
});

Deno.test("formatPlan names each move, each host before and after, and where the link rate came from", () => {
  const plan = planMoves(inventory, { bandwidth: 1.25e9 });
  assert.equal(plan.moves.length, 1);
  const text = formatPlan(plan, "assumed");
  assert.match(
    text,
    /^target: every host at most 80% of its memory; link 10\.00 Gbit\/s \(assumed\)/,
  );
  assert.match(text, /1 move\(s\):/);
  assert.match(text, /db .*a → b/);
  // host a: 900 MiB of 1 GiB is over the target, marked "!"; after, it is not
  assert.match(text, /900\.00 MiB \(87\.9%\) !/);
});

Deno.test("formatPlan says when nothing needs to move", () => {
  const balanced = parseInventory({
    hosts: [{ name: "a", memory: "1GiB" }],
    vms: [{ name: "web", host: "a", memory: "100MiB" }],
  });
  assert.match(
    formatPlan(planMoves(balanced, { bandwidth: 1.25e9 }), "x"),
    /balanced: no moves needed/,
  );
});

Deno.test("formatResults shows each move's outcome and counts the verified ones", () => {
  const [move] = planMoves(inventory, { bandwidth: 1.25e9 }).moves;
  const results: MoveResult[] = [
    {
      move,
      verified: true,
      totalTimeMs: 1500,
      downtimeMs: 20,
      wireBytes: 300 * MIB,
    },
    {
      move,
      verified: false,
      totalTimeMs: 90,
      downtimeMs: 0,
      wireBytes: 0,
      error: "link cut",
    },
  ];
  const text = formatResults(results);
  assert.match(text, /verified .*1\.50 s .*20 ms .*300\.00 MiB/);
  assert.match(text, /FAILED .*link cut/);
  assert.match(text, /1 of 2 move\(s\) verified$/);
});
