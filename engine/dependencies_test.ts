import assert from "node:assert/strict";
import { moduleGraph, tsFilesUnder } from "./_module_graph_testing.ts";

/**
 * Packages that only draw or print for people (charts, tables, terminal
 * plots, SVG parsing, the command line): the engine produces data and
 * leaves them to `report/` and `scripts/`.
 */
const PRESENTATION = [
  "vega",
  "vega-lite",
  "cli-table3",
  "asciichart",
  "@xmldom/xmldom",
  "commander",
  "@commander-js/extra-typings",
];

Deno.test("engine/: no file imports a presentation package, the report package or the scripts, even lazily or for types", async () => {
  const files = await tsFilesUnder("engine");
  assert.ok(files.length > 100, `found ${files.length} engine files`);
  const graph = await moduleGraph(files);
  assert.ok(
    graph.files.length >= files.length,
    "the graph holds every engine file",
  );
  assert.deepEqual(
    graph.npmPackages.filter((p) => PRESENTATION.includes(p)),
    [],
  );
  // Its tests and benches compile policies with the DSL, which is fine;
  // the presentation lives in report/ and scripts/.
  assert.deepEqual(
    graph.files.filter((f) =>
      f.startsWith("report/") || f.startsWith("scripts/")
    ),
    [],
  );
});
