/**
 * The bytes chart: page bytes against bytes on the wire, side by side per
 * round. The gap between the two bars is what the codecs saved.
 *
 * @module
 */

import type { MigrationReport } from "../../engine/report.ts";
import { formatBytes } from "../../engine/format.ts";
import { roundLabel } from "../_words.ts";
import { CHART_HEIGHT, CHART_WIDTH, type ChartSpec } from "./chart.ts";
import type { VlView } from "./_vega_lite.ts";
import { oneDecimal, roundAxis, sizeUnit, wantsLog } from "./_scale.ts";

const RAW = "page bytes (raw)";
const WIRE = "on the wire";

/**
 * Raw page bytes against wire bytes per round (grouped bars in the binary
 * unit the largest bar reaches, each labelled).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytesChart } from "./bytes.ts";
 * import { sampleReport } from "../_sample_report.ts";
 *
 * const chart = bytesChart(sampleReport(2));
 * const values = chart.data.values;
 * // two bars per round, in MiB: round 0 sent 256 MiB raw, 34.3 MiB on the wire
 * assert.equal(values.length, 2 * 3);
 * assert.deepEqual(values.slice(0, 2).map((v) => [v.kind, v.text]), [
 *   ["page bytes (raw)", "256"],
 *   ["on the wire", "34.3"],
 * ]);
 * ```
 */
export function bytesChart(report: MigrationReport): ChartSpec {
  const rounds = report.rounds;
  const unit = sizeUnit(
    Math.max(0, ...rounds.map((r) => Math.max(r.rawBytes, r.wireBytes))),
  );
  const values = rounds.flatMap((r) => [
    {
      label: roundLabel(r),
      kind: RAW,
      value: r.rawBytes / unit.div,
      text: oneDecimal(r.rawBytes / unit.div),
    },
    {
      label: roundLabel(r),
      kind: WIRE,
      value: r.wireBytes / unit.div,
      text: oneDecimal(r.wireBytes / unit.div),
    },
  ]);
  const log = wantsLog(values.map((b) => b.value));
  return {
    name: "chart_bytes",
    title: {
      text: "Bytes per round: raw pages against the wire",
      subtitle: `total ${formatBytes(report.rawBytes)} raw, ${
        formatBytes(report.wireBytes)
      } on the wire (${report.compressionRatio.toFixed(2)}x)`,
    },
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    data: { values },
    encoding: {
      x: roundAxis(rounds),
      xOffset: { field: "kind", type: "nominal", sort: [RAW, WIRE] },
      y: {
        field: "value",
        type: "quantitative",
        title: `${unit.name}${log ? " (log scale)" : ""}`,
        scale: log ? { type: "log" } : {},
        axis: { format: "~s", tickCount: 5 },
      },
    },
    layer: [
      {
        mark: { type: "bar", tooltip: true },
        encoding: {
          color: {
            field: "kind",
            type: "nominal",
            title: null,
            scale: { domain: [RAW, WIRE], range: ["#9ecae9", "#4c78a8"] },
            legend: { orient: "top", direction: "horizontal" },
          },
        },
      },
      {
        mark: { type: "text", dy: -6, fontSize: 9, color: "#333" },
        encoding: { text: { field: "text" } },
      },
    ],
  } satisfies VlView;
}
