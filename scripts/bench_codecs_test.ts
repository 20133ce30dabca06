import assert from "node:assert/strict";
import { runScript, withTempDir } from "./_cli/_cli_testing.ts";
import { codecNames } from "../engine/codecs/registry.ts";
import { workloadNames } from "../engine/sim/mod.ts";
import {
  type BenchReport,
  type CliComparison,
  renderComparisons,
} from "./bench_codecs.ts";

Deno.test("bench_codecs runs on 8 MiB and writes JSON with a verified row per workload and chain", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/bench.json`;
    const r = await runScript(
      new URL("./bench_codecs.ts", import.meta.url).pathname,
      [
        "--mem",
        "8MiB",
        "--runs",
        "1",
        "--out",
        out,
      ],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /enc GB\/s/);
    assert.match(r.stdout, /batch ratio \/ CLI ratio/);
    const report = JSON.parse(await Deno.readTextFile(out)) as BenchReport;
    assert.equal(report.memBytes, 8 << 20);
    assert.equal(report.pageSize, 4096);
    assert.equal(report.batchPages, 256);
    const names = codecNames();
    const chains = [
      ...names,
      ...names.filter((n) => n !== "zero" && n !== "raw").map((n) =>
        `zero+${n}`
      ),
    ];
    for (const w of workloadNames()) {
      for (const c of chains) {
        const first = report.codecs.find((e) =>
          e.workload === w && e.codec === c && e.pass === 1
        );
        assert.ok(first, `no entry for ${w} x ${c}`);
        assert.equal(first.pages, (8 << 20) / 4096);
        assert.equal(first.verified, true, `${w} x ${c} not verified`);
        assert.deepEqual(first.chain.at(-1), "raw");
        // every page went to some codec of the chain
        assert.equal(
          Object.values(first.claims).reduce((a, b) => a + b, 0),
          first.pages,
        );
        assert.ok(first.batches >= 1);
        assert.equal(first.wireBytes, first.payloadBytes + 16 * first.batches);
        assert.ok(
          first.ratio > 0 && first.encodeGBps > 0 && first.decodeGBps > 0,
        );
        assert.ok(first.claimed >= 0 && first.claimed <= 1);
      }
    }
    for (const e of report.codecs) {
      assert.equal(e.verified, true, `${e.workload} ${e.codec} pass ${e.pass}`);
    }
    // later rounds for the chains that keep state; delta has work there
    const delta = report.codecs.filter((e) =>
      e.codec === "zero+delta" && e.pass === 2
    );
    assert.equal(delta.length, workloadNames().length);
    assert.ok(delta.some((e) => e.claims.delta > 0), "delta never claimed");
    for (const c of report.cli) {
      assert.ok(
        c.compressedBytes > 0 && c.GBps > 0,
        `${c.tool} ${c.args.join(" ")}`,
      );
    }
    // with the tools here, each workload compares lz4 and zstd with them
    for (const tool of ["lz4", "zstd"]) {
      if (!report.cli.some((c) => c.tool === tool)) continue;
      for (const w of workloadNames()) {
        const c = report.comparisons.find((x) =>
          x.workload === w && x.tool === tool && x.codec === tool
        );
        assert.ok(c, `no ${tool} comparison for ${w}`);
        assert.ok(Math.abs(c.fraction - c.batchRatio / c.cliRatio) < 1e-9);
      }
    }
  }, { prefix: "hakobu-bench-test-" });
});

Deno.test("bench_codecs: the comparison line says whether lz4 and zstd reach 0.95x of the CLI on memcached and postgres", () => {
  const row = (
    workload: string,
    codec: string,
    fraction: number,
  ): CliComparison => ({
    workload,
    tool: codec.replace("zero+", ""),
    codec,
    batchRatio: 10 * fraction,
    cliRatio: 10,
    fraction,
  });
  const report = {
    comparisons: [
      row("memcached", "lz4", 0.96),
      row("memcached", "zero+lz4", 0.9),
      row("memcached", "zstd", 0.95),
      row("postgres", "lz4", 0.97),
      row("postgres", "zstd", 0.949),
      row("idle", "lz4", 0.5),
    ],
  } as BenchReport;
  const text = renderComparisons(report);
  assert.match(
    text,
    /memcached: lz4 0\.960x \(9\.60 \/ 10\.00\), zero\+lz4 0\.900x .* target ≥ 0\.95x for lz4 and zstd: met/,
  );
  assert.match(text, /postgres: .*zstd 0\.949x .*: NOT met/);
  assert.match(text, /idle: lz4 0\.500x \(5\.00 \/ 10\.00\)$/m);
});
