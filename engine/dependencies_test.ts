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

/**
 * Node built-ins that cost a Deno isolate ≈ 15 ms of CPU each time one
 * loads (`node:tls` and `node:net` for TLS only, `node:crypto` for the
 * SHA-256 digest scheme only, `node:zlib` for large CRC-32s only): the
 * files below load them on use (`import()`, `engine/_node_builtin.ts`), so
 * that a plain-TCP tunnel and its channel Workers do not pay for them at
 * every start.
 */
const LOADED_ON_USE = ["node:crypto", "node:net", "node:tls", "node:zlib"];

Deno.test("the stream tunnel and its channel Workers load node:tls, node:net, node:crypto and node:zlib only on use", async () => {
  const roots = [
    "scripts/tunnel.ts",
    // What scripts/tunnel.ts imports once its flags are parsed:
    "scripts/_cli/tunnel.ts",
    "engine/pipeline/encode_worker.ts",
    "engine/pipeline/decode_worker.ts",
  ];
  const graph = await moduleGraph(roots, { dynamic: false, types: false });
  assert.ok(
    graph.files.includes("engine/wire/frame.ts") &&
      graph.files.includes("engine/digest.ts") &&
      graph.files.includes("engine/transport/secure/connect.ts"),
    "the graph holds the files that use them",
  );
  assert.deepEqual(
    graph.nodeBuiltins.filter((b) => LOADED_ON_USE.includes(b)),
    [],
  );
  // Nor does the tunnel load precopy.ts, for defaultChannels or anything.
  assert.ok(!graph.files.includes("engine/precopy.ts"));
  // The check itself sees built-ins: with import() and types followed,
  // all four are still there.
  const all = await moduleGraph(roots);
  assert.deepEqual(
    all.nodeBuiltins.filter((b) => LOADED_ON_USE.includes(b)),
    LOADED_ON_USE,
  );
});
