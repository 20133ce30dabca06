/**
 * Channel scaling benchmark: the sender's encode pipeline (`EncoderPool`,
 * one Worker per channel over the guest's shared memory) sending one full
 * round of a sim VM at 1, 2, … N channels, in one run.
 *
 * ```sh
 * deno run -A scripts/bench_channels.ts [--max N] [--mem 256MiB] [--workload memcached]
 *     [--chains "zero,lz4;zero,zstd"] [--runs 3] [--out out/bench-channels.json]
 * ```
 *
 * - **Memory**: a `SimVm` of `--mem` running `--workload` with `seed: 1` and
 *   `dirtyRate: 0`, so memory holds still and what was sent can be checked.
 * - **Chains**: `;` between chains, `,` between a chain's codecs (raw ends
 *   every chain), as `bench_tunnel.ts` takes them.
 * - **One measurement**: a fresh pool of `n` channels set to the chain and
 *   synced (its Workers started), then two full rounds, each timed from the
 *   round request — the pfn list split by channel as `precopy.ts` splits
 *   it — to the last channel's "done", its frames consumed the way
 *   `precopy.ts` consumes them (each BATCH frame's buffer credited back as
 *   soon as it is taken) but counted instead of written to a socket. The
 *   **first round** is what a migration's round 0 costs: each Worker's
 *   first pages, with its JIT warm-up and the first touch of its buffers;
 *   the **second round** runs the same pool again, at speed. **GB/s** is
 *   guest memory (10^9 bytes) per second. Process CPU time over the same
 *   span gives **cores busy** (how many cores the round got: this machine
 *   is shared, and V8 compiles and collects on threads of its own).
 * - **Runs**: each of `--runs` runs measures every chain at every channel
 *   count, the counts in a rotated order per run; **speed-up** is the
 *   median over runs of (time at 1 channel / time at n), both measured in
 *   the same run; GB/s and ms are medians.
 * - **Verification**, once per chain and channel count, outside the timed
 *   runs: a round of the same pipeline whose frames are checked (header,
 *   CRC, channel) and decoded by the receiver's `DecoderPool` into fresh
 *   destination memory, which must then equal the source page for page.
 *   The bench fails when any does not.
 *
 * - **The machine itself**, in each run beside the channels: 1, 2, … N
 *   independent `zstd -1` processes compressing the same bytes at once (the
 *   memory's first 256 MiB at most), against one (`_machine_scaling.ts`):
 *   what work that shares nothing but the machine gains from its cores. No
 *   channel count can beat it; absent without the zstd command-line tool.
 *
 * Prints a table, the machine's curve and the 2-channel target (≥ 1.7x of 1
 * channel), writes JSON to `--out`.
 *
 * @module
 */

import process from "node:process";
import { type Command, Option } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { POLICY_DEFAULTS } from "../dsl/compile.ts";
import { codecByName, codecNames } from "../engine/codecs/registry.ts";
import { DecoderPool } from "../engine/pipeline/decoder_pool.ts";
import {
  type EncoderEvent,
  EncoderPool,
} from "../engine/pipeline/encoder_pool.ts";
import { splitByChannel } from "../engine/pipeline/partition.ts";
import { SimMemorySink, SimVm, workloadNames } from "../engine/sim/mod.ts";
import {
  decodeFrameHeader,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
  verifyFrameChecksum,
} from "../engine/wire/frame.ts";
import { decodeCodec } from "../engine/wire/messages.ts";
import { MAX_CHANNELS } from "../engine/plan.ts";
import { median } from "./_median.ts";
import {
  hasZstdCli,
  type MachineScaling,
  scalingCurve,
  timeProcesses,
} from "./_machine_scaling.ts";
import { codecChains, integer, size } from "./_cli/options.ts";
import { cliProgram, runCli } from "./_cli/program.ts";

/** The target: 2 channels at this multiple of 1 channel's throughput, or more. */
const TARGET_SPEEDUP = 1.7;
/** Most bytes of the memory the machine's reference compresses. */
const MACHINE_BYTES = 256 << 20;

/** One round's figures at one channel count, over the runs. */
export interface RoundFigures {
  /** Wall time of the round in each run, ms, in run order. */
  ms: number[];
  /** Process CPU time (every thread) over the round in each run, ms. */
  cpuMs: number[];
  medianMs: number;
  /** Guest memory bytes / median time, 10^9 bytes per second. */
  GBps: number;
  /** Median over runs of (1-channel time / this time) in the same run. */
  speedup: number;
  /** Median of cpuMs / ms: cores the round kept busy. */
  coresBusy: number;
}

/** One chain at one channel count. */
export interface ChannelPoint {
  channels: number;
  /** Round 0 on a fresh pool, as a migration's first round. */
  first: RoundFigures;
  /** Round 1 on the same pool: the pipeline at speed. */
  second: RoundFigures;
  /** Frames (CODEC and BATCH) and their bytes in the verified round. */
  frames: number;
  wireBytes: number;
  /** Pages the decoder applied in the verified round. */
  pagesApplied: number;
  /** Pages whose decoded bytes differ from the source (0 when verified). */
  pagesDiffering: number;
  /** Every page arrived, decoded, equal to the source. */
  verified: boolean;
}

/** One chain's curve. */
export interface ChainResult {
  /** Codecs as selected (raw ends the chain). */
  chain: string[];
  /** `--chains` spelling, e.g. `"zero,lz4"`. */
  label: string;
  points: ChannelPoint[];
}

/** The JSON written to `--out`. */
export interface ChannelsReport {
  workload: string;
  memBytes: number;
  pageSize: number;
  batchPages: number;
  runs: number;
  maxChannels: number;
  /** `navigator.hardwareConcurrency` of the machine that ran it. */
  cores: number;
  deno: string;
  date: string;
  chains: ChainResult[];
  /** The 2-channel target, per chain and round (absent when `maxChannels` is 1). */
  /** The machine's own curve (`_machine_scaling.ts`); null without the zstd CLI. */
  machine: MachineScaling | null;
  target: {
    speedup: number;
    rows: {
      label: string;
      round: "first" | "second";
      speedup: number;
      met: boolean;
    }[];
  } | null;
}

/** What one round put out. */
interface RoundTally {
  frames: number;
  wireBytes: number;
  pages: number;
}

/**
 * Sends `pfns` (every page) as round `round` through `pool` and consumes its
 * frames as `precopy.ts` `#sendRound` does: each frame taken from
 * `pool.next()`, handed to `onFrame` (where a migration writes it), then a
 * BATCH frame's buffer credited back to its channel; done when every
 * channel said "done".
 */
async function sendRound(
  pool: EncoderPool,
  round: number,
  pfns: Uint32Array,
  onFrame?: (e: Extract<EncoderEvent, { type: "frame" }>) => Promise<void>,
): Promise<RoundTally> {
  const tally: RoundTally = { frames: 0, wireBytes: 0, pages: 0 };
  pool.round(round, splitByChannel(pfns, pfns.length, pool.channels));
  let done = 0;
  while (done < pool.channels) {
    const e = await pool.next();
    if (e.type === "frame") {
      if (onFrame) await onFrame(e);
      // Counted before the credit: crediting transfers (detaches) the buffer.
      tally.frames++;
      tally.wireBytes += e.bytes.length;
      tally.pages += e.pages;
      if (e.credited) pool.credit(e.channel, e.bytes);
      continue;
    }
    done++;
  }
  return tally;
}

/** A started pool of `channels` over the VM's memory, set to `chain` and synced. */
async function startPool(
  vm: SimVm,
  chain: readonly string[],
  channels: number,
): Promise<EncoderPool> {
  const pool = EncoderPool.start({
    channels,
    pageSize: vm.pageSize,
    pageCount: vm.pageCount,
    memory: vm.shared,
    batchPages: POLICY_DEFAULTS.batchPages,
  });
  pool.chain(chain.map((name) => ({ name })));
  await pool.sync();
  return pool;
}

/** Whole pages of `a` and `b` that differ. */
function differingPages(
  a: Uint8Array,
  b: Uint8Array,
  pageSize: number,
): number {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length >> 2);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
  const words = pageSize >> 2;
  let n = 0;
  for (let p = 0; p < x.length; p += words) {
    for (let i = p; i < p + words; i++) {
      if (x[i] !== y[i]) {
        n++;
        break;
      }
    }
  }
  return n;
}

/** What {@link verifyRound} finds. */
type Verification = Pick<
  ChannelPoint,
  "frames" | "wireBytes" | "pagesApplied" | "pagesDiffering" | "verified"
>;

/**
 * One round of `chain` at `channels`, every frame checked and decoded by a
 * receiver's `DecoderPool` into fresh memory, then compared with the VM's.
 */
async function verifyRound(
  vm: SimVm,
  chain: readonly string[],
  channels: number,
  all: Uint32Array,
): Promise<Verification> {
  const sink = new SimMemorySink({
    pageSize: vm.pageSize,
    pageCount: vm.pageCount,
  });
  const decoders = DecoderPool.start({
    channels,
    pageSize: vm.pageSize,
    pageCount: vm.pageCount,
    codecs: codecNames().map((name) => ({ id: codecByName(name).id, name })),
    memory: sink.shared.memory,
    touched: sink.shared.touched,
  });
  const failed = decoders.failed();
  failed.catch(() => {});
  const pool = await startPool(vm, chain, channels);
  try {
    let at = 0;
    const tally = await sendRound(pool, 0, all, async (e) => {
      const h = decodeFrameHeader(e.bytes, at);
      const payload = e.bytes.subarray(HEADER_BYTES, HEADER_BYTES + h.length);
      verifyFrameChecksum(e.bytes, payload, at);
      if (
        h.channel !== e.channel || HEADER_BYTES + h.length !== e.bytes.length
      ) {
        throw new Error(
          `Frame at offset ${at} is inconsistent: channel ${h.channel} of ${e.bytes.length} bytes from channel ${e.channel}, header says ${
            HEADER_BYTES + h.length
          } bytes`,
        );
      }
      if (h.type === FrameType.CODEC) {
        decoders.codec(h.channel, decodeCodec(payload), at);
      } else if (h.type === FrameType.BATCH) {
        // The decoder takes the payload over; the frame's buffer goes back to its channel.
        await Promise.race([
          decoders.batch(h.channel, h.round, payload.slice(), at),
          failed,
        ]);
      } else {
        throw new Error(
          `Unexpected ${
            frameTypeName(h.type)
          } frame at offset ${at}: a round sends CODEC and BATCH frames`,
        );
      }
      at += e.bytes.length;
    });
    const pagesApplied = await Promise.race([decoders.sync(), failed]);
    const pagesDiffering = differingPages(
      new Uint8Array(sink.shared.memory),
      vm.memory,
      vm.pageSize,
    );
    return {
      frames: tally.frames,
      wireBytes: tally.wireBytes,
      pagesApplied,
      pagesDiffering,
      verified: tally.pages === all.length && pagesApplied === all.length &&
        pagesDiffering === 0,
    };
  } finally {
    pool.close();
    decoders.close();
  }
}

/** Wall and CPU time of one round. */
interface Timing {
  ms: number;
  cpuMs: number;
}

/** Rounds 0 and 1 of `chain` at `channels` on a fresh, synced pool, each timed. */
async function timeRounds(
  vm: SimVm,
  chain: readonly string[],
  channels: number,
  all: Uint32Array,
): Promise<[Timing, Timing]> {
  const pool = await startPool(vm, chain, channels);
  try {
    const timings: Timing[] = [];
    for (let round = 0; round < 2; round++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const tally = await sendRound(pool, round, all);
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (tally.pages !== all.length) {
        throw new Error(
          `Round ${round} on ${channels} channels sent ${tally.pages} pages of ${all.length}`,
        );
      }
      timings.push({ ms, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
    return [timings[0], timings[1]];
  } finally {
    pool.close();
  }
}

/** A round's figures from its timings in each run and the 1-channel timings of the same runs. */
function figures(
  memBytes: number,
  t: readonly Timing[],
  one: readonly Timing[],
): RoundFigures {
  const ms = t.map((x) => x.ms);
  const m = median(ms);
  return {
    ms,
    cpuMs: t.map((x) => x.cpuMs),
    medianMs: m,
    GBps: memBytes / m / 1e6,
    speedup: median(t.map((x, r) => one[r].ms / x.ms)),
    coresBusy: median(t.map((x) => x.cpuMs / x.ms)),
  };
}

/** `values` rotated left by `by`: run r starts at a different channel count. */
function rotated<T>(values: readonly T[], by: number): T[] {
  const k = by % values.length;
  return [...values.slice(k), ...values.slice(0, k)];
}

/** Options of {@link benchChannels}; the command line's flags, parsed. */
export interface ChannelsOptions {
  /** Most channels (default: the core count). */
  readonly max?: number;
  /** Guest memory in bytes. */
  readonly memBytes: number;
  /** The sim workload. */
  readonly workload: string;
  /** Codec chains, each measured at every channel count. */
  readonly chains: readonly (readonly string[])[];
  /** Runs; the figures are medians over them. */
  readonly runs: number;
  /** Where the JSON goes. */
  readonly out: string;
}

/**
 * Runs the benchmark, prints the table and writes the JSON.
 *
 * @throws {Error} when any channel count decoded other memory than the source.
 */
export async function benchChannels(
  options: ChannelsOptions,
): Promise<ChannelsReport> {
  const { memBytes, runs, chains } = options;
  const cores = navigator.hardwareConcurrency || 1;
  const maxChannels = options.max ?? cores;
  const counts = Array.from({ length: maxChannels }, (_, i) => i + 1);

  const vm = await SimVm.create({
    memoryBytes: memBytes,
    workload: options.workload,
    seed: 1,
    dirtyRate: 0,
  });
  const all = Uint32Array.from({ length: vm.pageCount }, (_, i) => i);
  const results: ChainResult[] = [];
  // The machine's reference: the same bytes, in a file the zstd processes read.
  const machineBytes = Math.min(memBytes, MACHINE_BYTES);
  const machineFile = await hasZstdCli()
    ? await Deno.makeTempFile({ prefix: "hakobu-machine-" })
    : null;
  const machineSamples = counts.map(() => [] as number[]);
  try {
    if (machineFile) {
      await Deno.writeFile(
        machineFile,
        new Uint8Array(vm.shared, 0, machineBytes).slice(),
      );
    } else {
      console.error(
        "no zstd command-line tool (apt-get install zstd): the machine's own curve is left out",
      );
    }
    // timings[chain][count - 1][round]: one Timing per run
    const timings = chains.map(() =>
      counts.map(() => [[], []] as [Timing[], Timing[]])
    );
    const checks: Verification[][] = [];
    for (const chain of chains) {
      const row: Verification[] = [];
      for (const n of counts) {
        const v = await verifyRound(vm, chain, n, all);
        console.error(
          `verified ${chain.join(",")} at ${n} channel${n > 1 ? "s" : ""}: ` +
            (v.verified
              ? `${v.pagesApplied} pages equal`
              : `NOT equal (${v.pagesApplied} applied, ${v.pagesDiffering} differ)`),
        );
        row.push(v);
      }
      checks.push(row);
    }
    for (let r = 0; r < runs; r++) {
      for (const [c, chain] of chains.entries()) {
        for (const n of rotated(counts, r)) {
          const rounds = await timeRounds(vm, chain, n, all);
          const words = rounds.map((t, round) => {
            timings[c][n - 1][round].push(t);
            return `round ${round} ${t.ms.toFixed(0)} ms, ${
              (memBytes / t.ms / 1e6).toFixed(2)
            } GB/s, cores busy ${(t.cpuMs / t.ms).toFixed(2)}`;
          });
          console.error(
            `run ${r + 1}/${runs} ${chain.join(",")} ${n} ch: ${
              words.join("; ")
            }`,
          );
        }
      }
      if (machineFile) {
        for (const n of rotated(counts, r)) {
          const ms = await timeProcesses(machineFile, n);
          machineSamples[n - 1].push(ms);
          console.error(
            `run ${r + 1}/${runs} machine: ${n} zstd -1 process${
              n > 1 ? "es" : ""
            } at once ${ms.toFixed(0)} ms`,
          );
        }
      }
    }
    for (const [c, chain] of chains.entries()) {
      const [one0, one1] = timings[c][0];
      results.push({
        chain: [...chain, ...(chain.at(-1) === "raw" ? [] : ["raw"])],
        label: chain.join(","),
        points: counts.map((n, i) => ({
          channels: n,
          first: figures(memBytes, timings[c][i][0], one0),
          second: figures(memBytes, timings[c][i][1], one1),
          ...checks[c][i],
        })),
      });
    }
  } finally {
    await vm.close();
    if (machineFile) await Deno.remove(machineFile).catch(() => {});
  }

  const report: ChannelsReport = {
    workload: options.workload,
    memBytes,
    pageSize: vm.pageSize,
    batchPages: POLICY_DEFAULTS.batchPages,
    runs,
    maxChannels,
    cores,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    chains: results,
    machine: machineFile
      ? {
        tool: "zstd -1 (command line), one process per core",
        bytes: machineBytes,
        points: scalingCurve(machineSamples),
      }
      : null,
    target: maxChannels < 2 ? null : {
      speedup: TARGET_SPEEDUP,
      rows: (["first", "second"] as const).flatMap((round) =>
        results.map((r) => ({
          label: r.label,
          round,
          speedup: r.points[1][round].speedup,
          met: r.points[1][round].speedup >= TARGET_SPEEDUP,
        }))
      ),
    },
  };
  const dir = options.out.includes("/")
    ? options.out.slice(0, options.out.lastIndexOf("/"))
    : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(options.out, JSON.stringify(report, null, 2) + "\n");
  console.log(renderTable(report));
  console.log(`wrote ${options.out}`);
  const broken = results.flatMap((r) =>
    r.points.filter((p) => !p.verified).map((p) =>
      `${r.label} at ${p.channels} channels`
    )
  );
  if (broken.length > 0) {
    throw new Error(
      `Decoded memory differs from the source for ${broken.join(", ")}`,
    );
  }
  return report;
}

/** The table and the target lines printed to stdout. */
export function renderTable(report: ChannelsReport): string {
  const table = new Table({
    head: [
      "chain (+raw)",
      "channels",
      "1st round GB/s",
      "speed-up",
      "cores busy",
      "2nd round GB/s",
      "speed-up",
      "cores busy",
      "wire MB",
      "verified",
    ],
    colAligns: [
      "left",
      "right",
      "right",
      "right",
      "right",
      "right",
      "right",
      "right",
      "right",
      "left",
    ],
    style: { head: [], border: [] },
  });
  for (const r of report.chains) {
    for (const p of r.points) {
      table.push([
        r.label,
        String(p.channels),
        p.first.GBps.toFixed(2),
        `${p.first.speedup.toFixed(2)}x`,
        p.first.coresBusy.toFixed(2),
        p.second.GBps.toFixed(2),
        `${p.second.speedup.toFixed(2)}x`,
        p.second.coresBusy.toFixed(2),
        (p.wireBytes / 1e6).toFixed(1),
        p.verified ? "yes" : "NO",
      ]);
    }
  }
  const lines = [
    `two rounds of a ${
      report.memBytes / (1 << 20)
    } MiB ${report.workload} sim VM ` +
    `through a fresh encoder pool per channel count (1st: its Workers' first ` +
    `pages; 2nd: the same pool again), frames credited back as a migration ` +
    `does, medians of ${report.runs} run${report.runs > 1 ? "s" : ""} ` +
    `(${report.cores} cores, deno ${report.deno})`,
    table.toString(),
  ];
  if (report.machine) {
    lines.push(
      `the machine itself, k independent zstd -1 processes on the memory's first ${
        report.machine.bytes / (1 << 20)
      } MiB at once vs one: ` +
        report.machine.points.map((p) =>
          `${p.processes} → ${p.speedup.toFixed(2)}x`
        ).join(", "),
    );
  }
  if (report.target) {
    for (const round of ["first", "second"] as const) {
      lines.push(
        `2 channels vs 1, ${round} round (target ≥ ${report.target.speedup}x): ` +
          report.target.rows.filter((t) => t.round === round).map((t) =>
            `${t.label} ${t.speedup.toFixed(2)}x ${t.met ? "met" : "NOT met"}`
          ).join(", "),
      );
    }
  }
  return lines.join("\n");
}

/** The command line: flags as in the module doc, `--help` lists them. */
function command(): Command {
  return cliProgram("bench_channels.ts")
    .description(
      "The sender's encode pipeline at 1, 2, ... N channels on a sim VM, verified, as a table and JSON.",
    )
    .option(
      "--max <n>",
      `most channels (default: the core count)`,
      integer({ min: 1, max: MAX_CHANNELS }),
    )
    .addOption(
      new Option("--mem <size>", "guest memory").argParser(size)
        .default(256 * 2 ** 20, "256MiB"),
    )
    .addOption(
      new Option("--workload <name>", "sim workload").choices(workloadNames())
        .default("memcached"),
    )
    .addOption(
      new Option(
        "--chains <list>",
        'codec chains: ";" between chains, "," between codecs (raw ends every chain)',
      ).argParser(codecChains(";", ",")).default(
        [["zero", "lz4"], ["zero", "zstd"]],
        "zero,lz4;zero,zstd",
      ),
    )
    .option("--runs <n>", "runs (medians over them)", integer({ min: 1 }), 3)
    .option("--out <file>", "JSON output", "out/bench-channels.json")
    .action(async (o) => {
      await benchChannels({
        max: o.max,
        memBytes: o.mem,
        workload: o.workload,
        chains: o.chains,
        runs: o.runs,
        out: o.out,
      });
    });
}

/** Runs the command line on `args`; returns the exit code. */
export function main(args: readonly string[]): Promise<number> {
  return runCli(command, args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
