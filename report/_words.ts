/**
 * How a report's values read in words, shared by the tables, the charts and
 * the HTML page so that a round, a status or a codec mix reads the same in
 * each.
 *
 * @module
 */

import type { MigrationReport, RoundReport } from "../engine/report.ts";
import { migrationStatus } from "../engine/report.ts";

/** A report's status in words, for titles, cards and badges. */
export const STATUS_WORDS = {
  verified: "verified",
  unchecked: "completed, not checked",
  aborted: "aborted",
  failed: "NOT verified",
} as const;

/** The status of a report in words ({@link STATUS_WORDS}). */
export function statusWords(
  report: Pick<
    MigrationReport,
    "verified" | "verification" | "aborted" | "outcome"
  >,
): string {
  return STATUS_WORDS[migrationStatus(report)];
}

/** A round's label: its index, and `(stop)` for the stop-and-copy round. */
export function roundLabel(r: Pick<RoundReport, "round" | "final">): string {
  return r.final ? `${r.round} (stop)` : String(r.round);
}

/** Each codec's share of the pages sent in a round: `zero 87% raw 13%`. */
export function codecMixText(
  r: Pick<RoundReport, "codecMix" | "pagesSent">,
): string {
  return Object.entries(r.codecMix)
    .map(([k, v]) =>
      `${k} ${((v / Math.max(1, r.pagesSent)) * 100).toFixed(0)}%`
    )
    .join(" ");
}

/** Raw bytes over wire bytes of a round, `-` when nothing went on the wire. */
export function ratioText(
  r: Pick<RoundReport, "rawBytes" | "wireBytes">,
): string {
  return r.wireBytes > 0 ? `${(r.rawBytes / r.wireBytes).toFixed(1)}x` : "-";
}
