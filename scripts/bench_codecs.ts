/**
 * Codec benchmark: every registered codec on every sim workload, side by
 * side with the `lz4 -1` and `zstd -1` command-line tools on the same bytes,
 * in one run (this machine is noisy: compare within a run, not across runs).
 *
 * ```sh
 * deno run -A scripts/bench_codecs.ts [--mem 256MiB] [--runs 3] [--out out/bench-codecs.json]
 *   [--workloads idle,memcached] [--codecs lz4,zstd] [--no-cli]
 * ```
 *
 * Per workload (a `SimVm` with `seed: 1, dirtyRate: 0`, so memory holds
 * still) and per codec (every name in the registry, so codecs added later
 * are included):
 * - **pass 1**: the whole memory through a fresh chain `[codec, raw]`, on
 *   one core (the main thread). For a stateful codec (one whose encoder has
 *   `sent`, e.g. delta, dedup) this is the pass that fills its state, and it
 *   is what is reported.
 * - **pass 2** (stateful codecs only): 5% of pages (every 20th) get 64
 *   bytes overwritten at a page-dependent offset, and only those pages are
 *   encoded again with the chain from pass 1, as a second pre-copy round
 *   would; this is where delta has something to do.
 * - **encode GB/s**: page bytes / encode time, median of `--runs` runs (each
 *   with a fresh chain; pass 2: fresh chains primed by an untimed pass 1).
 * - **decode GB/s**: page bytes / time to decode every entry into a scratch
 *   page and copy it into destination memory (as the receiver does), median
 *   of `--runs` runs; the result is checked byte for byte against the source.
 * - **ratio**: page bytes / (encoded bytes + 16 bytes of entry header per
 *   page, as on the wire); **claimed**: share of pages the codec (not raw) took.
 *
 * The CLI tools compress the memory image (written to a temp file) as one
 * stream (`-c`, stdout to /dev/null for timing, to a pipe once for the size),
 * so they see a whole-image window rather than one page: their ratio is a
 * ceiling for per-page codecs, their time includes process start.
 *
 * Writes a table to stdout and JSON to `--out`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import Table from "cli-table3";
import { parseSize } from "../dsl/units.ts";
import { EncoderChain } from "../engine/codecs/chain.ts";
import type { Codec, PageDecoder } from "../engine/codecs/codec.ts";
import { codecByName, codecNames } from "../engine/codecs/registry.ts";
import { SimVm, workloadNames } from "../engine/sim/mod.ts";

/** Bytes of wire entry header per page (engine/wire/pages.ts `ENTRY_HEADER_BYTES`). */
const ENTRY_HEADER_BYTES = 16;
/** Pass 2 mutates every `MUTATE_EVERY`-th page (5%). */
const MUTATE_EVERY = 20;
const MUTATE_BYTES = 64;

/** One codec on one workload, one pass. */
export interface CodecResult {
  workload: string;
  codec: string;
  /** 1: whole memory, fresh state; 2: the mutated 5% after pass 1 (stateful codecs only). */
  pass: 1 | 2;
  pages: number;
  pageBytes: number;
  /** Encoded payload bytes, without entry headers. */
  encodedBytes: number;
  /** Encoded bytes plus 16 bytes of entry header per page. */
  wireBytes: number;
  ratio: number;
  /** Share of pages the codec claimed (the rest went raw). */
  claimed: number;
  encodeGBps: number;
  decodeGBps: number;
  encodeMs: number[];
  decodeMs: number[];
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

/** The JSON written to `--out`. */
export interface BenchReport {
  memBytes: number;
  pageSize: number;
  runs: number;
  deno: string;
  date: string;
  codecs: CodecResult[];
  cli: CliResult[];
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Encoded entries of one pass, kept for decoding. */
interface Capture {
  pfns: Uint32Array;
  ids: Uint8Array;
  offsets: Float64Array;
  lengths: Uint32Array;
  bytes: Uint8Array;
  count: number;
}

/** Encodes `pfns` of `memory` with `chain`; returns the time, and the entries when `capture` is given. */
function encodePass(
  chain: EncoderChain,
  memory: Uint8Array,
  pageSize: number,
  pfns: Uint32Array,
  capture?: Capture,
): number {
  const t0 = performance.now();
  if (!capture) {
    for (let i = 0; i < pfns.length; i++) {
      const p = pfns[i] * pageSize;
      chain.encode(pfns[i], memory.subarray(p, p + pageSize));
    }
    return performance.now() - t0;
  }
  let off = 0;
  for (let i = 0; i < pfns.length; i++) {
    const p = pfns[i] * pageSize;
    const r = chain.encode(pfns[i], memory.subarray(p, p + pageSize));
    if (off + r.length > capture.bytes.length) {
      const bigger = new Uint8Array(
        Math.max(capture.bytes.length * 2, off + r.length),
      );
      bigger.set(capture.bytes.subarray(0, off));
      capture.bytes = bigger;
    }
    capture.bytes.set(chain.output.subarray(0, r.length), off);
    capture.pfns[i] = pfns[i];
    capture.ids[i] = r.codecId;
    capture.offsets[i] = off;
    capture.lengths[i] = r.length;
    off += r.length;
  }
  capture.count = pfns.length;
  return performance.now() - t0;
}

function newCapture(n: number, pageSize: number): Capture {
  return {
    pfns: new Uint32Array(n),
    ids: new Uint8Array(n),
    offsets: new Float64Array(n),
    lengths: new Uint32Array(n),
    bytes: new Uint8Array(Math.max(1 << 20, Math.min(n * pageSize, 1 << 30))),
    count: 0,
  };
}

/** A receiver: decoders by id over destination memory `dest`. */
function receiver(
  codecs: readonly Codec[],
  dest: Uint8Array,
  geometry: { pageSize: number; pageCount: number },
): Map<number, PageDecoder> {
  const { pageSize } = geometry;
  const current = (pfn: number) =>
    dest.subarray(pfn * pageSize, pfn * pageSize + pageSize);
  const decoders = new Map<number, PageDecoder>();
  for (const c of codecs) {
    decoders.set(c.id, c.createDecoder({ ...geometry, options: {}, current }));
  }
  return decoders;
}

/** Decodes `capture` into `dest` with `decoders`; returns the time. */
function decodePass(
  capture: Capture,
  decoders: Map<number, PageDecoder>,
  dest: Uint8Array,
  pageSize: number,
): number {
  const scratch = new Uint8Array(pageSize);
  const all = [...decoders.values()];
  const t0 = performance.now();
  for (let i = 0; i < capture.count; i++) {
    const pfn = capture.pfns[i];
    const id = capture.ids[i];
    const off = capture.offsets[i];
    decoders.get(id)!.decode(
      pfn,
      capture.bytes.subarray(off, off + capture.lengths[i]),
      scratch,
    );
    dest.set(scratch, pfn * pageSize);
    for (const d of all) d.applied?.(pfn, scratch, id);
  }
  return performance.now() - t0;
}

function equalPages(
  a: Uint8Array,
  b: Uint8Array,
  pfns: Uint32Array,
  pageSize: number,
): boolean {
  for (const pfn of pfns) {
    const p = pfn * pageSize;
    const x = new Uint32Array(a.buffer, a.byteOffset + p, pageSize >> 2);
    const y = new Uint32Array(b.buffer, b.byteOffset + p, pageSize >> 2);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  }
  return true;
}

/** Overwrites 64 bytes of every 20th page at a page-dependent offset; returns the pfns touched. */
function mutate(memory: Uint8Array, pageSize: number): Uint32Array {
  const pageCount = memory.length / pageSize;
  const pfns = new Uint32Array(Math.ceil(pageCount / MUTATE_EVERY));
  let x = 0x9e3779b9;
  for (let k = 0; k < pfns.length; k++) {
    const pfn = k * MUTATE_EVERY;
    pfns[k] = pfn;
    const at = pfn * pageSize + ((pfn * 977) % (pageSize - MUTATE_BYTES));
    for (let i = 0; i < MUTATE_BYTES; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      memory[at + i] = x & 0xff;
    }
  }
  return pfns;
}

function isStateful(
  codec: Codec,
  geometry: { pageSize: number; pageCount: number },
): boolean {
  const enc = codec.createEncoder({ ...geometry, options: {} });
  return typeof enc.sent === "function";
}

/** Benchmarks one codec on `memory`; returns pass 1 and, for stateful codecs, pass 2. */
function benchCodec(
  name: string,
  workload: string,
  memory: Uint8Array,
  pageSize: number,
  runs: number,
): CodecResult[] {
  const pageCount = memory.length / pageSize;
  const geometry = { pageSize, pageCount };
  const codec = codecByName(name);
  const all = Uint32Array.from({ length: pageCount }, (_, i) => i);
  const fresh = () => {
    const c = new EncoderChain(geometry);
    c.select([{ name }, { name: "raw" }]);
    return c;
  };
  const used = () =>
    [codec, codecByName("raw")].filter((c, i, a) => a.indexOf(c) === i);

  const encodeMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    encodeMs.push(encodePass(fresh(), memory, pageSize, all));
  }
  const chain = fresh();
  const cap = newCapture(pageCount, pageSize);
  encodePass(chain, memory, pageSize, all, cap);
  const dest = new Uint8Array(memory.length);
  const decodeMs: number[] = [];
  for (let r = 0; r < runs; r++) {
    dest.fill(0);
    decodeMs.push(
      decodePass(cap, receiver(used(), dest, geometry), dest, pageSize),
    );
  }
  if (!equalPages(dest, memory, all, pageSize)) {
    throw new Error(
      `Codec "${name}" on workload "${workload}": decoded memory differs from the source`,
    );
  }
  const results = [
    summarize(workload, name, 1, cap, codec.id, pageSize, encodeMs, decodeMs),
  ];
  if (!isStateful(codec, geometry)) return results;

  // Pass 2: a second round over the mutated 5%, with state from pass 1.
  const mutated = memory.slice();
  const dirty = mutate(mutated, pageSize);
  const encode2: number[] = [];
  const decode2: number[] = [];
  const cap2 = newCapture(dirty.length, pageSize);
  for (let r = 0; r < runs; r++) {
    const c = fresh();
    encodePass(c, memory, pageSize, all);
    encode2.push(
      encodePass(
        c,
        mutated,
        pageSize,
        dirty,
        r === runs - 1 ? cap2 : undefined,
      ),
    );
  }
  const dest2 = new Uint8Array(memory.length);
  for (let r = 0; r < runs; r++) {
    const decoders = receiver(used(), dest2, geometry);
    decodePass(cap, decoders, dest2, pageSize);
    decode2.push(decodePass(cap2, decoders, dest2, pageSize));
  }
  if (!equalPages(dest2, mutated, all, pageSize)) {
    throw new Error(
      `Codec "${name}" on workload "${workload}": pass 2 decoded memory differs from the source`,
    );
  }
  results.push(
    summarize(workload, name, 2, cap2, codec.id, pageSize, encode2, decode2),
  );
  return results;
}

function summarize(
  workload: string,
  codec: string,
  pass: 1 | 2,
  cap: Capture,
  id: number,
  pageSize: number,
  encodeMs: number[],
  decodeMs: number[],
): CodecResult {
  let encodedBytes = 0;
  let claimed = 0;
  for (let i = 0; i < cap.count; i++) {
    encodedBytes += cap.lengths[i];
    if (cap.ids[i] === id) claimed++;
  }
  const pageBytes = cap.count * pageSize;
  const wireBytes = encodedBytes + ENTRY_HEADER_BYTES * cap.count;
  return {
    workload,
    codec,
    pass,
    pages: cap.count,
    pageBytes,
    encodedBytes,
    wireBytes,
    ratio: pageBytes / wireBytes,
    claimed: claimed / cap.count,
    encodeGBps: pageBytes / median(encodeMs) / 1e6,
    decodeGBps: pageBytes / median(decodeMs) / 1e6,
    encodeMs,
    decodeMs,
  };
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

/** Runs the benchmark; see the module doc for the flags. */
export async function main(argv: string[]): Promise<BenchReport> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mem: { type: "string", default: "256MiB" },
      runs: { type: "string", default: "3" },
      out: { type: "string", default: "out/bench-codecs.json" },
      workloads: { type: "string" },
      codecs: { type: "string" },
      "no-cli": { type: "boolean", default: false },
    },
  });
  const memBytes = parseSize(values.mem);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(
      `Invalid --runs "${values.runs}": expected a positive integer`,
    );
  }
  const workloads = values.workloads?.split(",") ?? workloadNames();
  const codecs = values.codecs?.split(",") ?? codecNames();
  const report: BenchReport = {
    memBytes,
    pageSize: 0,
    runs,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    codecs: [],
    cli: [],
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
      for (const name of codecs) {
        const rs = benchCodec(name, workload, memory, report.pageSize, runs);
        report.codecs.push(...rs);
        for (const r of rs) {
          console.error(
            `${workload} ${name} pass ${r.pass}: ratio ${
              r.ratio.toFixed(2)
            }, ` +
              `enc ${r.encodeGBps.toFixed(2)} GB/s, dec ${
                r.decodeGBps.toFixed(2)
              } GB/s`,
          );
        }
      }
      if (!values["no-cli"]) {
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
          else {console.error(
              `${tool} ${args.join(" ")}: not run (tool missing or failed)`,
            );}
        }
      }
    }
  } finally {
    await Deno.remove(image).catch(() => {});
  }
  const dir = values.out.includes("/")
    ? values.out.slice(0, values.out.lastIndexOf("/"))
    : "";
  if (dir) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(values.out, JSON.stringify(report, null, 2) + "\n");
  console.log(renderTable(report));
  console.log(`wrote ${values.out}`);
  return report;
}

/** The table printed to stdout. */
export function renderTable(report: BenchReport): string {
  const table = new Table({
    head: [
      "workload",
      "codec",
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
  return `codecs on ${
    report.memBytes / (1 << 20)
  } MiB per workload, one core, median of ${report.runs} ` +
    `(deno ${report.deno}; ratio counts 16 B of entry header per page)\n` +
    table.toString();
}

if (import.meta.main) {
  await main(Deno.args);
}
