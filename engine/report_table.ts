/**
 * Human renderings of a {@link MigrationReport}: the per-round table and the
 * totals block the CLI prints at the end of a migration.
 *
 * @module
 */

import Table from "cli-table3";
import { formatBytes, formatDuration, formatRate } from "./format.ts";
import type { MigrationReport } from "./report.ts";

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
      report.verified
        // Stream-mode migrations (QEMU's own) have no hakobu digest: say what was checked.
        ? (report.digest
          ? "VERIFIED (memory digests match)"
          : `COMPLETED (${report.outcome})`)
        : `NOT VERIFIED: ${report.outcome}`,
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
