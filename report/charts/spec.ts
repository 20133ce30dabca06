/**
 * The composer: every chart of a report stacked in one Vega-Lite `vconcat`
 * under the report's title, with the fonts, colours and legends they share.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { statusWords } from "../_words.ts";
import type { ChartBuilder, ReportChartSpec } from "./chart.ts";
import type { VlStack } from "./_vega_lite.ts";
import { bytesChart } from "./bytes.ts";
import { codecMixChart } from "./codec_mix.ts";
import { dirtyPagesChart } from "./dirty_pages.ts";
import { ratesChart } from "./rates.ts";
import { timeChart } from "./time.ts";

const FONT = "Helvetica, Arial, 'DejaVu Sans', sans-serif";

/** The charts by name, in the order they are stacked. */
const CHARTS: Readonly<Record<string, ChartBuilder>> = {
  dirty_pages: dirtyPagesChart,
  bytes: bytesChart,
  rates: ratesChart,
  codec_mix: codecMixChart,
  time: timeChart,
};

/**
 * Names of the charts, in the order they are stacked. Chart `NAME` is the
 * SVG group of class `chart_NAME_group`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CHART_NAMES } from "./spec.ts";
 *
 * assert.deepEqual(CHART_NAMES, ["dirty_pages", "bytes", "rates", "codec_mix", "time"]);
 * ```
 */
export const CHART_NAMES: readonly string[] = Object.keys(CHARTS);

/**
 * The Vega-Lite specification of the stacked charts of a report: one
 * `vconcat` of the charts in {@link CHART_NAMES} order, ready for
 * `vl.compile`. For tools that want to restyle or embed the charts;
 * `renderReportSvg` draws it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { reportChartSpec } from "./spec.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const spec = reportChartSpec(sampleReport());
 * assert.deepEqual(spec.vconcat.map((c) => c.name), [
 *   "chart_dirty_pages",
 *   "chart_bytes",
 *   "chart_rates",
 *   "chart_codec_mix",
 *   "chart_time",
 * ]);
 * assert.deepEqual(spec.title, {
 *   text: "hakobu migration: sim:memcached 256.00 MiB seed 1",
 *   subtitle: "policy test-policy, 5 rounds, verified",
 *   fontSize: 16,
 *   anchor: "start",
 *   offset: 20,
 * });
 * ```
 */
export function reportChartSpec(report: MigrationReport): ReportChartSpec {
  const layout = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    description: `Migration report of ${report.vm}`,
    title: {
      text: `hakobu migration: ${report.vm}`,
      subtitle: `policy ${report.policy}, ${report.rounds.length} rounds, ${
        statusWords(report)
      }`,
      fontSize: 16,
      anchor: "start",
      offset: 20,
    },
    background: "white",
    padding: 16,
    spacing: 36,
    config: {
      font: FONT,
      title: {
        anchor: "start",
        frame: "group",
        fontSize: 14,
        subtitleColor: "#555",
      },
      axis: { labelFontSize: 11, titleFontSize: 11, titleColor: "#333" },
      axisY: { minExtent: 48 },
      legend: { labelFontSize: 11, symbolType: "square", labelLimit: 400 },
      view: { stroke: "#ddd" },
    },
    // Each chart keeps its own colours and legend: a shared scale would
    // merge "live" with "raw" and "send rate" into one palette.
    resolve: {
      scale: { color: "independent", strokeDash: "independent" },
      legend: { color: "independent", strokeDash: "independent" },
    },
  } satisfies Omit<VlStack, "vconcat">;
  return {
    ...layout,
    vconcat: Object.values(CHARTS).map((build) => build(report)),
  };
}
