import assert from "node:assert/strict";
import { sampleReport } from "../_sample_report.ts";
import {
  bytesChart,
  CHART_NAMES,
  type ChartSpec,
  codecMixChart,
  dirtyPagesChart,
  ratesChart,
  reportChartSpec,
  timeChart,
} from "./mod.ts";

type Axes = { x: { title: string }; y: { title: string } };

function yTitle(chart: ChartSpec): string {
  return (chart.encoding as Axes).y.title;
}

Deno.test("reportChartSpec: one chart per name in CHART_NAMES, in order, each built by its own builder", () => {
  const report = sampleReport(3);
  const spec = reportChartSpec(report);
  assert.deepEqual(
    spec.vconcat.map((c) => c.name),
    CHART_NAMES.map((n) => `chart_${n}`),
  );
  const builders = [
    dirtyPagesChart,
    bytesChart,
    ratesChart,
    codecMixChart,
    timeChart,
  ];
  assert.deepEqual(spec.vconcat, builders.map((build) => build(report)));
});

Deno.test("dirtyPagesChart and bytesChart: a linear axis, or a log axis when the bars span decades", () => {
  const report = sampleReport(3);
  assert.equal(yTitle(dirtyPagesChart(report)), "dirty pages (count)");
  assert.equal(yTitle(bytesChart(report)), "MiB");
  const rounds = report.rounds.map((r, i) =>
    i === 1 ? { ...r, dirtyPages: 100, rawBytes: 100 * 4096 } : r
  );
  const spread = { ...report, rounds };
  assert.equal(
    yTitle(dirtyPagesChart(spread)),
    "dirty pages (count, log scale)",
  );
  assert.equal(yTitle(bytesChart(spread)), "MiB (log scale)");
  // A zero cannot sit on a log axis: a round that sent nothing keeps it linear.
  const withZero = {
    ...spread,
    rounds: rounds.map((r, i) => i === 2 ? { ...r, dirtyPages: 0 } : r),
  };
  assert.equal(yTitle(dirtyPagesChart(withZero)), "dirty pages (count)");
});

Deno.test("ratesChart: the live rounds only, in the unit the fastest rate reaches; timeChart in ms below 2 s", () => {
  const slow = sampleReport(2, { totalTimeMs: 1500 });
  const rounds = slow.rounds.map((r) => ({
    ...r,
    sendRate: 50_000,
    wireRate: 50_100,
    dirtyRate: 1_000,
  }));
  const rates = ratesChart({ ...slow, rounds });
  assert.equal(yTitle(rates), "kbit/s");
  assert.deepEqual(
    [...new Set(rates.data.values.map((v) => v.label))],
    ["0", "1"],
  );
  assert.equal((timeChart(slow).encoding as Axes).x.title, "time (ms)");
});

Deno.test("codecMixChart: codecs that claimed nothing in a round draw no bar there", () => {
  const report = sampleReport(1);
  const rounds = report.rounds.map((r) => ({
    ...r,
    codecMix: { ...r.codecMix, delta: 0 },
  }));
  const chart = codecMixChart({ ...report, rounds });
  assert.ok(chart.data.values.every((v) => v.codec !== "delta"));
  assert.equal(chart.data.values.length, 3);
});
