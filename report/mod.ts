/**
 * Presentation of migrations: what a person reads of a
 * {@link MigrationReport} and of a migration in progress. The engine
 * produces the report as plain data (`migrate()` returns it, `--report`
 * writes it as JSON); this package turns it into
 *
 * - text for a terminal: {@link formatRoundTable}, {@link formatSummary},
 *   {@link verdictLine} (`table.ts`, cli-table3), and {@link ProgressView}
 *   for `onProgress` (`progress.ts`);
 * - charts: one Vega-Lite builder per chart, the composer
 *   {@link reportChartSpec} and the SVG renderer {@link renderReportSvg}
 *   (`charts/`, vega and vega-lite, loaded on the first render);
 * - a self-contained HTML page: {@link renderReportHtml} (`html.ts`).
 *
 * It is its own entry point (`@hakobu/hakobu/report`), apart from the
 * engine's: a program that only migrates loads none of it. It reads the
 * engine's report type and number formatting, never the other way round.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSummary, renderReportHtml } from "./mod.ts";
 * import { sampleReport } from "./_sample_report.ts";
 *
 * const report = sampleReport(); // what migrate() returns
 * assert.match(formatSummary(report), /^result +VERIFIED/);
 * assert.match(await renderReportHtml(report), /<svg[\s>]/);
 * ```
 *
 * @module
 */

export type { MigrationReport } from "../engine/report.ts";
export type { MigrationProgress } from "../engine/precopy.ts";
export { formatRoundTable, formatSummary, verdictLine } from "./table.ts";
export { ProgressView, type ProgressViewOptions } from "./progress.ts";
export * from "./charts/mod.ts";
export { renderReportHtml } from "./html.ts";
