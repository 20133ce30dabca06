import assert from "node:assert/strict";
import { moduleGraph } from "./engine/_module_graph_testing.ts";

Deno.test("mod.ts: a program that imports the package root loads the DSL and the engine, and no report, table or chart", async () => {
  const graph = await moduleGraph(["mod.ts"]);
  assert.ok(graph.files.includes("dsl/mod.ts"));
  assert.ok(graph.files.includes("engine/mod.ts"));
  assert.deepEqual(
    graph.files.filter((f) =>
      f.startsWith("report/") || f.startsWith("scripts/")
    ),
    [],
  );
  for (const p of ["vega", "vega-lite", "cli-table3", "asciichart"]) {
    assert.ok(!graph.npmPackages.includes(p), `mod.ts loads ${p}`);
  }
});
