import assert from "node:assert/strict";
import { runScript, withTempDir } from "./_cli/_cli_testing.ts";
import { type ChannelsReport, renderTable } from "./bench_channels.ts";

Deno.test("bench_channels runs on 8 MiB and writes a verified curve per chain, 1 to --max channels", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/channels.json`;
    const r = await runScript(
      new URL("./bench_channels.ts", import.meta.url).pathname,
      [
        "--mem",
        "8MiB",
        "--max",
        "3",
        "--runs",
        "1",
        "--chains",
        "zero,lz4;raw",
        "--out",
        out,
      ],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /1st round GB\/s .* 2nd round GB\/s/);
    assert.match(
      r.stdout,
      /2 channels vs 1, first round \(target ≥ 1\.7x\): zero,lz4 /,
    );
    assert.match(
      r.stdout,
      /2 channels vs 1, second round \(target ≥ 1\.7x\): zero,lz4 /,
    );
    const report = JSON.parse(await Deno.readTextFile(out)) as ChannelsReport;
    assert.equal(report.memBytes, 8 << 20);
    assert.equal(report.pageSize, 4096);
    assert.equal(report.workload, "memcached");
    assert.equal(report.maxChannels, 3);
    assert.equal(report.runs, 1);
    assert.deepEqual(report.chains.map((c) => c.label), ["zero,lz4", "raw"]);
    assert.deepEqual(report.chains[0].chain, ["zero", "lz4", "raw"]);
    assert.deepEqual(report.chains[1].chain, ["raw"]);
    const pages = (8 << 20) / 4096;
    for (const c of report.chains) {
      assert.deepEqual(c.points.map((p) => p.channels), [1, 2, 3]);
      for (const p of c.points) {
        // the round was decoded by the receiver's pool and compared with the source
        assert.equal(p.verified, true, `${c.label} at ${p.channels}`);
        assert.equal(p.pagesApplied, pages);
        assert.equal(p.pagesDiffering, 0);
        assert.ok(p.frames >= p.channels, "at least one frame per channel");
        for (const f of [p.first, p.second]) {
          assert.equal(f.ms.length, 1);
          assert.equal(f.cpuMs.length, 1);
          assert.ok(f.medianMs > 0 && f.GBps > 0 && f.coresBusy > 0);
          assert.ok(
            Math.abs(f.GBps - report.memBytes / f.medianMs / 1e6) < 1e-9,
          );
        }
      }
      assert.equal(c.points[0].first.speedup, 1);
      assert.equal(c.points[0].second.speedup, 1);
      assert.ok(
        Math.abs(
          c.points[1].second.speedup -
            c.points[0].second.ms[0] / c.points[1].second.ms[0],
        ) < 1e-9,
      );
      // raw sends every page's bytes; zero,lz4 sends memcached's zero pages as nothing
      if (c.label === "raw") assert.ok(c.points[0].wireBytes > 8 << 20);
    }
    assert.ok(
      report.chains[0].points[0].wireBytes <
        report.chains[1].points[0].wireBytes / 2,
    );
    assert.deepEqual(
      report.target?.rows.map((t) => [t.label, t.round]),
      [
        ["zero,lz4", "first"],
        ["raw", "first"],
        ["zero,lz4", "second"],
        ["raw", "second"],
      ],
    );
    assert.equal(
      report.target?.rows[2].speedup,
      report.chains[0].points[1].second.speedup,
    );
    // the machine's own curve, beside the channels (CI installs zstd)
    assert.equal(report.machine?.bytes, 8 << 20);
    assert.deepEqual(report.machine?.points.map((p) => p.processes), [1, 2, 3]);
    assert.equal(report.machine?.points[0].speedup, 1);
    for (const p of report.machine!.points) {
      assert.ok(p.ms > 0 && p.speedup > 0);
    }
    assert.match(
      r.stdout,
      /the machine itself, k independent zstd -1 processes on the memory's first 8 MiB at once vs one: 1 → 1\.00x, 2 → \d+\.\d\dx, 3 → /,
    );
  }, { prefix: "hakobu-bench-channels-" });
});

Deno.test("bench_channels: the target lines say met or NOT met per chain and round, and a broken round shows in the table", () => {
  const round = (speedup: number) => ({
    ms: [100 / speedup],
    cpuMs: [100],
    medianMs: 100 / speedup,
    GBps: 2.56 * speedup,
    speedup,
    coresBusy: 1,
  });
  const point = (
    channels: number,
    first: number,
    second: number,
    verified = true,
  ) => ({
    channels,
    first: round(first),
    second: round(second),
    frames: 4,
    wireBytes: 1e6,
    pagesApplied: 65536,
    pagesDiffering: verified ? 0 : 3,
    verified,
  });
  const report: ChannelsReport = {
    workload: "memcached",
    memBytes: 256 << 20,
    pageSize: 4096,
    batchPages: 256,
    runs: 3,
    maxChannels: 2,
    cores: 2,
    deno: "2.x",
    date: "",
    chains: [
      {
        chain: ["zero", "lz4", "raw"],
        label: "zero,lz4",
        points: [point(1, 1, 1), point(2, 1.2, 1.82)],
      },
      {
        chain: ["zero", "zstd", "raw"],
        label: "zero,zstd",
        points: [point(1, 1, 1), point(2, 1.1, 1.5, false)],
      },
    ],
    machine: {
      tool: "zstd -1 (command line), one process per core",
      bytes: 256 << 20,
      points: [
        { processes: 1, ms: 300, speedup: 1 },
        { processes: 2, ms: 400, speedup: 1.5 },
      ],
    },
    target: {
      speedup: 1.7,
      rows: [
        { label: "zero,lz4", round: "first", speedup: 1.2, met: false },
        { label: "zero,zstd", round: "first", speedup: 1.1, met: false },
        { label: "zero,lz4", round: "second", speedup: 1.82, met: true },
        { label: "zero,zstd", round: "second", speedup: 1.5, met: false },
      ],
    },
  };
  const text = renderTable(report);
  assert.match(
    text,
    /first round \(target ≥ 1\.7x\): zero,lz4 1\.20x NOT met, zero,zstd 1\.10x NOT met/,
  );
  assert.match(
    text,
    /second round \(target ≥ 1\.7x\): zero,lz4 1\.82x met, zero,zstd 1\.50x NOT met/,
  );
  assert.match(text, /zero,zstd .*│ +2 │ .*1\.10x .*1\.50x .*│ NO/);
  assert.match(
    text,
    /the machine itself, k independent zstd -1 processes on the memory's first 256 MiB at once vs one: 1 → 1\.00x, 2 → 1\.50x\n/,
  );
  assert.doesNotMatch(
    renderTable({ ...report, machine: null }),
    /the machine itself/,
  );
});
