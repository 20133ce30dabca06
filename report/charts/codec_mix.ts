/**
 * The codec mix chart: which codec claimed the pages of each round, as
 * shares, so a round of 65,536 pages and one of 40 read alike.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { roundLabel } from "../_words.ts";
import { CHART_HEIGHT, CHART_WIDTH, type ChartSpec } from "./chart.ts";
import type { VlView } from "./_vega_lite.ts";
import { roundAxis } from "./_scale.ts";

/**
 * Each codec's share of the pages sent per round (bars stacked to 100%,
 * codecs in the order the report first names them). Codecs that claimed no
 * page in a round draw no bar there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecMixChart } from "./codec_mix.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const chart = codecMixChart(sampleReport(1));
 * assert.deepEqual(chart.data.values, [
 *   { label: "0", codec: "zero", pages: 57000 },
 *   { label: "0", codec: "raw", pages: 8536 },
 *   { label: "1 (stop)", codec: "raw", pages: 4000 },
 * ]);
 * ```
 */
export function codecMixChart(report: MigrationReport): ChartSpec {
  const rounds = report.rounds;
  const codecs = [...new Set(rounds.flatMap((r) => Object.keys(r.codecMix)))];
  const values = rounds.flatMap((r) =>
    Object.entries(r.codecMix)
      .filter(([, pages]) => pages > 0)
      .map(([codec, pages]) => ({ label: roundLabel(r), codec, pages }))
  );
  return {
    name: "chart_codec_mix",
    title: {
      text: "Codec mix per round",
      subtitle: "share of the pages sent in the round that each codec encoded",
    },
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    data: { values },
    mark: { type: "bar", tooltip: true },
    encoding: {
      x: roundAxis(rounds),
      y: {
        field: "pages",
        type: "quantitative",
        stack: "normalize",
        title: "share of pages sent (%)",
        axis: { format: ".0%", tickCount: 5 },
      },
      color: {
        field: "codec",
        type: "nominal",
        title: null,
        sort: codecs,
        scale: { domain: codecs, scheme: "tableau10" },
        legend: { orient: "top", direction: "horizontal" },
      },
      order: { field: "codec", sort: "ascending" },
    },
  } satisfies VlView;
}
