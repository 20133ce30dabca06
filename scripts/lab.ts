/**
 * The lab: one-call helpers for trying policies on simulated VMs, made for
 * the REPL (`deno task repl`) and for notebooks and quick scripts.
 *
 * - {@link simVm}: a simulated VM from a workload name and a size.
 * - {@link tryPolicy}: a real migration of a fresh simulated VM over
 *   loopback TCP to an in-process receiver; resolves with the report.
 * - {@link compare}: two policies on the same workload and seed, side by side.
 * - {@link roundTable}, {@link roundChart}: a report as a table or a chart.
 *
 * The lab sits on top of the engine and the DSL (it compiles policies and
 * parses sizes), so it is a leaf: nothing in the engine imports it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codec, policy, when } from "@hakobu/hakobu";
 * import { roundChart, roundTable, tryPolicy } from "./lab.ts";
 *
 * const p = policy("p")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.rounds(3));
 * const report = await tryPolicy(p, { workload: "memcached", mem: "16MiB" });
 * assert.equal(report.verified, true);
 * assert.match(roundTable(report), /VERIFIED/);
 * assert.match(roundChart(report, "wireBytes"), /^wireBytes per round/);
 * ```
 *
 * @module
 */

import asciichart from "asciichart";
import Table from "cli-table3";
import { compile } from "../dsl/compile.ts";
import type { Policy } from "../dsl/policy.ts";
import { parseBandwidth, parseSize } from "../dsl/units.ts";
import { formatBytes, formatDuration, formatRate } from "../engine/format.ts";
import type { Plan } from "../engine/plan.ts";
import { migrate } from "../engine/precopy.ts";
import { receiveMigration } from "../engine/receiver.ts";
import type { MigrationReport, RoundReport } from "../engine/report.ts";
import { formatRoundTable, formatSummary } from "../report/mod.ts";
import { SimMemorySink, SimVm } from "../engine/sim/mod.ts";

/** The slice of asciichart this module uses (the package ships no types). */
interface AsciiChart {
  plot(
    series: number[],
    options?: {
      height?: number;
      padding?: string;
      format?: (x: number, i: number) => string;
    },
  ): string;
}
const chart = asciichart as unknown as AsciiChart;

/** A memory size: bytes, or a string such as `"256MiB"` or `"1GiB"`. */
export type MemSize = number | string;

/** Options of {@link simVm}. */
export interface SimVmLabOptions {
  /** Guest memory: bytes or `"64MiB"`-style text (default `"64MiB"`). */
  readonly mem?: MemSize;
  /** Seed of the memory content and of the guest's writes (default 1). */
  readonly seed?: number;
  /** Page writes per second; overrides the workload's default; 0 = a still guest. */
  readonly dirtyRate?: number;
}

/** Options of {@link tryPolicy} and {@link compare}. */
export interface TryOptions extends SimVmLabOptions {
  /** Workload name, see `workloadNames()` (default `"memcached"`). */
  readonly workload?: string;
  /**
   * Overrides the policy's link pacing: bytes per second, text such as
   * `"1Gbit"`, or `null`/`"unlimited"` for an unpaced link.
   */
  readonly bandwidth?: number | string | null;
  /** Called after each round, e.g. to print progress. */
  readonly onRound?: (round: RoundReport) => void;
}

/** What {@link compare} returns. */
export interface Comparison {
  /** The first policy's report. */
  readonly a: MigrationReport;
  /** The second policy's report. */
  readonly b: MigrationReport;
  /** Both reports side by side: time, downtime, wire bytes, ratio, rounds, verified. */
  readonly table: string;
}

/** A numeric per-round field of {@link RoundReport} that {@link roundChart} can plot. */
export type RoundField =
  | "dirtyPages"
  | "pagesSent"
  | "rawBytes"
  | "wireBytes"
  | "durationMs"
  | "dirtyRate"
  | "sendRate"
  | "wireRate"
  | "remainingPages";

/** Options of {@link roundChart}. */
export interface RoundChartOptions {
  /** Chart height in rows (default 10). */
  readonly height?: number;
  /** Columns per round; default: as many as make the chart about 60 columns wide (1 to 8). */
  readonly columnsPerRound?: number;
}

/** Options of {@link roundTable}. */
export interface RoundTableOptions {
  /** Append the totals block (result, time, downtime, bytes; default true). */
  readonly summary?: boolean;
}

const DEFAULT_MEM = "64MiB";
const DEFAULT_WORKLOAD = "memcached";
const CHART_FIELDS: readonly RoundField[] = [
  "dirtyPages",
  "pagesSent",
  "rawBytes",
  "wireBytes",
  "durationMs",
  "dirtyRate",
  "sendRate",
  "wireRate",
  "remainingPages",
];

function memBytes(mem: MemSize | undefined): number {
  const m = mem ?? DEFAULT_MEM;
  return typeof m === "number" ? m : parseSize(m);
}

/**
 * Creates a simulated VM running a workload; close it with `await vm.close()`
 * (or `await using`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { simVm } from "./lab.ts";
 *
 * const vm = await simVm("memcached", { mem: "16MiB", seed: 7 });
 * assert.equal(vm.pageCount, 4096);
 * assert.equal(vm.description, "sim:memcached 16.00 MiB seed 7");
 * await vm.close();
 * ```
 *
 * @throws {PolicyError} when `mem` is text that is not a size, {@link SimError}
 *   on an unknown workload or a bad size, seed or rate.
 */
export async function simVm(
  workload: string,
  options: SimVmLabOptions = {},
): Promise<SimVm> {
  return await SimVm.create({
    memoryBytes: memBytes(options.mem),
    workload,
    seed: options.seed,
    dirtyRate: options.dirtyRate,
  });
}

function planOf(
  policyOrPlan: Policy | Plan,
  bandwidth: TryOptions["bandwidth"],
): Plan {
  const plan = compile(policyOrPlan);
  if (bandwidth === undefined) return plan;
  const rate = typeof bandwidth === "string"
    ? parseBandwidth(bandwidth)
    : bandwidth;
  return compile({ ...plan, bandwidth: rate });
}

/**
 * Migrates a fresh simulated VM with a policy, for real: over loopback TCP
 * to a receiver in this process that writes into a {@link SimMemorySink},
 * with the whole-memory digest compared at the end. Closes the VM after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codec, policy, when } from "@hakobu/hakobu";
 * import { tryPolicy } from "./lab.ts";
 *
 * const p = policy("p")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.rounds(3));
 * const report = await tryPolicy(p, { workload: "memcached", mem: "16MiB" });
 * assert.equal(report.verified, true);
 * assert.equal(report.rounds.length, 4); // three live rounds, then stop-and-copy
 * ```
 *
 * @throws {PolicyError} when the policy does not compile, {@link MigrationError}
 *   when the policy aborts or either side fails.
 */
export async function tryPolicy(
  policyOrPlan: Policy | Plan,
  options: TryOptions = {},
): Promise<MigrationReport> {
  const plan = planOf(policyOrPlan, options.bandwidth);
  const vm = await simVm(options.workload ?? DEFAULT_WORKLOAD, options);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const receiving = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          createSink: (hello) =>
            new SimMemorySink({
              pageSize: hello.pageSize,
              pageCount: hello.memoryBytes / hello.pageSize,
            }),
        });
      } finally {
        try {
          conn.close();
        } catch { /* already closed by the receiver */ }
      }
    })();
    // Settled below; keep an early failure from being reported as unhandled.
    receiving.catch(() => {});
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    let report: MigrationReport;
    try {
      report = await migrate({
        plan,
        source: vm,
        conn,
        onRound: options.onRound,
      });
    } finally {
      try {
        conn.close();
      } catch { /* already closed by the engine */ }
      // The source's error says more than the receiver's echo of it.
      await receiving.catch(() => {});
    }
    return report;
  } finally {
    listener.close();
    await vm.close();
  }
}

function label(report: MigrationReport, tag: string, other: string): string {
  return report.policy === other ? `${tag}: ${report.policy}` : report.policy;
}

/**
 * Runs two policies on the same workload, memory size and seed (a fresh VM
 * each, one after the other) and sets their totals side by side.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codec, policy, when } from "@hakobu/hakobu";
 * import { compare } from "./lab.ts";
 *
 * const plain = policy("plain").switchover(when.rounds(3));
 * const withDelta = plain.codec([codec.zero(), codec.delta(), codec.raw()]);
 * const c = await compare(plain, withDelta, {
 *   workload: "idle",
 *   mem: "8MiB",
 *   seed: 3,
 * });
 * assert.match(c.table, /plain/);
 * assert.equal(c.a.verified && c.b.verified, true);
 * ```
 *
 * @throws as {@link tryPolicy}.
 */
export async function compare(
  a: Policy | Plan,
  b: Policy | Plan,
  options: TryOptions = {},
): Promise<Comparison> {
  const opts = { ...options, seed: options.seed ?? 1 };
  const ra = await tryPolicy(a, opts);
  const rb = await tryPolicy(b, opts);
  return { a: ra, b: rb, table: comparisonTable(ra, rb) };
}

function comparisonTable(a: MigrationReport, b: MigrationReport): string {
  const table = new Table({
    head: ["", label(a, "a", b.policy), label(b, "b", a.policy)],
    style: { head: [], border: [] },
  });
  const row = (name: string, f: (r: MigrationReport) => string) =>
    table.push([name, f(a), f(b)]);
  row("total time", (r) => formatDuration(r.totalTimeMs));
  row("downtime", (r) => formatDuration(r.downtimeMs));
  row("wire bytes", (r) => formatBytes(r.wireBytes));
  row("raw bytes", (r) => formatBytes(r.rawBytes));
  row("ratio", (r) => `${r.compressionRatio.toFixed(2)}x`);
  row("rounds", (r) => String(r.rounds.length));
  row(
    "link",
    (r) => r.bandwidth === null ? "unpaced" : formatRate(r.bandwidth),
  );
  row("verified", (r) => r.verified ? "VERIFIED" : `NO: ${r.outcome}`);
  return table.toString();
}

/**
 * The per-round table of a report (pages, raw and wire bytes, codec mix,
 * time, rates, decision), followed by the totals unless `summary: false`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, when } from "@hakobu/hakobu";
 * import { roundTable, tryPolicy } from "./lab.ts";
 *
 * const report = await tryPolicy(policy("p").switchover(when.rounds(2)), {
 *   workload: "idle",
 *   mem: "8MiB",
 * });
 * const table = roundTable(report); // one row per round, then the summary
 * assert.match(table, /2 \(stop\) .* final/); // two live rounds, then this
 * assert.match(table, /result +VERIFIED/);
 * ```
 */
export function roundTable(
  report: MigrationReport,
  options: RoundTableOptions = {},
): string {
  const table = formatRoundTable(report);
  return options.summary === false
    ? table
    : `${table}\n${formatSummary(report)}`;
}

function axisFormat(field: RoundField): (x: number) => string {
  const fmt = field.endsWith("Bytes")
    ? formatBytes
    : field.endsWith("Rate")
    ? formatRate
    : field === "durationMs"
    ? formatDuration
    : (x: number) => String(Math.round(x));
  return (x) => fmt(x).padStart(12);
}

/**
 * One field of a report's rounds as a terminal line chart (asciichart), the
 * stop-and-copy round last, with the rounds numbered below the chart.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, when } from "@hakobu/hakobu";
 * import { roundChart, tryPolicy } from "./lab.ts";
 *
 * const report = await tryPolicy(policy("p").switchover(when.rounds(2)), {
 *   workload: "idle",
 *   mem: "8MiB",
 * });
 * assert.match(roundChart(report), /^dirtyPages per round/); // the default field
 * assert.match(roundChart(report, "wireBytes"), /^wireBytes per round/);
 * assert.throws(() => roundChart(report, "policy" as "wireBytes"), TypeError);
 * ```
 *
 * @throws {TypeError} on a field that is not a numeric round field.
 */
export function roundChart(
  report: MigrationReport,
  field: RoundField = "dirtyPages",
  options: RoundChartOptions = {},
): string {
  if (!CHART_FIELDS.includes(field)) {
    throw new TypeError(
      `Cannot chart field "${field}": expected one of ${
        CHART_FIELDS.join(", ")
      }`,
    );
  }
  const values = report.rounds.map((r) => r[field]);
  const title =
    `${field} per round (${report.policy}, ${values.length} rounds)`;
  if (values.length === 0) return `${title}\n(no rounds)`;
  const per = Math.max(
    1,
    Math.min(8, Math.floor(options.columnsPerRound ?? 60 / values.length)),
  );
  const series = values.flatMap((v) => Array<number>(per).fill(v));
  const plot = chart.plot(series, {
    height: options.height ?? 10,
    format: axisFormat(field),
  });
  // asciichart draws the axis after the label and one space: "<label> ┤".
  const offset = axisFormat(field)(0).length + 2;
  const axis = Array<string>(series.length).fill(" ");
  let free = 0; // first column not taken by an earlier label (plus a gap)
  report.rounds.forEach((r, i) => {
    const mark = r.final ? "S" : String(r.round);
    const at = i * per;
    if (at < free || at + mark.length > axis.length + 2) return;
    for (let k = 0; k < mark.length; k++) axis[at + k] = mark[k];
    free = at + mark.length + 1;
  });
  return `${title}\n${plot}\n${" ".repeat(offset)}${
    axis.join("").trimEnd()
  }  (round; S = stop-and-copy)`;
}
