/**
 * The receiver's GPU decode (`receiveMigration({ gpu })`): migrations end
 * bit-exact with the rle and delta sections decoded on the GPU, a
 * malformed section fails with the CPU's own CodecError and writes
 * nothing, and `prefer: "cpu"` decodes no page there. On a machine without
 * any WebGPU adapter the GPU tests skip (lavapipe counts as one).
 */
import assert from "node:assert/strict";
import {
  codec,
  type CodecChooser,
  compile,
  MiB,
  policy,
  when,
} from "../dsl/mod.ts";
import {
  assertBitExact,
  loopbackMigration,
  withDeadline,
} from "./_precopy_testing.ts";
import { gpu as testGpu, hasAdapter } from "./gpu/_testing.ts";
import { CodecError } from "./errors.ts";
import { rle } from "./codecs/rle.ts";
import { zero } from "./codecs/zero.ts";
import { raw } from "./codecs/raw.ts";
import type { MigrationReport } from "./report.ts";
import { SimVm } from "./sim/mod.ts";
import { encodeBatchPayload } from "./wire/batch.ts";
import { DecoderPool } from "./pipeline/decoder_pool.ts";
import type { DecodeGpu } from "./pipeline/_messages.ts";
import { decodeGpuOf } from "./session/receive_gpu.ts";
import { GpuError } from "./gpu/device.ts";
import { receiveMigration } from "./receiver.ts";
import { memoryDuplex } from "./wire/mod.ts";

const PS = 4096;
const NO_ADAPTER = !hasAdapter;

/** Pages the source's codec mix put in rle and delta sections, all rounds. */
function gpuCodecPages(report: MigrationReport): number {
  let n = 0;
  for (const r of report.rounds) {
    n += (r.codecMix["rle"] ?? 0) + (r.codecMix["delta"] ?? 0);
  }
  return n;
}

/**
 * A migration of a running `postgres` VM (8 MiB) over `chain`: the guest
 * writes for 20 ms before each round from round 1 on (as precopy_test's
 * chain tests), so later rounds resend pages delta can claim.
 */
async function migrateWith(
  chain: CodecChooser,
  receiverGpu: { prefer: "gpu" | "cpu" | "auto" },
  rounds = 3,
) {
  const vm = await SimVm.create({
    memoryBytes: MiB(8),
    workload: "postgres",
    seed: 11,
    dirtyRate: 0,
  });
  const wait = new Int32Array(new SharedArrayBuffer(4));
  const plan = compile(
    policy("gpu-receive").codec((s) => {
      if (s.round >= 1) vm.setDirtyRate(32000);
      Atomics.wait(wait, 0, 0, 20);
      return chain(s);
    }).switchover(when.rounds(rounds)).bandwidth(MiB(64)).channels(2),
  );
  try {
    const result = await loopbackMigration(vm, plan, { receiverGpu });
    return assertBitExact({
      ...result,
      vm,
      [Symbol.asyncDispose]: () => vm.close(),
    });
  } finally {
    await vm.close();
  }
}

Deno.test({
  name:
    "receiver GPU decode: a sim migration over [zero, rle, raw] ends bit-exact, every rle page decoded on the GPU",
  ignore: NO_ADAPTER,
  fn: async () => {
    const { report, received } = await migrateWith(
      () => [codec.zero(), codec.rle(), codec.raw()],
      { prefer: "gpu" },
    );
    const rlePages = gpuCodecPages(report);
    assert.ok(rlePages > 0, "the source sent no rle page");
    assert.equal(received.gpu.used, true, received.gpu.note);
    assert.equal(received.gpu.pagesDecoded, rlePages);
    assert.ok(received.gpu.adapter);
  },
});

Deno.test({
  name:
    "receiver GPU decode: a sim migration over [zero, delta, raw] (delta against the destination's pages from round 2) ends bit-exact, every delta page decoded on the GPU",
  ignore: NO_ADAPTER,
  fn: async () => {
    const { report, received } = await migrateWith(
      () => [codec.zero(), codec.delta(), codec.raw()],
      { prefer: "gpu" },
      5,
    );
    const deltaPages = report.rounds.reduce(
      (n, r) => n + (r.codecMix["delta"] ?? 0),
      0,
    );
    assert.ok(
      deltaPages > 0,
      `delta claimed no page: ${
        JSON.stringify(report.rounds.map((r) => r.codecMix))
      }`,
    );
    assert.equal(received.gpu.pagesDecoded, deltaPages, received.gpu.note);
  },
});

Deno.test('receiver GPU decode: prefer "cpu" (the default) decodes no page on the GPU', async () => {
  const { report, received } = await migrateWith(
    () => [codec.zero(), codec.rle(), codec.raw()],
    { prefer: "cpu" },
  );
  assert.ok(gpuCodecPages(report) > 0);
  assert.equal(received.gpu.used, false);
  assert.equal(received.gpu.pagesDecoded, 0);
  assert.match(received.gpu.note, /decodes on the CPU/);
});

Deno.test({
  name:
    'receiver GPU decode: prefer "auto" declines a software adapter and decodes on the CPU, saying why',
  ignore: !testGpu?.adapterInfo.isFallbackAdapter,
  fn: async () => {
    const { received } = await migrateWith(
      () => [codec.zero(), codec.rle(), codec.raw()],
      { prefer: "auto" },
    );
    assert.equal(received.gpu.pagesDecoded, 0);
    assert.match(received.gpu.note, /not used: only a software adapter/);
  },
});

/** A one-channel pool over shared memory pre-filled with 0xee, with [zero, rle] announced. */
function poolOf(gpu: DecodeGpu | undefined, pages: number) {
  const memory = new SharedArrayBuffer(pages * PS);
  new Uint8Array(memory).fill(0xee);
  const touched = new SharedArrayBuffer(pages);
  new Uint8Array(touched).fill(1);
  const pool = DecoderPool.start({
    channels: 1,
    pageSize: PS,
    pageCount: pages,
    codecs: [raw, zero, rle].map((c) => ({ id: c.id, name: c.name })),
    memory,
    touched,
    gpu,
  });
  for (const c of [zero, rle]) {
    pool.codec(0, { id: c.id, name: c.name, options: {} }, 0);
  }
  return { pool, memory: new Uint8Array(memory) };
}

/** One BATCH payload: page 0 zero, pages 1.. rle with the given bodies. */
function rleBatch(bodies: readonly Uint8Array[]): Uint8Array {
  const lengths = new Uint8Array(4 * bodies.length);
  const v = new DataView(lengths.buffer);
  bodies.forEach((b, k) => v.setUint32(4 * k, b.length, true));
  const section = new Uint8Array(
    lengths.length + bodies.reduce((n, b) => n + b.length, 0),
  );
  section.set(lengths);
  let at = lengths.length;
  for (const b of bodies) {
    section.set(b, at);
    at += b.length;
  }
  const pfns = Array.from({ length: bodies.length + 1 }, (_, i) => i);
  const out = new Uint8Array(section.length + 1024);
  const n = encodeBatchPayload({
    count: pfns.length,
    pfns,
    sectionOf: pfns.map((p) => p === 0 ? 0 : 1),
    sections: [
      { codecId: zero.id, bytes: new Uint8Array(0) },
      { codecId: rle.id, bytes: section },
    ],
  }, out);
  return out.slice(0, n);
}

/** The error a pool's sync rejects with after `payload`, and the memory after it. */
async function decodeOn(
  gpu: DecodeGpu | undefined,
  payload: Uint8Array,
): Promise<{ error: unknown; memory: Uint8Array; gpuPages: number }> {
  const { pool, memory } = poolOf(gpu, 8);
  try {
    await pool.batch(0, 0, payload.slice(), 0);
    const error = await pool.sync().then(() => null, (e) => e);
    return { error, memory, gpuPages: pool.gpuPages };
  } finally {
    pool.close();
  }
}

// One run of 1024 words of 0xabababab: a whole valid page.
const FILL_AB = new Uint8Array([0, 4, 0, 0, 0xab, 0xab, 0xab, 0xab]);

Deno.test({
  name:
    "receiver GPU decode: a valid rle batch decodes on the GPU as on the CPU",
  ignore: NO_ADAPTER,
  fn: async () => {
    const payload = rleBatch([FILL_AB, FILL_AB]);
    const onGpu = await decodeOn(decodeGpuOf({ prefer: "gpu" }), payload);
    const onCpu = await decodeOn(undefined, payload);
    assert.equal(onGpu.error, null);
    assert.equal(onGpu.gpuPages, 2);
    assert.equal(onCpu.gpuPages, 0);
    assert.deepEqual(onGpu.memory, onCpu.memory);
    assert.deepEqual(
      onGpu.memory.subarray(PS, 3 * PS),
      new Uint8Array(2 * PS).fill(0xab),
    );
    assert.deepEqual(onGpu.memory.subarray(0, PS), new Uint8Array(PS));
  },
});

const MALFORMED: readonly [string, Uint8Array][] = [
  ["a body that is not whole words", new Uint8Array([0, 4, 0, 0, 0xab])],
  ["a run past the page", new Uint8Array([0, 8, 0, 0, 0xab, 0xab, 0xab, 0xab])],
  [
    "tokens that cover too little",
    new Uint8Array([0, 2, 0, 0, 0xab, 0xab, 0xab, 0xab]),
  ],
];

for (const [what, bad] of MALFORMED) {
  Deno.test({
    name:
      `receiver GPU decode: a malformed rle section (${what}) fails with the CPU's CodecError and writes no page`,
    ignore: NO_ADAPTER,
    fn: async () => {
      // The valid page before the bad one decodes fine; the batch still
      // writes nothing, not even its zero page.
      const payload = rleBatch([FILL_AB, bad]);
      const onGpu = await decodeOn(decodeGpuOf({ prefer: "gpu" }), payload);
      const onCpu = await decodeOn(undefined, payload);
      assert.ok(onCpu.error instanceof CodecError, String(onCpu.error));
      assert.ok(onGpu.error instanceof CodecError, String(onGpu.error));
      assert.equal(onGpu.error.message, onCpu.error.message);
      assert.equal(onGpu.error.codec, "rle");
      assert.deepEqual(onGpu.memory, new Uint8Array(8 * PS).fill(0xee));
    },
  });
}

Deno.test("receiver GPU decode: bad settings reject with a GpuError before the session, and the connection closes", async () => {
  const [source, destination] = memoryDuplex();
  await assert.rejects(
    receiveMigration(destination, {
      createSink: () => assert.fail("no sink before HELLO"),
      gpu: { prefer: "sometimes" as "gpu" },
    }),
    (e) =>
      e instanceof GpuError &&
      e.message ===
        'Unknown receiver GPU preference "sometimes": expected auto, gpu or cpu',
  );
  // The source's end reads the end of the stream (the destination aborted
  // its writable): no read waits forever.
  const ended = await withDeadline(
    source.readable.getReader().read().then((r) => r.done, () => true),
    "the end of the destination's stream",
    10_000,
  );
  assert.equal(ended, true);
});
