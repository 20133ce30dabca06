import assert from "node:assert/strict";
import {
  codec,
  type CodecChainInput,
  type CodecChooser,
  compile,
  MiB,
  type Policy,
  policy,
  when,
} from "../dsl/mod.ts";
import {
  assertBitExact,
  assertClaims,
  assertMigrationError,
  type ClaimWindow,
  loopbackMigration,
  migrateSimVm,
  type SimMigration,
  verifiedReport,
} from "./_precopy_testing.ts";
import { hasAdapter } from "./gpu/_testing.ts";
import { mergeSortedUnique } from "./precopy.ts";
import { SimVm, workloadNames } from "./sim/mod.ts";
import type { CodecSpec } from "./plan.ts";

const zeroRaw = [codec.zero(), codec.raw()];
const zeroRle = [codec.zero(), codec.rle()];

for (const workload of workloadNames()) {
  Deno.test(`migration of a running "${workload}" VM ends bit-exact`, async () => {
    await using run = await migrateSimVm(
      { memoryBytes: MiB(16), workload, seed: 7 },
      compile(
        policy(`test-${workload}`)
          .codec(zeroRaw)
          // Three live rounds over a slow link, so the guest dirties pages in every round.
          .switchover(when.rounds(3))
          .bandwidth(MiB(64)),
      ),
    );
    // The VM is paused after a verified migration: both memories must be equal byte for byte.
    const { report, received } = assertBitExact(run);
    assert.equal(received.verified, true);
    assert.equal(
      report.rounds.length,
      4,
      "expected three live rounds and the stop-and-copy round",
    );
    assert.equal(received.rounds, 4, "the receiver counts the same rounds");
    if (workload !== "idle") {
      assert.ok(
        report.rounds.slice(1).some((r) => r.pagesSent > 0),
        "the guest dirtied no page during the migration",
      );
    }
    assert.equal(
      report.rounds[0].pagesSent,
      run.vm.pageCount,
      "round 0 sends every page",
    );
    assert.equal(report.rounds.at(-1)?.final, true);
    assert.ok(
      report.downtimeMs > 0 && report.downtimeMs <= report.totalTimeMs,
    );
    assert.equal(report.rawBytes, report.pagesSent * 4096);
  });
}

Deno.test("zero pages cost no payload: an idle VM's wire bytes are a fraction of its memory", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(16), workload: "zero", seed: 1, dirtyRate: 0 },
    compile(policy("zero").codec(zeroRaw).switchover(when.rounds(1))),
  );
  const report = verifiedReport(run);
  assert.ok(
    report.wireBytes < report.rawBytes / 4,
    `wire ${report.wireBytes} vs raw ${report.rawBytes}`,
  );
  assert.ok((report.rounds[0].codecMix.zero ?? 0) > 0);
});

Deno.test("a plan's switchover condition ends the live rounds", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "lmbench", seed: 3, dirtyRate: 2000 },
    compile(policy("three-rounds").codec(zeroRaw).switchover(when.rounds(3))),
  );
  const report = verifiedReport(run);
  const live = report.rounds.filter((r) => !r.final);
  assert.equal(live.length, 3);
  assert.equal(live.at(-1)?.decision, "switchover");
  assert.ok(live.slice(0, -1).every((r) => r.decision === "continue"));
});

Deno.test("a plan that aborts leaves the source running and the receiver unverified", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "random", seed: 3 },
    compile(
      policy("abort").codec(zeroRaw).decide((s) =>
        s.round >= 1 ? "abort" : "continue"
      ),
    ),
  );
  const { report, received, sink, vm } = run;
  assertMigrationError(report, /aborted by policy "abort"/);
  if (!(received instanceof Error)) {
    assert.equal(received.verified, false);
    assert.equal(received.aborted, true);
  }
  assert.equal(sink?.state, "discarded");
  // The source VM still runs: its workload keeps writing.
  const before = vm.pagesWritten;
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(
    vm.pagesWritten > before,
    "source VM stopped writing after an abort",
  );
});

Deno.test("the low-level decide form drives rounds like libxenguest's precopy_policy", async () => {
  const seen: number[] = [];
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "partial", seed: 5 },
    compile(
      policy("low")
        .codec(zeroRaw)
        .decide((s) => {
          seen.push(s.round);
          return s.round >= 2 ? "switchover" : "continue";
        }),
    ),
  );
  verifiedReport(run);
  assert.deepEqual(seen, [0, 1, 2]);
});

Deno.test("a user abort through the signal stops the migration and resumes nothing lost", async () => {
  await using vm = await SimVm.create({
    memoryBytes: MiB(64),
    workload: "memcached",
    seed: 2,
  });
  const plan = compile(
    policy("slow").codec(zeroRaw).switchover(when.rounds(50)).bandwidth(
      8 * 2 ** 20,
    ),
  );
  // The abort timer starts once the VM runs, so it fires during a live round.
  const controller = new AbortController();
  setTimeout(() => controller.abort("test abort"), 150);
  const { report, received, sink } = await loopbackMigration(vm, plan, {
    signal: controller.signal,
  });
  assertMigrationError(report, /test abort/);
  if (!(received instanceof Error)) assert.equal(received.verified, false);
  assert.equal(sink?.state, "discarded");
});

Deno.test("a receiver that refuses the VM fails the migration with its reason", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "idle", seed: 1 },
    compile(policy("p").codec(zeroRaw).switchover(when.rounds(1))),
    { maxMemoryBytes: MiB(4) },
  );
  assertMigrationError(run.report, /refused/);
  assert.ok(run.received instanceof Error);
});

Deno.test("mergeSortedUnique unions two ascending pfn lists without duplicates", () => {
  const a = new Uint32Array(10);
  a.set([1, 4, 6]);
  const n = mergeSortedUnique(a, 3, new Uint32Array([0, 4, 5, 9]), 4);
  assert.deepEqual([...a.subarray(0, n)], [0, 1, 4, 5, 6, 9]);
  assert.equal(mergeSortedUnique(a, n, new Uint32Array(0), 0), n);
  const empty = new Uint32Array(4);
  assert.equal(mergeSortedUnique(empty, 0, new Uint32Array([2, 3]), 2), 2);
  assert.deepEqual([...empty.subarray(0, 2)], [2, 3]);
});

/**
 * A codec chain the engine must carry bit-exact while the guest writes (per
 * round: a fixed chain or a function), and the rounds in which each codec it
 * names must claim pages on both chain workloads. `delta` remembers a page
 * only from its second send on, so it can first claim a page on its third
 * send: two rounds after the round it joins the chain.
 */
interface ChainCase {
  readonly name: string;
  readonly chain: CodecChainInput | CodecChooser;
  readonly claims: Readonly<Record<string, ClaimWindow>>;
}

const CHAINS: readonly ChainCase[] = [
  { name: "rle", chain: [codec.rle()], claims: { rle: { from: 0 } } },
  {
    name: "delta after round 0",
    chain: (s) =>
      s.round === 0
        ? [codec.zero(), codec.raw()]
        : [codec.zero(), codec.delta(), codec.raw()],
    // delta joins in round 1: it sees a page's first send there at the earliest.
    claims: { zero: { from: 0 }, delta: { from: 3 } },
  },
  { name: "dedup", chain: [codec.dedup()], claims: { dedup: { from: 0 } } },
  {
    name: "dedup with 1 KiB chunks",
    chain: [codec.zero(), codec.dedup({ chunkBytes: 1024 })],
    claims: { zero: { from: 0 }, dedup: { from: 0 } },
  },
  { name: "lz4", chain: [codec.lz4()], claims: { lz4: { from: 0 } } },
  {
    name: "zstd",
    chain: [codec.zstd({ level: 3 })],
    claims: { zstd: { from: 0 } },
  },
  {
    name: "zero → dedup → delta → lz4",
    chain: [codec.zero(), codec.dedup(), codec.delta(), codec.lz4()],
    claims: {
      zero: { from: 0 },
      dedup: { from: 0 },
      delta: { from: 2 },
      lz4: { from: 0 },
    },
  },
  {
    name: "zero → rle → zstd",
    chain: [codec.zero(), codec.rle(), codec.zstd()],
    claims: { zero: { from: 0 }, rle: { from: 0 }, zstd: { from: 0 } },
  },
  {
    name: "dedup in round 0, delta later",
    // 2 KiB chunks: the guest rewrites a tuple in most heap blocks before
    // round 0 reads them, and a whole-page copy in the page cache then no
    // longer matches; the untouched half of the page still does.
    chain: (s) =>
      s.round === 0
        ? [codec.zero(), codec.dedup({ chunkBytes: 2048 })]
        : [codec.zero(), codec.delta({ cacheBytes: MiB(4) }), codec.lz4()],
    claims: {
      zero: { from: 0 },
      dedup: { from: 0, to: 0 },
      delta: { from: 3 },
      lz4: { from: 1 },
    },
  },
];

/** The VM of the chain tests, less its workload: small, and written fast. */
const CHAIN_VM = { memoryBytes: MiB(8), seed: 11, dirtyRate: 32000 } as const;

/** How long each round of a chain test waits for the guest before it sends. */
const GUEST_MS = 20;

/**
 * `chain` as a chooser that first blocks this thread for {@link GUEST_MS}
 * while the guest's worker keeps writing. Every round then leaves the guest
 * time to rewrite its hot set (memcached's slabs, postgres's heap blocks and
 * WAL), however short the round and however busy the machine, so the same
 * pages go out round after round and delta gets its third sends; without
 * it, a round that compresses well can end before the guest writes a page,
 * and every later round is empty.
 */
function withGuestTime(
  chain: CodecChainInput | CodecChooser,
  guest?: GuestControl,
): CodecChooser {
  const wait = new Int32Array(new SharedArrayBuffer(4));
  return (s) => {
    if (s.round <= 1) guest?.write(true);
    Atomics.wait(wait, 0, 0, GUEST_MS);
    if (s.round === 0) guest?.write(false);
    return typeof chain === "function" ? chain(s) : chain;
  };
}

/** Starts and stops a chain test's guest writing. */
interface GuestControl {
  write(on: boolean): void;
}

/**
 * The live plan the chain tests run: five live rounds over a 64 MiB/s link,
 * each giving the guest time to write, on one channel: each channel keeps
 * its own dedup store and delta cache, so a duplicate is found only on its
 * own channel, and these tests pin each codec's exact claims; the channel
 * matrix below runs chains on 1, 2 and 4 channels.
 */
function chainPolicy(
  name: string,
  chain: CodecChainInput | CodecChooser,
  guest?: GuestControl,
): Policy {
  return policy(name).codec(withGuestTime(chain, guest))
    .switchover(when.rounds(5)).bandwidth(MiB(64)).channels(1);
}

/**
 * Runs a chain test's migration of a {@link CHAIN_VM} whose guest writes
 * only for the {@link GUEST_MS} before round 0 reads memory, not while the
 * channel Workers start nor while round 0 runs, then from round 1 on: what
 * round 0 reads (postgres's page-cache copies still matching their heap
 * blocks, in part) no longer depends on how busy the machine is. A guest
 * writing all along had, under the parallel suite, sometimes rewritten every
 * block before round 0 reached it, and dedup found nothing to claim.
 */
async function chainMigration(
  workload: string,
  name: string,
  chain: CodecChainInput | CodecChooser,
  adjust: (p: Policy) => Policy = (p) => p,
): Promise<SimMigration> {
  const vm = await SimVm.create({ ...CHAIN_VM, workload, dirtyRate: 0 });
  try {
    const plan = compile(adjust(chainPolicy(
      name,
      chain,
      { write: (on) => vm.setDirtyRate(on ? CHAIN_VM.dirtyRate : 0) },
    )));
    const result = await loopbackMigration(vm, plan);
    return { ...result, vm, [Symbol.asyncDispose]: () => vm.close() };
  } catch (e) {
    await vm.close();
    throw e;
  }
}

for (const { name, chain, claims } of CHAINS) {
  // Both workloads give every codec of every chain pages to claim: zero
  // pages, duplicate pages (memcached's page cache and popular values,
  // postgres's double-buffered blocks), runs and compressible structure
  // (slab items, heap blocks), and a hot set rewritten in small pieces.
  for (const workload of ["memcached", "postgres"]) {
    Deno.test(`codec chain "${name}" migrates a running "${workload}" VM bit-exact, each codec claiming pages`, async () => {
      await using run = await chainMigration(workload, `chain-${name}`, chain);
      const { report } = assertBitExact(run);
      assert.equal(report.rounds.length, 6, "five live rounds and the final");
      assert.ok(
        report.rounds.slice(1, -1).some((r) => r.pagesSent > 0),
        "the guest dirtied nothing",
      );
      assertClaims(report, claims);
    });
  }
}

/** Chains of the channel matrix: each codec, and the stateful ones together. */
const MATRIX_CHAINS: readonly (readonly CodecSpec[])[] = [
  [codec.zero(), codec.dedup(), codec.delta(), codec.lz4()],
  [codec.zero(), codec.rle(), codec.zstd()],
  [codec.delta(), codec.dedup({ chunkBytes: 1024 }), codec.raw()],
  [codec.zero(), codec.zstd({ level: 3 })],
];

// Every workload, on 1, 2 and 4 channels, each with one of the chains in
// turn (so every chain meets every channel count on two workloads), while
// the workload writes: bit-exact, and every page claimed by a codec of the
// chain. A pfn always takes the same channel, so its versions arrive in
// order; stateful codecs keep their state per channel.
for (const [w, workload] of workloadNames().entries()) {
  for (const channels of [1, 2, 4]) {
    const chain = MATRIX_CHAINS[(w + channels) % MATRIX_CHAINS.length];
    const names = chain.map((c) => c.name).join(" → ");
    Deno.test(`"${workload}" migrates bit-exact on ${channels} channel(s) with ${names} while it writes`, async () => {
      await using run = await migrateSimVm(
        { memoryBytes: MiB(8), workload, seed: 5 + w, dirtyRate: 8000 },
        compile(
          policy(`matrix-${channels}`).codec(withGuestTime(chain))
            .switchover(when.rounds(3)).bandwidth(MiB(64)).channels(channels)
            .batchPages(64),
        ),
      );
      const { report } = assertBitExact(run);
      assert.equal(report.channels, channels);
      const allowed = new Set([...names.split(" → "), "raw"]);
      for (const r of report.rounds) {
        for (const name of Object.keys(r.codecMix)) {
          assert.ok(allowed.has(name), `${name} is not in ${names}`);
        }
        const sum = Object.values(r.codecMix).reduce((a, b) => a + b, 0);
        assert.equal(sum, r.pagesSent, `round ${r.round}'s codec mix`);
      }
    });
  }
}

Deno.test("dedup and delta claim pages on every channel of a 2-channel migration and stay exact", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(16), workload: "memcached", seed: 11, dirtyRate: 8000 },
    compile(
      policy("both-stateful").codec(
        withGuestTime([
          codec.zero(),
          codec.delta(),
          codec.dedup(),
          codec.raw(),
        ]),
      ).switchover(when.rounds(4)).bandwidth(MiB(64)).channels(2),
    ),
  );
  const { report } = assertBitExact(run);
  const perChannel = [0, 1].map((c) => {
    const mix: Record<string, number> = {};
    for (const r of report.rounds) {
      assert.equal(r.channels?.length, 2);
      for (const [name, n] of Object.entries(r.channels![c].codecMix)) {
        mix[name] = (mix[name] ?? 0) + n;
      }
    }
    return mix;
  });
  for (const [c, mix] of perChannel.entries()) {
    assert.ok((mix.dedup ?? 0) > 0, `channel ${c}: ${JSON.stringify(mix)}`);
    assert.ok((mix.delta ?? 0) > 0, `channel ${c}: ${JSON.stringify(mix)}`);
  }
  // the channels' shares add up to the round's
  for (const r of report.rounds) {
    assert.equal(r.channels!.reduce((n, c) => n + c.pages, 0), r.pagesSent);
  }
});

for (const channel of [0, 1]) {
  Deno.test(`a channel Worker killed mid-round (channel ${channel} of 2) fails the migration cleanly: the source runs on, the receiver discards`, async () => {
    let killed = -1;
    let kill: ((c: number) => void) | null = null;
    await using run = await migrateSimVm(
      { memoryBytes: MiB(16), workload: "random", seed: 2 },
      compile(
        policy("kill").codec([codec.zero(), codec.lz4()])
          .switchover(when.rounds(3)).bandwidth(MiB(16)).channels(2),
      ),
      {
        onChannels: (c) => {
          assert.equal(c.count, 2);
          kill = c.kill;
        },
        onProgress: (p) => {
          // some pages of round 0 are out, most are not
          if (killed < 0 && p.round === 0 && p.pagesDone > 0) {
            killed = p.pagesDone;
            kill!(channel);
          }
        },
      },
    );
    assert.ok(killed > 0 && killed < 4096, `killed after ${killed} pages`);
    assertMigrationError(
      run.report,
      new RegExp(`Channel ${channel} encoder stopped: it was killed`),
    );
    assert.equal(run.vm.paused, false, "the source VM runs on");
    // the source told the receiver (ABORT), which gave the memory up
    assert.ok(
      !(run.received instanceof Error) && run.received.aborted &&
        !run.received.verified,
      `the receiver aborted: ${JSON.stringify(run.received)}`,
    );
    assert.equal(run.sink?.state, "discarded");
  });
}

Deno.test("a compressing chain puts fewer bytes on the wire than raw, and than zero → raw, for memcached memory", async () => {
  const wire: Record<string, number> = {};
  const mix: Record<string, Readonly<Record<string, number>>> = {};
  for (
    const [name, chain] of [
      ["raw", [codec.raw()]],
      ["zero → raw", [codec.zero(), codec.raw()]],
      ["zero → dedup → lz4", [codec.zero(), codec.dedup(), codec.lz4()]],
    ] as const
  ) {
    await using run = await migrateSimVm(
      { memoryBytes: MiB(16), workload: "memcached", seed: 3, dirtyRate: 0 },
      compile(policy(name).codec(chain).switchover(when.rounds(1))),
    );
    const report = verifiedReport(run);
    wire[name] = report.wireBytes;
    mix[name] = report.rounds[0].codecMix;
  }
  const seen = JSON.stringify({ wire, mix });
  // Here: raw 16.8 MB, zero → raw 2.18 MB (88% zero pages), and
  // zero → dedup → lz4 1.59 MB, with dedup claiming 106 pages, lz4 245.
  assert.ok(wire["zero → dedup → lz4"] * 5 < wire.raw, seen);
  assert.ok(wire["zero → dedup → lz4"] < wire["zero → raw"] * 0.8, seen);
  assert.ok((mix["zero → dedup → lz4"].dedup ?? 0) > 0, seen);
  assert.ok((mix["zero → dedup → lz4"].lz4 ?? 0) > 0, seen);
});

Deno.test("a chain that changes a codec's options mid-migration fails clearly and the source keeps running", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "random", seed: 1 },
    compile(
      policy("flip")
        .codec((s) => [codec.zstd({ level: s.round === 0 ? 1 : 5 })])
        .switchover(when.rounds(3)),
    ),
  );
  assertMigrationError(
    run.report,
    /Cannot change the options of codec "zstd" during a migration/,
  );
  assert.equal(run.sink?.state, "discarded");
  assert.equal(run.vm.paused, false);
});

const GPU_CHAINS: readonly ChainCase[] = [
  {
    name: "zero → rle",
    chain: [codec.zero(), codec.rle()],
    claims: { zero: { from: 0 }, rle: { from: 0 } },
  },
  {
    name: "zero → delta",
    chain: [codec.zero(), codec.delta()],
    claims: { zero: { from: 0 }, delta: { from: 2 } },
  },
];

for (const { name, chain, claims } of GPU_CHAINS) {
  Deno.test({
    name:
      `GPU codec chain "${name}" migrates a running VM bit-exact, each codec claiming pages (WebGPU, prefer: "gpu")`,
    ignore: !hasAdapter,
    fn: async () => {
      await using run = await chainMigration(
        "postgres",
        `gpu-${name}`,
        chain,
        (p) => p.gpu({ prefer: "gpu", batch: 512 }),
      );
      const { report } = assertBitExact(run);
      assert.equal(report.gpu.used, true, report.gpu.note);
      assert.equal(report.gpu.pagesEncoded, report.pagesSent);
      assertClaims(report, claims);
    },
  });
}

Deno.test('prefer: "gpu" without an adapter falls back to the CPU and the report says so', async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(4), workload: "memcached", seed: 1 },
    compile(
      policy("gpu-none").codec(zeroRle).switchover(when.rounds(2))
        .gpu({ prefer: "gpu" }),
    ),
    { gpu: null },
  );
  const report = verifiedReport(run);
  assert.equal(report.gpu.used, false);
  assert.match(
    report.gpu.note,
    /not used: this runtime has no navigator.gpu/,
  );
});

Deno.test("require: true without an adapter fails clearly and leaves the source running", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(4), workload: "random", seed: 1 },
    compile(
      policy("gpu-required").codec(zeroRle).switchover(when.rounds(2))
        .gpu({ prefer: "gpu", require: true }),
    ),
    { gpu: null },
  );
  const { report, sink, vm } = run;
  assert.ok(report instanceof Error, "the migration should fail");
  assert.match(report.message, /No WebGPU adapter/);
  assert.equal(sink?.state ?? "discarded", "discarded");
  assert.equal(vm.paused, false);
});

Deno.test("a codec that spends bytes on zero pages (rle alone) leaves the destination's untouched memory unwritten: only non-zero pages are marked touched", async () => {
  await using run = await migrateSimVm(
    { memoryBytes: MiB(8), workload: "zero", seed: 2 },
    compile(
      policy("rle-only").codec([codec.rle()]).switchover(when.rounds(1))
        .channels(2),
    ),
  );
  const { report, sink } = assertBitExact(run);
  assert.ok(
    (report.rounds[0].codecMix.rle ?? 0) > 1000,
    "rle sent the zero pages",
  );
  const touched = new Uint8Array(sink.shared!.touched);
  let nonZero = 0;
  for (let p = 0; p < sink.pageCount; p++) {
    const page = run.vm.memory.subarray(p * 4096, (p + 1) * 4096);
    const isNonZero = page.some((b) => b !== 0);
    if (isNonZero) nonZero++;
    assert.equal(touched[p], isNonZero ? 1 : 0, `page ${p}`);
  }
  assert.ok(
    nonZero > 0 && nonZero < sink.pageCount / 4,
    `${nonZero} non-zero pages`,
  );
});
