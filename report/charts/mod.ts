/**
 * Charts of a {@link MigrationReport}: one Vega-Lite builder per chart, the
 * composer that stacks them, and the SVG renderer.
 *
 * Charts, top to bottom:
 *
 * - `dirty_pages` ({@link dirtyPagesChart}): dirty pages per round (bars);
 * - `bytes` ({@link bytesChart}): page bytes against bytes on the wire per
 *   round (grouped bars);
 * - `rates` ({@link ratesChart}): send, wire and dirty rate per live round
 *   (lines with points);
 * - `codec_mix` ({@link codecMixChart}): share of the pages sent by each
 *   codec per round (stacked bars);
 * - `time` ({@link timeChart}): total time, live rounds, downtime and
 *   verification (bars).
 *
 * {@link reportChartSpec} stacks them; {@link renderReportSvg} draws the
 * stack. A new chart is one file with one builder and one line in
 * `spec.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CHART_NAMES, renderReportSvg } from "./mod.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const svg = await renderReportSvg(sampleReport());
 * for (const name of CHART_NAMES) assert.ok(svg.includes(`chart_${name}_group`));
 * ```
 *
 * @module
 */

export {
  CHART_HEIGHT,
  CHART_WIDTH,
  type ChartBuilder,
  type ChartSpec,
  type ReportChartSpec,
} from "./chart.ts";
export { dirtyPagesChart } from "./dirty_pages.ts";
export { bytesChart } from "./bytes.ts";
export { ratesChart } from "./rates.ts";
export { codecMixChart } from "./codec_mix.ts";
export { timeChart } from "./time.ts";
export { CHART_NAMES, reportChartSpec } from "./spec.ts";
export { renderReportSvg } from "./svg.ts";
