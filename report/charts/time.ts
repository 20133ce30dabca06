/**
 * The time chart: where a migration's time went, and how much of it the VM
 * stood paused.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { formatDuration } from "../../engine/format.ts";
import { CHART_WIDTH, type ChartSpec } from "./chart.ts";
import type { VlView } from "./_vega_lite.ts";

/** One bar's height in pixels; the chart is as tall as its four bars. */
const BAR_HEIGHT = 24;

/**
 * Total time, live rounds, downtime and verification (horizontal bars, each
 * labelled with its duration; seconds once the total reaches 2 s).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { timeChart } from "./time.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const chart = timeChart(sampleReport());
 * const values = chart.data.values;
 * assert.deepEqual(values.map((v) => v.text), [
 *   "total (handshake to verdict): 6.90 s",
 *   "live rounds: 5.56 s",
 *   "downtime (VM paused): 700 ms",
 *   "verify: 600 ms",
 * ]);
 * ```
 */
export function timeChart(report: MigrationReport): ChartSpec {
  const liveMs = report.rounds
    .filter((r) => !r.final)
    .reduce((s, r) => s + r.durationMs, 0);
  const unit = report.totalTimeMs >= 2000
    ? { name: "s", div: 1000 }
    : { name: "ms", div: 1 };
  const values = ([
    ["total (handshake to verdict)", report.totalTimeMs],
    ["live rounds", liveMs],
    ["downtime (VM paused)", report.downtimeMs],
    ["verify", report.verifyMs],
  ] as const).map(([what, ms]) => ({
    what,
    value: ms / unit.div,
    text: `${what}: ${formatDuration(ms)}`,
  }));
  const downPct = report.totalTimeMs > 0
    ? (100 * report.downtimeMs / report.totalTimeMs).toFixed(1)
    : "0";
  const whats = values.map((t) => t.what);
  return {
    name: "chart_time",
    title: {
      text: "Time",
      subtitle: `downtime ${formatDuration(report.downtimeMs)} of ${
        formatDuration(report.totalTimeMs)
      } total (${downPct}%)`,
    },
    width: CHART_WIDTH,
    height: values.length * BAR_HEIGHT,
    data: { values },
    encoding: {
      y: {
        field: "what",
        type: "nominal",
        sort: whats,
        title: null,
        axis: { labels: false, ticks: false, domain: false },
      },
      x: {
        field: "value",
        type: "quantitative",
        title: `time (${unit.name})`,
        axis: { format: "~s", tickCount: 8 },
        // Room right of the longest bar for its text label.
        scale: {
          domainMax: Math.max(1e-9, ...values.map((t) => t.value)) * 1.45,
        },
      },
    },
    layer: [
      {
        mark: { type: "bar", tooltip: true, height: { band: 0.75 } },
        encoding: {
          color: {
            field: "what",
            type: "nominal",
            scale: {
              domain: whats,
              range: ["#bab0ac", "#4c78a8", "#e45756", "#54a24b"],
            },
            legend: null,
          },
        },
      },
      {
        mark: {
          type: "text",
          align: "left",
          dx: 5,
          fontSize: 11,
          color: "#222",
        },
        encoding: { text: { field: "text" } },
      },
    ],
  } satisfies VlView;
}
