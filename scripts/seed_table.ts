/**
 * `deno task seed-table`: the seed report's experiment table, reproduced on
 * the `sim` driver over a paced loopback TCP link.
 *
 * Each row is a pair measured in the same run on the same workload, seed and
 * memory size: a policy with the row's codec chain, and the plain policy
 * (`[raw]`, hakobu's stand-in for regular Xen migration). The two run
 * alternately, `--repeat N` times each, and the table quotes medians. The
 * receiver runs in a second process (`hakobu receive --json`); the source
 * side runs here with `migrate()`.
 *
 * Speed-up is plain migration time / codec migration time, where migration
 * time runs from the handshake to READY (the destination holds every page):
 * the report's `totalTimeMs - verifyMs`. The SHA-256 verification after READY
 * is hakobu's own test, not part of a migration, so it is left out of the
 * ratio (it is still run, and any unverified migration fails the script).
 *
 *   deno run -A scripts/seed_table.ts [--mem 1GiB] [--seed 1] [--repeat 1]
 *     [--rows idle,memcached] [--out out/seed-table.json] [--bandwidth 1Gbit]
 *
 * Chains, and why:
 * - RLE rows: `[rle, raw]`. The seed's RLE stage compresses zero and
 *   repeated-word pages itself, so no `zero` codec goes in front of it.
 * - Delta rows: `[zero, delta, raw]` from round 0 on. Delta needs a previous
 *   version of a page; in round 0 it has none and declines every page after
 *   one cache-tag check, but its `sent` hook caches each page as it leaves,
 *   so round 1 already finds previous versions. (A per-round chooser giving
 *   `[zero, raw]` in round 0 and `[zero, delta, raw]` after would create the
 *   delta encoder only at round 1, so its cache would stay empty until round
 *   2.) `zero` goes first because all-zero pages cost no payload at all.
 * - Dedup rows: `[zero, dedup, raw]` every round. Without `zero`, dedup would
 *   still send each zero page after the first as a 4-byte reference; with it
 *   they cost nothing, and dedup's content store is kept for non-zero chunks.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import {
  codec,
  type CodecSpec,
  formatBytes,
  formatRate,
  MiB,
  migrate,
  type MigrationReport,
  ms,
  type Plan,
  policy,
  type RoundReport,
  SimVm,
  when,
} from "../mod.ts";
import { median } from "./_median.ts";
import { ReceiverProcess } from "./_receiver_process.ts";
import { bandwidth, integer, nameList, size } from "./_cli/options.ts";
import { cliProgram, runCli } from "./_cli/program.ts";

/** One row of the seed report's table, as hakobu reproduces it. */
export interface SeedRow {
  /** Sim workload name (`hakobu workloads`). */
  readonly workload: string;
  /** What the seed report calls the case. */
  readonly label: string;
  /** Codec name as the table shows it. */
  readonly codec: "rle" | "delta" | "dedup";
  /** The chain the codec policy uses in every round. */
  readonly chain: readonly CodecSpec[];
  /** The seed report's figure for this row. */
  readonly seedFigure: string;
}

/** One row's measured result, as written to the JSON file. */
export interface SeedResult {
  readonly workload: string;
  readonly codec: string;
  /** plainTimeMs / timeMs. */
  readonly speedup: number;
  /** Median codec migration time to READY (handshake to READY), ms. */
  readonly timeMs: number;
  /** Median plain migration time to READY, ms. */
  readonly plainTimeMs: number;
  readonly wireBytes: number;
  readonly plainWireBytes: number;
  readonly downtimeMs: number;
  readonly plainDowntimeMs: number;
  /** Rounds of the codec migration (live rounds plus the stop-and-copy round). */
  readonly rounds: number;
  readonly plainRounds: number;
  readonly verified: boolean;
  /** Median codec time including verification (report totalTimeMs), ms. */
  readonly totalTimeMs: number;
  readonly plainTotalTimeMs: number;
  /** Source CPU seconds of the median-time codec run. */
  readonly sourceCpuSeconds: number;
  readonly plainSourceCpuSeconds: number;
  /** Pages per codec over all rounds of the median codec run. */
  readonly codecMix: Readonly<Record<string, number>>;
  readonly seedFigure: string;
  readonly repeat: number;
}

const RLE: readonly CodecSpec[] = [codec.rle(), codec.raw()];
const DELTA: readonly CodecSpec[] = [codec.zero(), codec.delta(), codec.raw()];
const DEDUP: readonly CodecSpec[] = [codec.zero(), codec.dedup(), codec.raw()];

/** The rows, in the seed report's order. */
export const SEED_ROWS: readonly SeedRow[] = [
  {
    workload: "idle",
    label: "idle",
    codec: "rle",
    chain: RLE,
    seedFigure: "(not given)",
  },
  {
    workload: "zero",
    label: "best case",
    codec: "rle",
    chain: RLE,
    seedFigure: "up to 4x",
  },
  {
    workload: "unique",
    label: "worst case",
    codec: "rle",
    chain: RLE,
    seedFigure: "1.2x",
  },
  ...["memcached", "postgres", "lmbench"].map((w): SeedRow => ({
    workload: w,
    label: w,
    codec: "delta",
    chain: DELTA,
    seedFigure: "up to 3.7x",
  })),
  ...["memcached", "postgres", "lmbench"].map((w): SeedRow => ({
    workload: w,
    label: w,
    codec: "dedup",
    chain: DEDUP,
    seedFigure: "up to 16.7x",
  })),
];

/** The plan of a row's policy: same switchover rule and link for every row. */
function planFor(
  name: string,
  chain: readonly CodecSpec[],
  bandwidth: number | null,
): Plan {
  return policy(name)
    .codec(chain)
    .switchover(
      when.any(
        when.remainingBelow(MiB(16)),
        when.downtimeBelow(ms(300)),
        when.rounds(30),
      ),
    )
    .bandwidth(bandwidth)
    .compile();
}

/** What {@link rowResult} reads of a migration's report. */
export type RunFigures =
  & Pick<
    MigrationReport,
    | "totalTimeMs"
    | "verifyMs"
    | "wireBytes"
    | "downtimeMs"
    | "verified"
    | "sourceCpuSeconds"
  >
  & { readonly rounds: readonly Pick<RoundReport, "codecMix">[] };

/** The run whose time to READY is the median one. */
function medianRun(runs: readonly RunFigures[]): RunFigures {
  const m = median(runs.map(readyMs));
  return runs.find((r) => readyMs(r) === m) ?? runs[0];
}

/** Migration time without verification: handshake to READY. */
function readyMs(r: RunFigures): number {
  return r.totalTimeMs - r.verifyMs;
}

/** Pages per codec over all rounds of a migration. */
function codecMix(r: RunFigures): Record<string, number> {
  const mix: Record<string, number> = {};
  for (const round of r.rounds) {
    for (const [name, n] of Object.entries(round.codecMix)) {
      mix[name] = (mix[name] ?? 0) + n;
    }
  }
  return mix;
}

/** One migration of a fresh VM to the receiver; the VM is closed afterwards. */
async function runOne(
  receiver: ReceiverProcess,
  plan: Plan,
  opts: { workload: string; memoryBytes: number; seed: number },
): Promise<MigrationReport> {
  const vm = await SimVm.create({
    memoryBytes: opts.memoryBytes,
    workload: opts.workload,
    seed: opts.seed,
  });
  try {
    const conn = await Deno.connect({
      hostname: receiver.hostname,
      port: receiver.port,
    });
    let report: MigrationReport;
    try {
      report = await migrate({ plan, source: vm, conn });
    } finally {
      try {
        conn.close();
      } catch { /* closed by the migration */ }
    }
    const verdict = await receiver.verdict();
    if (!report.verified || !verdict.verified) {
      throw new Error(
        `Migration of "${opts.workload}" with policy "${plan.name}" did not verify: ${report.outcome}; receiver: ${verdict.line}`,
      );
    }
    return report;
  } finally {
    await vm.close();
  }
}

function fmtMs(x: number): string {
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : `${Math.round(x)} ms`;
}

function fmtX(x: number): string {
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

/** The markdown table of results. */
export function markdownTable(
  results: readonly SeedResult[],
  rows: readonly SeedRow[],
): string {
  const head = [
    "workload",
    "codec",
    "speed-up",
    "time codec / plain",
    "wire codec / plain",
    "downtime codec / plain",
    "rounds codec / plain",
    "verified",
    "seed report",
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
  ];
  results.forEach((r, i) => {
    const row = rows[i];
    const name = row.label === row.workload
      ? r.workload
      : `${r.workload} (${row.label})`;
    lines.push(
      `| ${
        [
          name,
          r.codec,
          fmtX(r.speedup),
          `${fmtMs(r.timeMs)} / ${fmtMs(r.plainTimeMs)}`,
          `${formatBytes(r.wireBytes)} / ${formatBytes(r.plainWireBytes)}`,
          `${fmtMs(r.downtimeMs)} / ${fmtMs(r.plainDowntimeMs)}`,
          `${r.rounds} / ${r.plainRounds}`,
          r.verified ? "yes" : "NO",
          r.seedFigure,
        ].join(" | ")
      } |`,
    );
  });
  return lines.join("\n");
}

/**
 * One row's result from its codec runs and plain runs: the median-time run
 * of each gives the times, wire bytes, rounds, CPU and codec mix; downtimes
 * are the medians of all runs; speed-up is plain time / codec time, both to
 * READY (`totalTimeMs - verifyMs`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowResult, type RunFigures, SEED_ROWS } from "./seed_table.ts";
 *
 * const run = (totalTimeMs: number, wireBytes: number): RunFigures => ({
 *   totalTimeMs,
 *   verifyMs: 10,
 *   wireBytes,
 *   downtimeMs: 5,
 *   verified: true,
 *   sourceCpuSeconds: 0.1,
 *   rounds: [{ codecMix: { rle: 100 } }],
 * });
 * const result = rowResult(SEED_ROWS[0], {
 *   codec: [run(110, 1000), run(90, 900), run(100, 950)],
 *   plain: [run(210, 4000)],
 * });
 * // Plain 200 ms to READY over the codec's median 90 ms (verification left out):
 * assert.equal(result.speedup, 200 / 90);
 * assert.equal(result.wireBytes, 950); // of the median run
 * ```
 */
export function rowResult(
  row: SeedRow,
  runs: {
    readonly codec: readonly RunFigures[];
    readonly plain: readonly RunFigures[];
  },
): SeedResult {
  const c = medianRun(runs.codec);
  const b = medianRun(runs.plain);
  return {
    workload: row.workload,
    codec: row.codec,
    speedup: readyMs(b) / readyMs(c),
    timeMs: readyMs(c),
    plainTimeMs: readyMs(b),
    wireBytes: c.wireBytes,
    plainWireBytes: b.wireBytes,
    downtimeMs: median(runs.codec.map((r) => r.downtimeMs)),
    plainDowntimeMs: median(runs.plain.map((r) => r.downtimeMs)),
    rounds: c.rounds.length,
    plainRounds: b.rounds.length,
    verified: [...runs.codec, ...runs.plain].every((r) => r.verified),
    totalTimeMs: c.totalTimeMs,
    plainTotalTimeMs: b.totalTimeMs,
    sourceCpuSeconds: c.sourceCpuSeconds,
    plainSourceCpuSeconds: b.sourceCpuSeconds,
    codecMix: codecMix(c),
    seedFigure: row.seedFigure,
    repeat: runs.codec.length,
  };
}

/** Options of {@link seedTable}; the command line's flags, parsed. */
export interface SeedTableOptions {
  /** Memory of every VM, in bytes. */
  readonly memoryBytes: number;
  /** Seed of every workload. */
  readonly seed: number;
  /** Pairs per row; the table quotes medians. */
  readonly repeat: number;
  /** Workloads whose rows run (default: every row). */
  readonly rows?: readonly string[];
  /** Where the JSON goes. */
  readonly out: string;
  /** Link pacing in bytes per second; null: unpaced. */
  readonly bandwidth: number | null;
}

/** Runs the table, prints it and writes the JSON. */
export async function seedTable(options: SeedTableOptions): Promise<void> {
  const { memoryBytes, seed, repeat } = options;
  const rate = options.bandwidth;
  const wanted = options.rows;
  const rows = wanted
    ? SEED_ROWS.filter((r) => wanted.includes(r.workload))
    : SEED_ROWS;
  const link = rate === null ? "unpaced" : `paced at ${formatRate(rate)}`;

  const plain = planFor("plain", [codec.raw()], rate);
  const t0 = performance.now();
  const results: SeedResult[] = [];
  await using receiver = await ReceiverProcess.start(["--insecure-plain"]);
  console.error(
    `seed-table: receiver process listening on ${receiver.hostname}:${receiver.port}; ` +
      `${rows.length} rows x ${repeat} pairs, ${
        formatBytes(memoryBytes)
      } VMs, ` +
      `link ${link}, seed ${seed}`,
  );
  for (const [i, row] of rows.entries()) {
    const plan = planFor(`${row.codec}`, row.chain, rate);
    const codecRuns: MigrationReport[] = [];
    const plainRuns: MigrationReport[] = [];
    const vmOpts = { workload: row.workload, memoryBytes, seed };
    for (let k = 0; k < repeat; k++) {
      // Alternate which goes first, so drift (heat, GC) does not favour one.
      const order = k % 2 === 0 ? [plan, plain] : [plain, plan];
      for (const p of order) {
        const r = await runOne(receiver, p, vmOpts);
        (p === plain ? plainRuns : codecRuns).push(r);
        console.error(
          `  [${i + 1}/${rows.length}] ${row.workload} ${
            p === plain ? "raw (plain)" : row.codec
          } #${k + 1}: ${fmtMs(readyMs(r))} to READY (+${
            fmtMs(r.verifyMs)
          } verify), ${
            formatBytes(r.wireBytes)
          } on the wire, ${r.rounds.length} rounds, downtime ${
            fmtMs(r.downtimeMs)
          }`,
        );
      }
    }
    results.push(rowResult(row, { codec: codecRuns, plain: plainRuns }));
  }
  const wallS = (performance.now() - t0) / 1000;

  console.log(
    `Seed report's table on hakobu's sim driver: ${
      formatBytes(memoryBytes)
    } VMs, link ${link} over loopback TCP, receiver in a second process, seed ${seed}, median of ${repeat} pair(s).`,
  );
  console.log(
    "Speed-up = plain time / codec time, migration time measured from the handshake to READY " +
      "(every page applied at the destination); the SHA-256 verification that follows is hakobu's own test and is " +
      "not counted (every migration below verified). Plain = the [raw] chain, hakobu's stand-in for regular Xen migration. " +
      "Chains: rle = [rle, raw]; delta = [zero, delta, raw]; dedup = [zero, dedup, raw].",
  );
  console.log("");
  console.log(markdownTable(results, rows));
  console.log("");
  console.log(`Wall time: ${wallS.toFixed(1)} s`);

  const outPath = options.out;
  const dir = outPath.includes("/")
    ? outPath.slice(0, outPath.lastIndexOf("/"))
    : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(outPath, JSON.stringify(results, null, 2) + "\n");
  console.error(`seed-table: wrote ${outPath} (${wallS.toFixed(1)} s)`);
}

/** The command line: flags as in the module doc, `--help` lists them. */
function command(): Command {
  return cliProgram("seed-table", { usageExitCode: 2 })
    .description(
      "The seed report's experiment table on the sim driver over a paced loopback TCP link.",
    )
    .addOption(
      new Option("--mem <size>", "memory of every VM").argParser(size)
        .default(2 ** 30, "1GiB"),
    )
    .option("--seed <n>", "seed of every workload", integer(), 1)
    .option(
      "--repeat <n>",
      "pairs per row (the table quotes medians)",
      integer({ min: 1 }),
      1,
    )
    .option(
      "--rows <list>",
      "workloads whose rows run, e.g. idle,memcached (default: every row)",
      nameList({
        known: [...new Set(SEED_ROWS.map((r) => r.workload))],
        what: "row",
      }),
    )
    .option("--out <file>", "JSON output", "out/seed-table.json")
    .addOption(
      new Option("--bandwidth <rate>", "link pacing, e.g. 1Gbit or unlimited")
        .argParser(bandwidth).default(125e6, "1Gbit"),
    )
    .action(async (o) => {
      await seedTable({
        memoryBytes: o.mem,
        seed: o.seed,
        repeat: o.repeat,
        rows: o.rows,
        out: o.out,
        bandwidth: o.bandwidth,
      });
    });
}

/** Runs the command line on `args`; returns the exit code. */
export function main(args: readonly string[]): Promise<number> {
  return runCli(command, args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
