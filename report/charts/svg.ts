/**
 * The charts of a report drawn to SVG server-side: the composed Vega-Lite
 * specification compiled to Vega and rendered by Vega's headless renderer
 * (no browser, no canvas).
 *
 * @module
 */

import type { TopLevelSpec } from "vega-lite";
import type { MigrationReport } from "../../engine/report.ts";
import { reportChartSpec } from "./spec.ts";

/**
 * Renders the charts of a report as one standalone SVG document (with
 * `xmlns`, a white background, titles and axis titles with units). Each
 * chart is a group of class `chart_NAME_group` (`CHART_NAMES`).
 *
 * vega and vega-lite are loaded on the first call, not when this module is
 * imported: they take a few hundred milliseconds to load, and a program
 * that only prints tables should not pay for them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderReportSvg } from "./svg.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const svg = await renderReportSvg(sampleReport());
 * assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg /);
 * assert.ok(svg.includes('class="mark-group role-scope chart_time_group"'));
 * ```
 */
export async function renderReportSvg(
  report: MigrationReport,
): Promise<string> {
  const [vega, vl] = await Promise.all([import("vega"), import("vega-lite")]);
  // The builders and the composer check their JSON against vega-lite's
  // types (`satisfies`); the public type is plain JSON, hence the cast.
  const spec = reportChartSpec(report) as unknown as TopLevelSpec;
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    return `<?xml version="1.0" encoding="UTF-8"?>\n${svg}\n`;
  } finally {
    view.finalize();
  }
}
