/**
 * Codec benchmark over batches (protocol 2): codec chains on every sim
 * workload, as one channel sends them, side by side with the `lz4 -1` and
 * `zstd -1` command-line tools on the same bytes, in one run (this machine
 * is noisy: compare within a run, not across runs).
 *
 * ```sh
 * deno run -A scripts/bench_codecs.ts [--mem 256MiB] [--runs 3] [--out out/bench-codecs.json]
 *   [--workloads memcached,postgres] [--chains lz4,zstd,zero+zstd] [--no-cli]
 * ```
 *
 * Per workload (a `SimVm` with `seed: 1, dirtyRate: 0`, so memory holds
 * still) and per chain (every registered codec alone, then zero with each
 * other codec; `--chains` names others, codecs joined by `+`; raw ends
 * every chain):
 * - **pass 1**: every page, in pfn order, into batches filled as a channel
 *   Worker fills them (`PageBatchBuilder`: a batch closes at 256 non-zero
 *   pages, or at 256 pages of any kind when no codec of the chain sends a
 *   zero page cheaply), each encoded by a fresh `BatchEncoderChain` into
 *   one BATCH payload.
 * - **pass 2** (chains with a codec that keeps state from what was sent:
 *   delta, dedup): later pre-copy rounds. 5% of pages (every 20th) get 64
 *   bytes overwritten at a page-dependent offset and are sent again (round
 *   2, untimed: delta caches a page from its second send on), then written
 *   and sent once more (round 3, reported), by the chain and receiver of
 *   pass 1.
 * - **encode GB/s**: page bytes / time to fill the batches and encode them,
 *   median of `--runs` runs, one core (the main thread).
 * - **decode GB/s**: page bytes / time to validate each payload
 *   (`parseBatchPayload`), decode it (`BatchDecoderSet`) and copy its pages
 *   into destination memory, median of `--runs` runs; destination memory
 *   is then checked byte for byte against the source (`verified`).
 * - **ratio**: page bytes / wire bytes, the BATCH payloads plus a 16-byte
 *   frame header each; **claimed**: share of pages a codec other than raw
 *   took.
 *
 * The CLI tools compress the memory image (written to a temp file) as one
 * stream (`-c`, stdout to /dev/null for timing, to a pipe once for the
 * size); their time includes process start. Per workload the bench prints
 * the batch lz4 and zstd ratios as a fraction of the tools' (the target:
 * 0.95x or better on memcached and postgres).
 *
 * Writes a table to stdout and JSON to `--out`.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { POLICY_DEFAULTS } from "../dsl/compile.ts";
import {
  BatchDecoderSet,
  BatchEncoderChain,
} from "../engine/codecs/batch_chain.ts";
import type { Codec } from "../engine/codecs/codec.ts";
import { codecByName, codecNames } from "../engine/codecs/registry.ts";
import { PageBatchBuilder } from "../engine/pipeline/page_batch.ts";
import { SimVm, workloadNames } from "../engine/sim/mod.ts";
import {
  MAX_PAGES_PER_BATCH,
  parseBatchPayload,
  ParsedBatch,
} from "../engine/wire/batch.ts";
import { HEADER_BYTES } from "../engine/wire/frame.ts";
import { codecChains, integer, nameList, size } from "./_cli/options.ts";
import { cliProgram, runCli } from "./_cli/program.ts";

/** Pass 2 mutates every `MUTATE_EVERY`-th page (5%). */
const MUTATE_EVERY = 20;
const MUTATE_BYTES = 64;
/** Workloads the 0.95x target is about. */
const TARGET_WORKLOADS = ["memcached", "postgres"];
/** The target: batch ratio over the CLI tool's ratio. */
const TARGET = 0.95;

/** One chain on one workload, one pass. */
export interface CodecResult {
  workload: string;
  /** The chain's label: its codecs joined by `+` (raw ends every chain). */
  codec: string;
  /** The chain as selected (raw appended). */
  chain: string[];
  /** 1: whole memory, fresh state; 2: the mutated 5% after pass 1 (stateful chains only). */
  pass: 1 | 2;
  pages: number;
  pageBytes: number;
  /** BATCH frames sent. */
  batches: number;
  /** Bytes of the BATCH payloads. */
  payloadBytes: number;
  /** Payload bytes plus a 16-byte frame header per batch. */
  wireBytes: number;
  /** pageBytes / wireBytes. */
  ratio: number;
  /** Pages each codec of the chain took, by name. */
  claims: Record<string, number>;
  /** Share of pages a codec other than raw took. */
  claimed: number;
  encodeGBps: number;
  decodeGBps: number;
  encodeMs: number[];
  decodeMs: number[];
  /** Whether destination memory equalled the source after every decode run. */
  verified: boolean;
}

/** One command-line tool on one workload's memory image. */
export interface CliResult {
  workload: string;
  tool: string;
  args: string[];
  imageBytes: number;
  compressedBytes: number;
  ratio: number;
  GBps: number;
  ms: number[];
}

/** A batch codec's ratio beside its command-line tool's on the same image. */
export interface CliComparison {
  workload: string;
  /** `"lz4"` or `"zstd"`. */
  tool: string;
  /** The chain compared (the codec alone, or after zero). */
  codec: string;
  batchRatio: number;
  cliRatio: number;
  /** batchRatio / cliRatio. */
  fraction: number;
}

/** The JSON written to `--out`. */
export interface BenchReport {
  memBytes: number;
  pageSize: number;
  batchPages: number;
  runs: number;
  deno: string;
  date: string;
  codecs: CodecResult[];
  cli: CliResult[];
  comparisons: CliComparison[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

interface Geometry {
  readonly pageSize: number;
  readonly pageCount: number;
}

/** What one encode pass produced. */
interface Sent {
  ms: number;
  payloads: Uint8Array[];
  claims: Map<number, number>;
  pages: number;
}

/** A fresh chain of `names` (raw appended). */
function newChain(names: readonly string[], g: Geometry): BatchEncoderChain {
  const chain = new BatchEncoderChain({ ...g, channels: 1 });
  chain.select(names.map((name) => ({ name })));
  return chain;
}

/**
 * Sends `pfns` of `memory` through `chain` in batches as a channel Worker
 * fills them; returns the time and the payloads.
 */
function encodePass(
  chain: BatchEncoderChain,
  memory: Uint8Array,
  pfns: Uint32Array,
  g: Geometry,
): Sent {
  const builder = new PageBatchBuilder({
    pageSize: g.pageSize,
    nonZeroPages: POLICY_DEFAULTS.batchPages,
    maxPages: MAX_PAGES_PER_BATCH,
  });
  builder.countZeroPages = !chain.activeCodecs.some((c) => c.cheapZeroPages);
  const payloads: Uint8Array[] = [];
  const claims = new Map<number, number>();
  const alloc = (n: number) => new Uint8Array(n);
  const send = () => {
    const info = chain.encode(builder, alloc);
    payloads.push(info.payload);
    for (const [id, n] of info.claims) {
      claims.set(id, (claims.get(id) ?? 0) + n);
    }
    builder.reset();
  };
  const t0 = performance.now();
  for (let i = 0; i < pfns.length; i++) {
    builder.addFrom(memory, pfns[i]);
    if (builder.full) send();
  }
  if (builder.count > 0) send();
  return { ms: performance.now() - t0, payloads, claims, pages: pfns.length };
}

/** A channel's receiver over `dest` that knows the codecs `chain` created. */
function newReceiver(
  chain: BatchEncoderChain,
  dest: Uint8Array,
  g: Geometry,
): BatchDecoderSet {
  const negotiated = new Map<number, Codec>(
    codecNames().map((n) => [codecByName(n).id, codecByName(n)]),
  );
  const ps = g.pageSize;
  const set = new BatchDecoderSet(negotiated, {
    ...g,
    channels: 1,
    current: (pfn) => dest.subarray(pfn * ps, (pfn + 1) * ps),
  });
  for (const c of chain.codecs) {
    set.announce(
      { id: c.id, name: c.name, options: chain.optionsOf(c.name)! },
      0,
    );
  }
  return set;
}

/** Validates, decodes and applies `payloads` into `dest`; returns the time. */
function decodePass(
  payloads: readonly Uint8Array[],
  set: BatchDecoderSet,
  dest: Uint8Array,
  g: Geometry,
): number {
  const ps = g.pageSize;
  const parsed = new ParsedBatch();
  const zeroPage = new Uint8Array(ps);
  const knows = (id: number) => set.knows(id);
  const t0 = performance.now();
  for (const payload of payloads) {
    parseBatchPayload(payload, { pageCount: g.pageCount, knows }, parsed);
    const decoded = set.decode(payload, parsed);
    const scratch = set.scratch;
    for (let i = 0; i < parsed.count; i++) {
      const at = parsed.pfns[i] * ps;
      const slot = decoded.slotOf[i];
      if (slot < 0) dest.fill(0, at, at + ps);
      else dest.set(scratch.subarray(slot * ps, (slot + 1) * ps), at);
    }
    set.applied(parsed, decoded, zeroPage);
  }
  return performance.now() - t0;
}

function equalMemory(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length >> 2);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/**
 * Overwrites 64 bytes of every 20th page at an offset that depends on the
 * page and `seed`, with bytes from `seed`; returns the pfns touched.
 */
function mutate(
  memory: Uint8Array,
  pageSize: number,
  seed: number,
): Uint32Array {
  const pageCount = memory.length / pageSize;
  const pfns = new Uint32Array(Math.ceil(pageCount / MUTATE_EVERY));
  let x = (0x9e3779b9 ^ Math.imul(seed, 0x85ebca6b)) >>> 0 || 1;
  for (let k = 0; k < pfns.length; k++) {
    const pfn = k * MUTATE_EVERY;
    pfns[k] = pfn;
    const at = pfn * pageSize +
      ((pfn * 977 + seed * 1231) % (pageSize - MUTATE_BYTES));
    for (let i = 0; i < MUTATE_BYTES; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      memory[at + i] = x & 0xff;
    }
  }
  return pfns;
}

/** Whether a codec of the chain keeps state from what was sent (delta, dedup). */
function isStateful(names: readonly string[], g: Geometry): boolean {
  return names.some((n) => {
    const codec = codecByName(n);
    const options = codec.parseOptions({});
    return typeof codec.createBatchEncoder({ ...g, options }).sent ===
      "function";
  });
}

function summarize(
  workload: string,
  names: readonly string[],
  pass: 1 | 2,
  sent: Sent,
  chain: BatchEncoderChain,
  g: Geometry,
  times: { encodeMs: number[]; decodeMs: number[]; verified: boolean },
): CodecResult {
  const payloadBytes = sent.payloads.reduce((n, p) => n + p.length, 0);
  const wireBytes = payloadBytes + HEADER_BYTES * sent.payloads.length;
  const pageBytes = sent.pages * g.pageSize;
  const claims: Record<string, number> = {};
  let raw = 0;
  for (const c of chain.activeCodecs) {
    const n = sent.claims.get(c.id) ?? 0;
    claims[c.name] = n;
    if (c.id === 0) raw = n;
  }
  return {
    workload,
    codec: names.join("+"),
    chain: chain.active,
    pass,
    pages: sent.pages,
    pageBytes,
    batches: sent.payloads.length,
    payloadBytes,
    wireBytes,
    ratio: pageBytes / wireBytes,
    claims,
    claimed: sent.pages === 0 ? 0 : 1 - raw / sent.pages,
    encodeGBps: pageBytes / median(times.encodeMs) / 1e6,
    decodeGBps: pageBytes / median(times.decodeMs) / 1e6,
    encodeMs: times.encodeMs,
    decodeMs: times.decodeMs,
    verified: times.verified,
  };
}

/** Benchmarks one chain on `memory`; returns pass 1 and, for stateful chains, pass 2. */
function benchChain(
  names: readonly string[],
  workload: string,
  memory: Uint8Array,
  g: Geometry,
  runs: number,
): CodecResult[] {
  const all = Uint32Array.from({ length: g.pageCount }, (_, i) => i);
  const encodeMs: number[] = [];
  const decodeMs: number[] = [];
  let verified = true;
  let last: { sent: Sent; chain: BatchEncoderChain } | undefined;
  const dest = new Uint8Array(memory.length);
  for (let r = 0; r < runs; r++) {
    const chain = newChain(names, g);
    const sent = encodePass(chain, memory, all, g);
    encodeMs.push(sent.ms);
    dest.fill(0);
    decodeMs.push(
      decodePass(sent.payloads, newReceiver(chain, dest, g), dest, g),
    );
    verified &&= equalMemory(dest, memory);
    last = { sent, chain };
  }
  const results = [
    summarize(workload, names, 1, last!.sent, last!.chain, g, {
      encodeMs,
      decodeMs,
      verified,
    }),
  ];
  if (!isStateful(names, g)) return results;

  // Pass 2: rounds 2 and 3 over the 5% the guest wrote, with the state of
  // the rounds before. Round 2 is those pages' second send (from then on
  // delta caches them); round 3, which is timed and reported, sends them
  // written again.
  const round2 = memory.slice();
  const dirty = mutate(round2, g.pageSize, 1);
  const round3 = round2.slice();
  mutate(round3, g.pageSize, 2);
  const encode2: number[] = [];
  const decode2: number[] = [];
  let verified2 = true;
  let last2: { sent: Sent; chain: BatchEncoderChain } | undefined;
  for (let r = 0; r < runs; r++) {
    const chain = newChain(names, g);
    dest.fill(0);
    const set = newReceiver(chain, dest, g);
    decodePass(encodePass(chain, memory, all, g).payloads, set, dest, g);
    decodePass(encodePass(chain, round2, dirty, g).payloads, set, dest, g);
    const sent = encodePass(chain, round3, dirty, g);
    encode2.push(sent.ms);
    decode2.push(decodePass(sent.payloads, set, dest, g));
    verified2 &&= equalMemory(dest, round3);
    last2 = { sent, chain };
  }
  results.push(
    summarize(workload, names, 2, last2!.sent, last2!.chain, g, {
      encodeMs: encode2,
      decodeMs: decode2,
      verified: verified2,
    }),
  );
  return results;
}

/** Runs `tool args... image` with stdout to /dev/null `runs` times, and once to a pipe for the size. */
async function benchCli(
  workload: string,
  tool: string,
  args: string[],
  image: string,
  imageBytes: number,
  runs: number,
): Promise<CliResult | undefined> {
  const ms: number[] = [];
  try {
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const out = await new Deno.Command(tool, {
        args: [...args, image],
        stdout: "null",
        stderr: "null",
      }).output();
      ms.push(performance.now() - t0);
      if (!out.success) return undefined;
    }
    const child = new Deno.Command(tool, {
      args: [...args, image],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    let compressedBytes = 0;
    for await (const chunk of child.stdout) compressedBytes += chunk.length;
    if (!(await child.status).success) return undefined;
    return {
      workload,
      tool,
      args,
      imageBytes,
      compressedBytes,
      ratio: imageBytes / compressedBytes,
      GBps: imageBytes / median(ms) / 1e6,
      ms,
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

const CLI_TOOLS: readonly { tool: string; args: string[] }[] = [
  { tool: "lz4", args: ["-1", "-c"] },
  { tool: "zstd", args: ["-1", "-c"] },
  { tool: "zstd", args: ["-1", "-T1", "-c"] },
];

/** Every registered codec alone, then zero before each other codec. */
function defaultChains(): string[][] {
  const names = codecNames();
  return [
    ...names.map((n) => [n]),
    ...names.filter((n) => n !== "zero" && n !== "raw").map((n) => ["zero", n]),
  ];
}

/** The batch lz4 and zstd ratios as fractions of the CLI tools' on the same image. */
function compare(
  workload: string,
  rows: readonly CodecResult[],
  cli: readonly CliResult[],
): CliComparison[] {
  const out: CliComparison[] = [];
  for (const tool of ["lz4", "zstd"]) {
    const c = cli.find((r) => r.workload === workload && r.tool === tool);
    if (!c) continue;
    for (const label of [tool, `zero+${tool}`]) {
      const r = rows.find((x) =>
        x.workload === workload && x.codec === label && x.pass === 1
      );
      if (!r) continue;
      out.push({
        workload,
        tool,
        codec: label,
        batchRatio: r.ratio,
        cliRatio: c.ratio,
        fraction: r.ratio / c.ratio,
      });
    }
  }
  return out;
}

/** Options of {@link benchCodecs}; the command line's flags, parsed. */
export interface CodecsOptions {
  /** Guest memory in bytes. */
  readonly memBytes: number;
  /** Runs; the speeds are medians over them. */
  readonly runs: number;
  /** Where the JSON goes. */
  readonly out: string;
  /** Workloads (default: every one). */
  readonly workloads?: readonly string[];
  /** Chains (default: every codec alone, then zero before each other). */
  readonly chains?: readonly (readonly string[])[];
  /** Leave out the lz4 and zstd command-line tools. */
  readonly noCli?: boolean;
}

/**
 * Runs the benchmark, prints the tables and writes the JSON.
 *
 * @throws {Error} when any chain decoded other memory than the source.
 */
export async function benchCodecs(
  options: CodecsOptions,
): Promise<BenchReport> {
  const { memBytes, runs, out } = options;
  const workloads = options.workloads ?? workloadNames();
  const chains = options.chains ?? defaultChains();
  const report: BenchReport = {
    memBytes,
    pageSize: 0,
    batchPages: POLICY_DEFAULTS.batchPages,
    runs,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    codecs: [],
    cli: [],
    comparisons: [],
  };
  const image = await Deno.makeTempFile({
    prefix: "hakobu-bench-",
    suffix: ".img",
  });
  try {
    for (const workload of workloads) {
      const vm = await SimVm.create({
        memoryBytes: memBytes,
        workload,
        seed: 1,
        dirtyRate: 0,
      });
      let memory: Uint8Array;
      try {
        // A private copy: the bench must not depend on the VM staying open.
        memory = vm.memory.slice();
        report.pageSize = vm.pageSize;
      } finally {
        await vm.close();
      }
      const g = {
        pageSize: report.pageSize,
        pageCount: memory.length / report.pageSize,
      };
      for (const names of chains) {
        const rs = benchChain(names, workload, memory, g, runs);
        report.codecs.push(...rs);
        for (const r of rs) {
          console.error(
            `${workload} ${r.codec} pass ${r.pass}: ratio ${
              r.ratio.toFixed(2)
            }, ` +
              `enc ${r.encodeGBps.toFixed(2)} GB/s, dec ${
                r.decodeGBps.toFixed(2)
              } GB/s` +
              (r.verified ? "" : ", NOT VERIFIED"),
          );
        }
      }
      if (!options.noCli) {
        await Deno.writeFile(image, memory);
        for (const { tool, args } of CLI_TOOLS) {
          const r = await benchCli(
            workload,
            tool,
            args,
            image,
            memory.length,
            runs,
          );
          if (r) report.cli.push(r);
          else {
            console.error(
              `${tool} ${args.join(" ")}: not run (tool missing or failed)`,
            );
          }
        }
      }
      report.comparisons.push(...compare(workload, report.codecs, report.cli));
    }
  } finally {
    await Deno.remove(image).catch(() => {});
  }
  const dir = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(out, JSON.stringify(report, null, 2) + "\n");
  console.log(renderTable(report));
  console.log(renderComparisons(report));
  console.log(`wrote ${out}`);
  const failed = report.codecs.filter((r) => !r.verified);
  if (failed.length > 0) {
    throw new Error(
      `Decoded memory differs from the source for ${
        failed.map((r) => `${r.workload} ${r.codec} pass ${r.pass}`).join(", ")
      }`,
    );
  }
  return report;
}

/** The table printed to stdout. */
export function renderTable(report: BenchReport): string {
  const table = new Table({
    head: [
      "workload",
      "chain (+raw)",
      "pass",
      "ratio",
      "claimed",
      "enc GB/s",
      "dec GB/s",
    ],
    colAligns: ["left", "left", "right", "right", "right", "right", "right"],
    style: { head: [], border: [] },
  });
  const workloads = [...new Set(report.codecs.map((r) => r.workload))];
  for (const w of workloads) {
    for (const r of report.codecs.filter((r) => r.workload === w)) {
      table.push([
        w,
        r.codec,
        String(r.pass),
        r.ratio.toFixed(2),
        `${(r.claimed * 100).toFixed(1)}%`,
        r.encodeGBps.toFixed(2),
        r.decodeGBps.toFixed(2),
      ]);
    }
    for (const c of report.cli.filter((c) => c.workload === w)) {
      table.push([
        w,
        `${c.tool} ${c.args.filter((a) => a !== "-c").join(" ")} (cli, stream)`,
        "",
        c.ratio.toFixed(2),
        "",
        c.GBps.toFixed(2),
        "",
      ]);
    }
  }
  return `codec chains on ${report.memBytes / (1 << 20)} MiB per workload, ` +
    `batches of ${report.batchPages} non-zero pages, one channel, one core, ` +
    `median of ${report.runs} (deno ${report.deno}; ratio counts BATCH ` +
    `payloads and their 16-byte frame headers)\n` +
    table.toString();
}

/** Per workload, the batch lz4/zstd ratios as fractions of the CLI tools'. */
export function renderComparisons(report: BenchReport): string {
  const lines = [
    "batch ratio / CLI ratio (lz4 -1, zstd -1 on the whole image):",
  ];
  const workloads = [...new Set(report.comparisons.map((c) => c.workload))];
  for (const w of workloads) {
    const parts = report.comparisons.filter((c) => c.workload === w).map((c) =>
      `${c.codec} ${c.fraction.toFixed(3)}x (${c.batchRatio.toFixed(2)} / ${
        c.cliRatio.toFixed(2)
      })`
    );
    let verdict = "";
    if (TARGET_WORKLOADS.includes(w)) {
      const alone = report.comparisons.filter((c) =>
        c.workload === w && c.codec === c.tool
      );
      const met = alone.length > 0 && alone.every((c) => c.fraction >= TARGET);
      verdict = `  target ≥ ${TARGET}x for lz4 and zstd: ${
        met ? "met" : "NOT met"
      }`;
    }
    lines.push(`  ${w}: ${parts.join(", ")}${verdict}`);
  }
  return lines.join("\n");
}

/** The command line: flags as in the module doc, `--help` lists them. */
function command(): Command {
  return cliProgram("bench_codecs.ts")
    .description(
      "Codec chains over batches on every sim workload, beside the lz4 and zstd command-line tools, as a table and JSON.",
    )
    .addOption(
      new Option("--mem <size>", "guest memory per workload").argParser(size)
        .default(256 * 2 ** 20, "256MiB"),
    )
    .option("--runs <n>", "runs (medians over them)", integer({ min: 1 }), 3)
    .option("--out <file>", "JSON output", "out/bench-codecs.json")
    .option(
      "--workloads <list>",
      "sim workloads, e.g. memcached,postgres (default: every one)",
      nameList({ known: workloadNames(), what: "workload" }),
    )
    .option(
      "--chains <list>",
      'chains: "," between chains, "+" between codecs, e.g. lz4,zero+zstd (default: every codec alone, then zero+each)',
      codecChains(",", "+"),
    )
    .option("--no-cli", "leave out the lz4 and zstd command-line tools")
    .action(async (o) => {
      await benchCodecs({
        memBytes: o.mem,
        runs: o.runs,
        out: o.out,
        workloads: o.workloads,
        chains: o.chains,
        noCli: !o.cli,
      });
    });
}

/** Runs the command line on `args`; returns the exit code. */
export function main(args: readonly string[]): Promise<number> {
  return runCli(command, args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
