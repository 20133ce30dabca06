/**
 * Human renderings of a {@link MigrationReport}: the per-round table and the
 * totals block the CLI prints at the end of a migration.
 *
 * @module
 */

import Table from "cli-table3";
import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import { type MigrationReport, migrationStatus } from "../engine/report.ts";

/**
 * The per-round table: pages, bytes raw and on the wire, codec mix, duration
 * and rates, one row per round, the stop-and-copy round last.
 *
 * @example
 * ```ts ignore
 * console.log(formatRoundTable(report));
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
    const mix = Object.entries(r.codecMix).map(([k, v]) =>
      `${k} ${((v / Math.max(1, r.pagesSent)) * 100).toFixed(0)}%`
    )
      .join(" ");
    table.push([
      r.final ? `${r.round} (stop)` : String(r.round),
      String(r.pagesSent),
      formatBytes(r.rawBytes),
      formatBytes(r.wireBytes),
      r.wireBytes > 0 ? `${(r.rawBytes / r.wireBytes).toFixed(1)}x` : "-",
      mix || "-",
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
 * ```ts ignore
 * verdictLine(report); // "VERIFIED (memory digests match)"
 * ```
 */
export function verdictLine(report: MigrationReport): string {
  if (report.verified) {
    return report.verification === "stream-digest"
      ? "VERIFIED (the rebuilt stream's SHA-256 matches the source's, on both ends)"
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

/**
 * The totals of a migration in a few aligned lines.
 *
 * @example
 * ```ts ignore
 * console.log(formatSummary(report));
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
    ["gpu", report.gpu?.note ?? "-"],
    ["digest", report.digest || "-"],
  ];
  const w = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
