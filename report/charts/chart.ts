/**
 * What one chart is: a Vega-Lite view that {@link reportChartSpec} stacks
 * with the others, and the size they share so that their x axes line up.
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import type { MigrationReport } from "../../engine/report.ts";

/**
 * The Vega-Lite specification of a whole report: a titled, configured
 * `vconcat` of {@link ChartSpec}s.
 */
export type ReportChartSpec = Extract<TopLevelSpec, { vconcat: unknown }>;

/**
 * One chart: a Vega-Lite unit or layer view, without the top-level settings
 * (`$schema`, `config`) that {@link ReportChartSpec} carries once for all.
 * Its `name` is `chart_` and the chart's name, so the SVG groups it as
 * `chart_NAME_group`.
 */
export type ChartSpec = ReportChartSpec["vconcat"][number];

/** Builds one chart from a report. */
export type ChartBuilder = (report: MigrationReport) => ChartSpec;

/** Width of every chart's plot area in pixels, so the x axes line up. */
export const CHART_WIDTH = 640;

/** Height of a chart's plot area in pixels (the time chart is one bar per line). */
export const CHART_HEIGHT = 170;
