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

Deno.test("mod.ts: WGSL sources and kernel drivers stay with the GPU package (./gpu), the GPU encoder is at the root", async () => {
  const root = await import("./mod.ts");
  const gpu = await import("./engine/gpu/mod.ts");
  const names = Object.keys(root);
  assert.deepEqual(names.filter((n) => n.endsWith("_WGSL")), []);
  assert.ok(!names.includes("ZeroScanKernel"));
  assert.ok(names.includes("openGpu") && names.includes("GpuBatchEncoder"));
  assert.ok(Object.keys(gpu).filter((n) => n.endsWith("_WGSL")).length >= 7);
});
