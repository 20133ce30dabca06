import assert from "node:assert/strict";
import { moduleGraph } from "../engine/_module_graph_testing.ts";

Deno.test("report/mod.ts: importing it loads no vega; rendering loads vega and vega-lite", async () => {
  const onImport = await moduleGraph(["report/mod.ts"], {
    dynamic: false,
    types: false,
  });
  const onRender = await moduleGraph(["report/mod.ts"], { types: false });
  assert.deepEqual(onImport.npmPackages, ["cli-table3"]);
  assert.deepEqual(onRender.npmPackages, ["cli-table3", "vega", "vega-lite"]);
});

Deno.test("report/: the package reads the engine's data and never the scripts", async () => {
  const graph = await moduleGraph(["report/mod.ts"]);
  assert.deepEqual(graph.files.filter((f) => f.startsWith("scripts/")), []);
  assert.ok(graph.files.includes("engine/report.ts"));
  assert.ok(
    !graph.files.includes("engine/mod.ts"),
    "it reads engine/report.ts and engine/format.ts, not the whole engine",
  );
});
