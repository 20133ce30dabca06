import assert from "node:assert/strict";
import { codecNames } from "../engine/codecs/registry.ts";
import { workloadNames } from "../engine/sim/mod.ts";
import type { BenchReport } from "./bench_codecs.ts";

Deno.test("bench_codecs runs on 8 MiB and writes JSON with an entry per workload and codec", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hakobu-bench-test-" });
  try {
    const out = `${dir}/bench.json`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./bench_codecs.ts", import.meta.url).pathname,
        "--mem",
        "8MiB",
        "--runs",
        "1",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(r.stdout);
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.match(stdout, /enc GB\/s/);
    const report = JSON.parse(await Deno.readTextFile(out)) as BenchReport;
    assert.equal(report.memBytes, 8 << 20);
    assert.equal(report.pageSize, 4096);
    for (const w of workloadNames()) {
      for (const c of codecNames()) {
        const first = report.codecs.find((e) =>
          e.workload === w && e.codec === c && e.pass === 1
        );
        assert.ok(first, `no entry for ${w} x ${c}`);
        assert.equal(first.pages, (8 << 20) / 4096);
        assert.ok(
          first.ratio > 0 && first.encodeGBps > 0 && first.decodeGBps > 0,
        );
        assert.ok(first.claimed >= 0 && first.claimed <= 1);
      }
    }
    const delta = report.codecs.find((e) =>
      e.codec === "delta" && e.pass === 2
    );
    if (codecNames().includes("delta")) {
      assert.ok(delta, "no pass 2 entry for delta");
    }
    for (const c of report.cli) {
      assert.ok(
        c.compressedBytes > 0 && c.GBps > 0,
        `${c.tool} ${c.args.join(" ")}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
