/**
 * `bench:gpu`: per kernel, on whatever WebGPU adapter is present, upload,
 * kernel and readback throughput, and end-to-end encode throughput against
 * the CPU codec on the same pages in the same run (a `memcached` sim VM),
 * and the receiver's decode Worker end to end (BATCH payloads of
 * `zero→rle` through a `DecoderPool` into shared memory) with `--gpu gpu`
 * against the CPU. Prints a table and writes `out/bench-gpu.json`.
 *
 * ```sh
 * XDG_RUNTIME_DIR=/tmp/xdg deno run -A scripts/bench_gpu.ts --memory-mib 256 --batch 4096
 * ```
 *
 * It imports only Deno's built-ins and project files — no npm package, not
 * even commander, which every other entry point parses its flags with: the
 * GPU machines it is meant for have no network and no `node_modules`, and
 * run it with a carried `deno` binary alone (`docs/gpu.md`). Its two flags
 * are parsed by `node:util`'s `parseArgs`, with the same kind of errors.
 *
 * @module
 */
import { fingerprint128 } from "../engine/codecs/_fingerprint.ts";
import { EncoderChain } from "../engine/codecs/chain.ts";
import { delta } from "../engine/codecs/delta.ts";
import { rle } from "../engine/codecs/rle.ts";
import { SimVm } from "../engine/sim/mod.ts";
import { isZeroPage } from "../engine/zero_page.ts";
import {
  GpuBatchDecoder,
  type GpuDecodeCodec,
} from "../engine/gpu/batch_decoder.ts";
import { GpuBatchEncoder, type GpuChain } from "../engine/gpu/batch_encoder.ts";
import { CompactKernels } from "../engine/gpu/compact.ts";
import { DeltaEncodeKernel } from "../engine/gpu/delta_encode.ts";
import { openGpu } from "../engine/gpu/device.ts";
import { FingerprintKernel } from "../engine/gpu/fingerprint.ts";
import { RleEncodeKernel } from "../engine/gpu/rle_encode.ts";
import { readBack, storageBuffer } from "../engine/gpu/_runtime.ts";
import { ZeroScanKernel } from "../engine/gpu/zero_scan.ts";
import { PAGE_SIZE } from "../engine/plan.ts";
import { BatchEncoderChain } from "../engine/codecs/batch_chain.ts";
import { codecByName, codecNames } from "../engine/codecs/registry.ts";
import { DecoderPool } from "../engine/pipeline/decoder_pool.ts";
import { PageBatchBuilder } from "../engine/pipeline/page_batch.ts";
import type { DecodeGpu } from "../engine/session/receive_gpu.ts";
import { parseArgs } from "node:util";

const USAGE =
  "usage: bench_gpu.ts [--memory-mib N (64)] [--batch PAGES (4096)]: per GPU kernel, upload, kernel and readback throughput, and end-to-end encode against the CPU codec, on a memcached sim VM";

/** A flag's value as a whole number ≥ 1, or exit 2 naming the flag. */
function positive(
  flag: string,
  text: string | undefined,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    console.error(
      `--${flag}: expected a whole number ≥ 1, got "${text}"\n${USAGE}`,
    );
    Deno.exit(2);
  }
  return n;
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      "memory-mib": { type: "string" },
      batch: { type: "string" },
      help: { type: "boolean" },
    },
  }).values;
} catch (e) {
  console.error(`${(e as Error).message}\n${USAGE}`);
  Deno.exit(2);
}
if (parsed.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const flags = {
  memoryMib: positive("memory-mib", parsed["memory-mib"], 64),
  batch: positive("batch", parsed.batch, 4096),
};

/** One row of the table: GB/s (1e9 bytes of input pages per second). */
interface Row {
  kernel: string;
  uploadGBs: number;
  kernelGBs: number;
  readbackGBs: number;
  gpuEncodeGBs: number;
  cpuGBs: number;
  bytes: number;
}

const memoryBytes = flags.memoryMib * 1024 * 1024;
const batch = flags.batch;
const gpu = await openGpu({ prefer: "gpu", require: true });
const device = gpu!.device;
const vm = await SimVm.create({
  memoryBytes,
  workload: "memcached",
  seed: 1,
  dirtyRate: 0,
});
const pageCount = vm.pageCount;
const pages = Array.from({ length: pageCount }, (_, p) => vm.page(p));
// "New" versions for delta: every other page has a few bytes changed.
const olds = pages.map((p) => p.slice());
const news = olds.map((p, i) => {
  const c = p.slice();
  if (i % 2 === 0) {
    for (let b = (i * 131) % 64; b < PAGE_SIZE; b += 509) c[b] ^= 0x5a;
  }
  return c;
});
/** Rounds sent before a timed delta round (see {@link pipelined}). */
const WARM_ROUNDS = 2;
const gbs = (bytes: number, ms: number): number =>
  ms > 0 ? bytes / ms / 1e6 : 0;

/** Times upload, kernel and readback of each batch separately (each awaited alone). */
async function stages(
  name: string,
  record: (
    enc: GPUCommandEncoder,
    input: GPUBuffer,
    n: number,
  ) => { result: GPUBuffer; bytes: (n: number) => number },
  src: Uint8Array[],
): Promise<{ up: number; k: number; rb: number }> {
  const input = storageBuffer(device, batch * PAGE_SIZE, `${name} in`);
  const host = new Uint8Array(batch * PAGE_SIZE);
  let up = 0, k = 0, rb = 0;
  for (let at = 0; at < src.length; at += batch) {
    const n = Math.min(batch, src.length - at);
    for (let i = 0; i < n; i++) host.set(src[at + i], i * PAGE_SIZE);
    let t = performance.now();
    device.queue.writeBuffer(input, 0, host, 0, n * PAGE_SIZE);
    await device.queue.onSubmittedWorkDone();
    up += performance.now() - t;
    t = performance.now();
    const enc = device.createCommandEncoder();
    const { result, bytes } = record(enc, input, n);
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    k += performance.now() - t;
    t = performance.now();
    await readBack(device, result, bytes(n), "rb");
    rb += performance.now() - t;
  }
  input.destroy();
  return { up, k, rb };
}

async function pipelined(
  chain: GpuChain,
  src: Uint8Array[],
  warm?: Uint8Array[],
): Promise<number> {
  const enc = new GpuBatchEncoder(device, {
    chain,
    batch,
    pageSize: PAGE_SIZE,
    pageCount,
  });
  const pfns = src.map((_, i) => i);
  if (warm) {
    // Rounds 0 and 1 fill the delta cache: like QEMU's XBZRLE, delta keeps a
    // page from its first resend on (DeltaCache.record), so only the timed
    // round 2 finds a base for every page.
    for (let round = 0; round < WARM_ROUNDS; round++) {
      const ps: Promise<unknown>[] = [];
      for (let at = 0; at < warm.length; at += batch) {
        ps.push(
          enc.encode(pfns.slice(at, at + batch), warm.slice(at, at + batch)),
        );
      }
      await Promise.all(ps);
    }
  }
  const t = performance.now();
  const ps: Promise<unknown>[] = [];
  for (let at = 0; at < src.length; at += batch) {
    ps.push(enc.encode(pfns.slice(at, at + batch), src.slice(at, at + batch)));
  }
  await Promise.all(ps);
  const ms = performance.now() - t;
  enc.destroy();
  return ms;
}

function cpuChain(
  specs: string[],
  src: Uint8Array[],
  warm?: Uint8Array[],
): number {
  const c = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
  c.select(specs.map((name) => ({ name })));
  for (let round = 0; warm && round < WARM_ROUNDS; round++) {
    warm.forEach((p, i) => c.encode(i, p));
  }
  const t = performance.now();
  src.forEach((p, i) => c.encode(i, p));
  return performance.now() - t;
}

/** A row for a kernel timed by {@link stages}, then end to end on the GPU and on the CPU, over every page. */
function encodeRow(
  kernel: string,
  s: { up: number; k: number; rb: number },
  gpuMs: number,
  cpuMs: number,
): Row {
  return {
    kernel,
    uploadGBs: gbs(total, s.up),
    kernelGBs: gbs(total, s.k),
    readbackGBs: gbs(total, s.rb),
    gpuEncodeGBs: gbs(total, gpuMs),
    cpuGBs: gbs(total, cpuMs),
    bytes: total,
  };
}

/**
 * Encodes `src` with the CPU codec (each page against `old[pfn]` for delta)
 * and times decoding every page it claims on the GPU, `batch` pages per
 * call, and on the CPU: a row (GB/s of decoded pages).
 */
async function decodeRow(
  codec: GpuDecodeCodec,
  src: readonly Uint8Array[],
  old?: readonly Uint8Array[],
): Promise<Row> {
  const c = codec === "rle" ? rle : delta;
  if (!c.createEncoder || !c.createDecoder) {
    throw new Error(`Codec "${c.name}" has no per-page form to compare with`);
  }
  const current = old && ((pfn: number) => old[pfn]);
  const ctx = { pageSize: PAGE_SIZE, pageCount, options: {} };
  const enc = c.createEncoder(ctx);
  const buf = new Uint8Array(PAGE_SIZE);
  const inputs: Uint8Array[] = [];
  const pfns: number[] = [];
  src.forEach((p, i) => {
    for (let round = 0; old && round < WARM_ROUNDS; round++) {
      enc.sent?.(i, old[i], 0);
    }
    const n = enc.encode(i, p, buf);
    if (n >= 0) {
      inputs.push(buf.slice(0, n));
      pfns.push(i);
    }
  });
  const dec = new GpuBatchDecoder(device, { pageSize: PAGE_SIZE, current });
  const bytes = inputs.length * PAGE_SIZE;
  let t = performance.now();
  for (let at = 0; at < inputs.length; at += batch) {
    await dec.decode(
      codec,
      pfns.slice(at, at + batch),
      inputs.slice(at, at + batch),
    );
  }
  const gpuMs = performance.now() - t;
  const cpuDec = c.createDecoder({ ...ctx, current });
  t = performance.now();
  inputs.forEach((inp, i) => cpuDec.decode(pfns[i], inp, buf));
  return {
    kernel: `${codec}_decode (${inputs.length} pages)`,
    uploadGBs: 0,
    kernelGBs: 0,
    readbackGBs: 0,
    gpuEncodeGBs: gbs(bytes, gpuMs),
    cpuGBs: gbs(bytes, performance.now() - t),
    bytes,
  };
}

/**
 * The receiver's decode path end to end: `src` as BATCH payloads of the
 * chain `names` (256 non-zero pages each, as a plan's default), decoded by
 * one decode Worker into shared memory, with the GPU (`--gpu gpu`) and
 * without; each run's memory is checked against `src`. A row: GB/s of
 * pages applied.
 */
async function receiverRow(
  names: readonly string[],
  src: readonly Uint8Array[],
): Promise<Row> {
  const flat = new Uint8Array(pageCount * PAGE_SIZE);
  src.forEach((p, i) => flat.set(p, i * PAGE_SIZE));
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  chain.select(names.map((name) => ({ name })));
  const builder = new PageBatchBuilder({
    pageSize: PAGE_SIZE,
    nonZeroPages: 256,
    maxPages: 16384,
  });
  const payloads: Uint8Array[] = [];
  for (let pfn = 0; pfn < pageCount;) {
    builder.reset();
    while (pfn < pageCount && !builder.full) builder.addFrom(flat, pfn++);
    payloads.push(chain.encode(builder, (n) => new Uint8Array(n)).payload);
  }
  const setups = chain.takeNewCodecs().map(({ codec, options }) => ({
    id: codec.id,
    name: codec.name,
    options,
  }));
  const run = async (gpu: DecodeGpu | undefined) => {
    const memory = new SharedArrayBuffer(pageCount * PAGE_SIZE);
    const pool = DecoderPool.start({
      channels: 1,
      pageSize: PAGE_SIZE,
      pageCount,
      codecs: codecNames().map((name) => ({
        id: codecByName(name).id,
        name,
      })),
      memory,
      touched: new SharedArrayBuffer(pageCount),
      gpu,
    });
    try {
      for (const setup of setups) pool.codec(0, setup, 0);
      await pool.sync(); // the Worker started, its device opened
      const copies = payloads.map((p) => p.slice());
      const t = performance.now();
      for (const p of copies) await pool.batch(0, 0, p, 0);
      await pool.sync();
      const ms = performance.now() - t;
      if (!new Uint8Array(memory).every((b, i) => b === flat[i])) {
        throw new Error(
          `The receiver's decode ${
            gpu ? "on the GPU" : "on the CPU"
          } did not rebuild memory`,
        );
      }
      return { ms, gpuPages: pool.gpuPages };
    } finally {
      pool.close();
    }
  };
  const onGpu = await run({ prefer: "gpu", require: true, batch });
  const onCpu = await run(undefined);
  const bytes = pageCount * PAGE_SIZE;
  return {
    kernel: `receiver ${names.join("→")} (${onGpu.gpuPages} pages on GPU)`,
    uploadGBs: 0,
    kernelGBs: 0,
    readbackGBs: 0,
    gpuEncodeGBs: gbs(bytes, onGpu.ms),
    cpuGBs: gbs(bytes, onCpu.ms),
    bytes,
  };
}

const rows: Row[] = [];
const total = pageCount * PAGE_SIZE;
const per = (n: number) => n * 4;
const scratch = storageBuffer(device, batch * PAGE_SIZE, "scratch");
const out = storageBuffer(device, batch * PAGE_SIZE, "out");
const sizes = storageBuffer(device, batch * 4, "sizes");
const offsets = storageBuffer(device, (batch + 1) * 4, "offsets");
const fps = storageBuffer(device, batch * 16, "fps");
const olds0 = storageBuffer(device, batch * PAGE_SIZE, "olds");
const hasOld = storageBuffer(device, batch * 4, "hasOld");
device.queue.writeBuffer(hasOld, 0, new Uint32Array(batch).fill(1));
const zs = new ZeroScanKernel(device);
const fp = new FingerprintKernel(device);
const rk = new RleEncodeKernel(device);
const dk = new DeltaEncodeKernel(device);
const ck = new CompactKernels(device);
// Warm-up: compile every pipeline once.
await zs.run(pages.slice(0, 1), PAGE_SIZE);
await rk.run(pages.slice(0, 1), PAGE_SIZE);

{
  const s = await stages("zero_scan", (enc, input, n) => {
    zs.record(enc, { pages: input, flags: sizes }, n, PAGE_SIZE);
    return { result: sizes, bytes: per };
  }, pages);
  let t = performance.now();
  let z = 0;
  for (const p of pages) if (isZeroPage(p)) z++;
  const cpu = performance.now() - t;
  t = performance.now();
  for (let at = 0; at < pages.length; at += batch) {
    await zs.run(pages.slice(at, at + batch), PAGE_SIZE);
  }
  rows.push(encodeRow("zero_scan", s, performance.now() - t, cpu));
  console.log(`zero pages: ${z} of ${pageCount}`);
}
{
  const s = await stages("fingerprint", (enc, input, n) => {
    fp.record(enc, { words: input, out: fps }, n, PAGE_SIZE);
    return { result: fps, bytes: (n) => n * 16 };
  }, pages);
  const o = new Uint32Array(4);
  let t = performance.now();
  for (const p of pages) {
    fingerprint128(
      new Uint32Array(p.buffer, p.byteOffset, PAGE_SIZE / 4),
      0,
      PAGE_SIZE / 4,
      o,
    );
  }
  const cpu = performance.now() - t;
  t = performance.now();
  for (let at = 0; at < pages.length; at += batch) {
    await fp.run(pages.slice(at, at + batch), {
      pageSize: PAGE_SIZE,
      chunkBytes: PAGE_SIZE,
    });
  }
  rows.push(encodeRow("fingerprint", s, performance.now() - t, cpu));
}
{
  const s = await stages("rle_encode", (enc, input, n) => {
    rk.record(enc, { pages: input, scratch, sizes }, n, PAGE_SIZE);
    ck.record(enc, { scratch, sizes, offsets, out }, n, PAGE_SIZE);
    return { result: sizes, bytes: per };
  }, pages);
  const gpuMs = await pipelined(["zero", "rle"], pages);
  const cpu = cpuChain(["zero", "rle"], pages);
  rows.push(encodeRow("rle_encode (zero→rle)", s, gpuMs, cpu));
}
{
  const s = await stages("delta_encode", (enc, input, n) => {
    dk.record(
      enc,
      { pages: input, olds: olds0, hasOld, scratch, sizes },
      n,
      PAGE_SIZE,
    );
    ck.record(enc, { scratch, sizes, offsets, out }, n, PAGE_SIZE);
    return { result: sizes, bytes: per };
  }, news);
  const gpuMs = await pipelined(["zero", "delta"], news, olds);
  const cpu = cpuChain(["zero", "delta"], news, olds);
  rows.push(encodeRow("delta_encode (zero→delta)", s, gpuMs, cpu));
}
// Receiver: decode the rle pages (the zero-filled and colour pages of the
// image) and the delta pages of every other page changed.
rows.push(await decodeRow("rle", pages));
rows.push(await decodeRow("delta", news, olds));
// The receiver's decode Worker, end to end.
rows.push(await receiverRow(["zero", "rle"], pages));
await vm.close();

const head = [
  "kernel",
  "upload GB/s",
  "kernel GB/s",
  "readback GB/s",
  "GPU end-to-end GB/s",
  "CPU GB/s",
];
const body = rows.map((r) => [
  r.kernel,
  ...[r.uploadGBs, r.kernelGBs, r.readbackGBs, r.gpuEncodeGBs, r.cpuGBs].map((
    v,
  ) => v ? v.toFixed(3) : "-"),
]);
const widths = head.map((h, i) =>
  Math.max(h.length, ...body.map((b) => b[i].length))
);
const line = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
    .join("  ");
console.log(
  `adapter: ${gpu!.adapterInfo.description}${
    gpu!.fallbackReason ? ` (${gpu!.fallbackReason})` : ""
  }`,
);
console.log(
  `memory: ${
    memoryBytes / 1048576
  } MiB memcached sim, batch ${batch} pages; GB/s = 1e9 page bytes per second`,
);
console.log(line(head));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const b of body) console.log(line(b));
await Deno.mkdir("out", { recursive: true });
await Deno.writeTextFile(
  "out/bench-gpu.json",
  JSON.stringify(
    {
      adapter: gpu!.adapterInfo,
      fallbackReason: gpu!.fallbackReason ?? null,
      memoryBytes,
      batch,
      rows,
    },
    null,
    2,
  ) + "\n",
);
console.log("wrote out/bench-gpu.json");
device.destroy();
