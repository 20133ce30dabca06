/**
 * The rates chart: the race pre-copy runs. While the send rate stays above
 * the guest's dirty rate each round is shorter than the last; when the
 * lines cross, more rounds no longer help.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { formatRate } from "../../engine/format.ts";
import { roundLabel } from "../_words.ts";
import { CHART_HEIGHT, CHART_WIDTH, type ChartSpec } from "./chart.ts";
import type { VlView } from "./_vega_lite.ts";
import { rateUnit, roundAxis } from "./_scale.ts";

const SERIES = [
  "send rate (page bytes)",
  "wire rate",
  "dirty rate (guest)",
];

/**
 * Send, wire and dirty rate per live round (lines with points, in the bit/s
 * unit the fastest reaches). The stop-and-copy round is left out: the guest
 * is paused, so there is no race to show.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ratesChart } from "./rates.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const chart = ratesChart(sampleReport(3));
 * const values = chart.data.values;
 * // three series over the three live rounds; no point for "3 (stop)"
 * assert.equal(values.length, 3 * 3);
 * assert.ok(values.every((v) => v.label !== "3 (stop)"));
 * // in Mbit/s, as links are sold: round 0 sent 100 MB/s
 * assert.deepEqual(values[0], { label: "0", series: "send rate (page bytes)", value: 800 });
 * ```
 */
export function ratesChart(report: MigrationReport): ChartSpec {
  const live = report.rounds.filter((r) => !r.final);
  const unit = rateUnit(
    Math.max(
      0,
      ...live.map((r) => Math.max(r.sendRate, r.wireRate, r.dirtyRate)),
    ),
  );
  const values = live.flatMap((r) => [
    { label: roundLabel(r), series: SERIES[0], value: r.sendRate / unit.div },
    { label: roundLabel(r), series: SERIES[1], value: r.wireRate / unit.div },
    { label: roundLabel(r), series: SERIES[2], value: r.dirtyRate / unit.div },
  ]);
  const link = report.bandwidth === null
    ? "unpaced link"
    : `link paced at ${formatRate(report.bandwidth)}`;
  return {
    name: "chart_rates",
    title: {
      text: "Send rate against dirty rate per live round",
      subtitle:
        `${link}; pre-copy converges while the send rate stays above the dirty rate`,
    },
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    data: { values },
    layer: [
      { mark: { type: "line", strokeWidth: 2, tooltip: true } },
      { mark: { type: "point", filled: true, size: 40, tooltip: true } },
    ],
    encoding: {
      x: roundAxis(live),
      y: {
        field: "value",
        type: "quantitative",
        title: unit.name,
        axis: { format: "~s", tickCount: 5 },
      },
      color: {
        field: "series",
        type: "nominal",
        title: null,
        sort: SERIES,
        scale: {
          domain: SERIES,
          range: ["#4c78a8", "#72b7b2", "#e45756"],
        },
        legend: {
          orient: "top",
          direction: "horizontal",
          symbolType: "stroke",
          symbolStrokeWidth: 2,
        },
      },
      // The wire rate dashed: it runs just above the send rate (headers),
      // and a solid line would hide the send rate under it.
      strokeDash: {
        field: "series",
        type: "nominal",
        sort: SERIES,
        scale: { domain: SERIES, range: [[1, 0], [4, 3], [1, 0]] },
      },
    },
  } satisfies VlView;
}
