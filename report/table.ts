/**
 * Human renderings of a {@link MigrationReport}: the per-round table and the
 * totals block the CLI prints at the end of a migration.
 *
 * @module
 */

import Table from "cli-table3";
import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import { type MigrationReport, migrationStatus } from "../engine/report.ts";
import { codecMixText, ratioText, roundLabel } from "./_words.ts";

/**
 * The per-round table: pages, bytes raw and on the wire, codec mix, duration
 * and rates, one row per round, the stop-and-copy round last.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatRoundTable } from "./table.ts";
 * import { sampleReport } from "./_sample_report.ts";
 *
 * // One row per round: pick the cells out of the box drawing.
 * const rows = formatRoundTable(sampleReport(1))
 *   .split("\n")
 *   .filter((line) => line.startsWith("│"))
 *   .map((line) => line.split("│").slice(1, 7).map((cell) => cell.trim()));
 * assert.deepEqual(rows, [
 *   ["round", "pages", "raw", "wire", "ratio", "codec mix"],
 *   ["0", "65536", "256.00 MiB", "34.34 MiB", "7.5x", "zero 87% raw 13%"],
 *   ["1 (stop)", "4000", "15.63 MiB", "15.69 MiB", "1.0x", "raw 100%"],
 * ]);
 * ```
 */
export function formatRoundTable(report: MigrationReport): string {
  const table = new Table({
    head: [
      "round",
      "pages",
      "raw",
      "wire",
      "ratio",
      "codec mix",
      "time",
      "send rate",
      "dirty rate",
      "left",
      "decision",
    ],
    style: { head: [], border: [] },
  });
  for (const r of report.rounds) {
    table.push([
      roundLabel(r),
      String(r.pagesSent),
      formatBytes(r.rawBytes),
      formatBytes(r.wireBytes),
      ratioText(r),
      codecMixText(r) || "-",
      formatDuration(r.durationMs),
      r.final ? "-" : formatRate(r.sendRate),
      r.final ? "-" : formatRate(r.dirtyRate),
      String(r.remainingPages),
      r.decision,
    ]);
  }
  return table.toString();
}

/**
 * The verdict in words: what hakobu compared, and whether it matched.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verdictLine } from "./table.ts";
 * import { sampleReport } from "./_sample_report.ts";
 *
 * assert.equal(verdictLine(sampleReport()), "VERIFIED (memory digests match)");
 * assert.equal(
 *   verdictLine(sampleReport(4, { verified: false, aborted: true, outcome: "aborted by policy" })),
 *   "ABORTED: aborted by policy",
 * );
 * ```
 */
export function verdictLine(report: MigrationReport): string {
  if (report.verified) {
    return report.verification === "stream-digest"
      ? "VERIFIED (the rebuilt stream's XXH3-128 matches the source's, on both ends)"
      : "VERIFIED (memory digests match)";
  }
  switch (migrationStatus(report)) {
    case "unchecked":
      return `COMPLETED, NOT CHECKED: ${report.outcome}`;
    case "aborted":
      return `ABORTED: ${report.outcome}`;
    default:
      return `NOT VERIFIED: ${report.outcome}`;
  }
}

/** The resumes of a migration after lost links, in one line: how often, and what each took. */
function resumesText(resumes: NonNullable<MigrationReport["resumes"]>): string {
  return `${resumes.length} time${
    resumes.length === 1 ? "" : "s"
  } after a lost link: ${
    resumes.map((r) =>
      `round ${r.round}, down ${
        formatDuration(r.downMs)
      }, ${r.pagesMissing} pages missing + ${r.pagesDirtied} dirtied sent again`
    ).join("; ")
  }`;
}

/**
 * The totals of a migration in a few aligned lines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSummary } from "./table.ts";
 * import { sampleReport } from "./_sample_report.ts";
 *
 * const summary = formatSummary(sampleReport());
 * assert.match(summary, /^result {6}VERIFIED \(memory digests match\)$/m);
 * assert.match(summary, /^downtime {4}700 ms$/m);
 * assert.match(summary, /^rounds {6}5 \(4 live \+ stop-and-copy\)$/m);
 * ```
 */
export function formatSummary(report: MigrationReport): string {
  const lines: [string, string][] = [
    [
      "result",
      verdictLine(report),
    ],
    ["policy", report.policy],
    ["vm", report.vm],
    [
      "link",
      report.bandwidth === null ? "unpaced" : formatRate(report.bandwidth),
    ],
    [
      "rounds",
      `${report.rounds.length} (${
        report.rounds.filter((r) => !r.final).length
      } live + stop-and-copy)`,
    ],
    ["total time", formatDuration(report.totalTimeMs)],
    ["downtime", formatDuration(report.downtimeMs)],
    ["verify", formatDuration(report.verifyMs)],
    ["raw bytes", formatBytes(report.rawBytes)],
    [
      "wire bytes",
      `${formatBytes(report.wireBytes)} (${
        report.compressionRatio.toFixed(2)
      }x)`,
    ],
    [
      "source cpu",
      `${report.sourceCpuSeconds.toFixed(2)} s (${
        report.sourceCpuSecondsPerGiB.toFixed(2)
      } s/GiB)`,
    ],
    ...(report.resumes?.length
      ? [["resumed", resumesText(report.resumes)] as [string, string]]
      : []),
    ["gpu", report.gpu?.note ?? "-"],
    ["digest", report.digest || "-"],
    ...(report.backend
      ? [["backend", report.backend] as [string, string]]
      : []),
    ...Object.entries(report.notes ?? {}),
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
