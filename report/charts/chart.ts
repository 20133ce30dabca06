/**
 * What one chart is: a Vega-Lite view as plain JSON that
 * {@link reportChartSpec} stacks with the others, and the size they share
 * so that their x axes line up.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";

/**
 * One chart: a Vega-Lite unit or layer view as plain JSON, without the
 * top-level settings (`$schema`, `config`) that {@link ReportChartSpec}
 * carries once for all. Each builder checks its view against vega-lite's
 * own types; this type shows only what a caller reads.
 */
export interface ChartSpec {
  /** `chart_` and the chart's name: the SVG groups it as `chart_NAME_group`. */
  readonly name: string;
  /** The rows the chart draws, one object per mark. */
  readonly data: {
    readonly values: readonly Readonly<Record<string, unknown>>[];
  };
  /** The rest of the view (title, size, marks, encodings), as Vega-Lite reads it. */
  readonly [key: string]: unknown;
}

/**
 * The Vega-Lite specification of a whole report: the charts in a `vconcat`
 * under the report's title, config and legends.
 */
export interface ReportChartSpec {
  /** The charts, top to bottom. */
  readonly vconcat: readonly ChartSpec[];
  /** `$schema`, `title`, `config`, `resolve` and the rest, as Vega-Lite reads them. */
  readonly [key: string]: unknown;
}

/** Builds one chart from a report. */
export type ChartBuilder = (report: MigrationReport) => ChartSpec;

/** Width of every chart's plot area in pixels, so the x axes line up. */
export const CHART_WIDTH = 640;

/** Height of a chart's plot area in pixels (the time chart is one bar per line). */
export const CHART_HEIGHT = 170;
