/**
 * The dirty pages chart: how many pages each round found dirty, the
 * stop-and-copy round in its own colour. A shrinking series is pre-copy
 * converging.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { roundLabel } from "../_words.ts";
import { CHART_HEIGHT, CHART_WIDTH, type ChartSpec } from "./chart.ts";
import type { VlView } from "./_vega_lite.ts";
import { roundAxis, wantsLog } from "./_scale.ts";

const LIVE = "live";
const STOP = "stop-and-copy (VM paused)";

/**
 * Dirty pages per round (bars, each labelled with its count); the axis turns
 * logarithmic when round 0's full copy dwarfs the later rounds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dirtyPagesChart } from "./dirty_pages.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const chart = dirtyPagesChart(sampleReport(2));
 * assert.equal(chart.name, "chart_dirty_pages");
 * assert.deepEqual(
 *   chart.data.values,
 *   [
 *     { label: "0", pages: 65536, phase: "live" },
 *     { label: "1", pages: 7200, phase: "live" },
 *     { label: "2 (stop)", pages: 4000, phase: "stop-and-copy (VM paused)" },
 *   ],
 * );
 * ```
 */
export function dirtyPagesChart(report: MigrationReport): ChartSpec {
  const values = report.rounds.map((r) => ({
    label: roundLabel(r),
    pages: r.dirtyPages,
    phase: r.final ? STOP : LIVE,
  }));
  const log = wantsLog(values.map((d) => d.pages));
  const pageCount = (report.memoryBytes / report.pageSize).toLocaleString(
    "en-US",
  );
  return {
    name: "chart_dirty_pages",
    title: {
      text: "Dirty pages per round",
      subtitle:
        `pages found dirty at the sync that started the round (round 0: all ${pageCount} pages of ${report.pageSize} B)`,
    },
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    data: { values },
    encoding: {
      x: roundAxis(report.rounds),
      y: {
        field: "pages",
        type: "quantitative",
        title: log ? "dirty pages (count, log scale)" : "dirty pages (count)",
        scale: log ? { type: "log" } : {},
        axis: { format: log ? "~s" : ",d", tickCount: 5 },
      },
    },
    layer: [
      {
        mark: { type: "bar", tooltip: true },
        encoding: {
          color: {
            field: "phase",
            type: "nominal",
            title: null,
            scale: { domain: [LIVE, STOP], range: ["#4c78a8", "#e45756"] },
            legend: { orient: "top", direction: "horizontal" },
          },
        },
      },
      {
        mark: { type: "text", dy: -6, fontSize: 10, color: "#333" },
        encoding: { text: { field: "pages", format: "," } },
      },
    ],
  } satisfies VlView;
}
