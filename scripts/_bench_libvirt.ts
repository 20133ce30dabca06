/**
 * The pure parts of `bench_libvirt.ts`: its modes, the summary of each
 * mode's runs (medians) and the table with ratios against libvirt plain.
 *
 * @module
 */

import Table from "cli-table3";
import { median } from "./_median.ts";

/** How a migration's stream is carried. */
export type BenchMode =
  | "plain"
  | "xbzrle"
  | "mt"
  | "zstd"
  | "hakobu-lz4"
  | "hakobu-zstd";

/** Every mode, in the table's order. */
export const BENCH_MODES: readonly BenchMode[] = [
  "plain",
  "xbzrle",
  "mt",
  "zstd",
  "hakobu-lz4",
  "hakobu-zstd",
];

/** What each mode is, for the table. */
export const MODE_LABELS: Readonly<Record<BenchMode, string>> = {
  plain: "libvirt plain",
  xbzrle: "libvirt xbzrle",
  mt: "libvirt mt (zlib threads)",
  zstd: "libvirt zstd",
  "hakobu-lz4": "libvirt + hakobu zero,lz4",
  "hakobu-zstd": "libvirt + hakobu zero,zstd",
};

/** hakobu's codec chain of a tunnel mode, or null for libvirt's own modes. */
export function tunnelCodecs(mode: BenchMode): string[] | null {
  return mode === "hakobu-lz4"
    ? ["zero", "lz4"]
    : mode === "hakobu-zstd"
    ? ["zero", "zstd"]
    : null;
}

/** One migration of the bench. */
export interface BenchRun {
  /** Wall time of `virDomainMigrateToURI3`, ms. */
  readonly ms: number;
  /** The destination's completed job's downtime, ms (null: not reported). */
  readonly downtimeMs: number | null;
  /** Bytes between the two hosts (the proxy's both ways, or the tunnel's wire bytes). */
  readonly linkBytes: number;
  /** The guest's check on the destination: null when ok, else what failed. */
  readonly checkError: string | null;
  /** The tunnel's verdict (tunnel modes): verified or not. */
  readonly verified?: boolean;
  /** The verdict's words (tunnel modes): what matched, or what failed. */
  readonly verdictDetail?: string;
}

/** A mode's runs, or why the mode could not run. */
export interface ModeResult {
  readonly mode: BenchMode;
  readonly runs: readonly BenchRun[];
  /** Set when libvirt refused the mode (e.g. zstd on libvirt 9.0). */
  readonly refused?: string;
}

/** Medians of a mode's runs. */
export interface ModeSummary {
  readonly mode: BenchMode;
  readonly runs: number;
  readonly ms: number | null;
  readonly downtimeMs: number | null;
  readonly linkBytes: number | null;
  readonly checksOk: number;
  readonly refused?: string;
}

function medianOrNull(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? median(v) : null;
}

/** The medians of a mode's runs (a failed check still counts its figures; `checksOk` tells). */
export function summarize(result: ModeResult): ModeSummary {
  return {
    mode: result.mode,
    runs: result.runs.length,
    ms: medianOrNull(result.runs.map((r) => r.ms)),
    downtimeMs: medianOrNull(result.runs.map((r) => r.downtimeMs)),
    linkBytes: medianOrNull(result.runs.map((r) => r.linkBytes)),
    checksOk:
      result.runs.filter((r) => r.checkError === null && r.verified !== false)
        .length,
    ...(result.refused !== undefined ? { refused: result.refused } : {}),
  };
}

function ratio(x: number | null, base: number | null): string {
  return x === null || base === null || base === 0
    ? "-"
    : `${(x / base).toFixed(2)}x`;
}

/** The side-by-side table: medians, and time and bytes as ratios of libvirt plain's. */
export function formatTable(summaries: readonly ModeSummary[]): string {
  const base = summaries.find((s) => s.mode === "plain");
  const t = new Table({
    head: [
      "mode",
      "runs",
      "time ms",
      "downtime ms",
      "link MiB",
      "time vs plain",
      "bytes vs plain",
      "guest ok",
    ],
    style: { head: [], border: [] },
  });
  for (const s of summaries) {
    if (s.refused !== undefined) {
      t.push([MODE_LABELS[s.mode], {
        colSpan: 7,
        content: `refused: ${s.refused}`,
      }]);
      continue;
    }
    t.push([
      MODE_LABELS[s.mode],
      String(s.runs),
      s.ms === null ? "-" : s.ms.toFixed(0),
      s.downtimeMs === null ? "-" : s.downtimeMs.toFixed(0),
      s.linkBytes === null ? "-" : (s.linkBytes / 2 ** 20).toFixed(1),
      ratio(s.ms, base?.ms ?? null),
      ratio(s.linkBytes, base?.linkBytes ?? null),
      `${s.checksOk}/${s.runs}`,
    ]);
  }
  return t.toString();
}
