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
  assertMigrationError,
  loopbackMigration,
  migrateSimVm,
  verifiedReport,
} from "./_precopy_testing.ts";
import { mergeSortedUnique } from "./precopy.ts";
import { SimVm, workloadNames } from "./sim/mod.ts";

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

/** Codec chains the engine must carry bit-exact while the guest writes (per round: a fixed chain or a function). */
const CHAINS: [string, CodecChainInput | CodecChooser][] = [
  ["rle", [codec.rle()]],
  [
    "delta after round 0",
    (
      s,
    ) => (s.round === 0
      ? [codec.zero(), codec.raw()]
      : [codec.zero(), codec.delta(), codec.raw()]),
  ],
  ["dedup", [codec.dedup()]],
  ["dedup with 1 KiB chunks", [
    codec.zero(),
    codec.dedup({ chunkBytes: 1024 }),
  ]],
  ["lz4", [codec.lz4()]],
  ["zstd", [codec.zstd({ level: 3 })]],
  ["zero → dedup → delta → lz4", [
    codec.zero(),
    codec.dedup(),
    codec.delta(),
    codec.lz4(),
  ]],
  ["zero → rle → zstd", [codec.zero(), codec.rle(), codec.zstd()]],
  [
    "dedup in round 0, delta later",
    (s) =>
      s.round === 0
        ? [codec.zero(), codec.dedup()]
        : [codec.zero(), codec.delta({ cacheBytes: MiB(4) }), codec.lz4()],
  ],
];

/** The live plan both chain families run: four rounds over a 64 MiB/s link, so the guest dirties pages. */
function chainPolicy(
  name: string,
  chain: CodecChainInput | CodecChooser,
): Policy {
  return policy(name).codec(chain).switchover(when.rounds(4))
    .bandwidth(MiB(64));
}

for (const [name, chain] of CHAINS) {
  for (const workload of ["memcached", "postgres"]) {
    Deno.test(`codec chain "${name}" migrates a running "${workload}" VM bit-exact`, async () => {
      await using run = await migrateSimVm(
        { memoryBytes: MiB(16), workload, seed: 11, dirtyRate: 4000 },
        compile(chainPolicy(`chain-${name}`, chain)),
      );
      const { report } = assertBitExact(run);
      // Every codec the chain names claimed pages somewhere, or was at least offered them.
      const used = new Set(
        report.rounds.flatMap((r) => Object.keys(r.codecMix)),
      );
      assert.ok(used.size >= 1);
      assert.ok(
        report.rounds.slice(1, -1).some((r) => r.pagesSent > 0),
        "the guest dirtied nothing",
      );
    });
  }
}

Deno.test("compressing chains put fewer bytes on the wire than raw for memcached memory", async () => {
  const wire: Record<string, number> = {};
  for (
    const [name, chain] of [["raw", [codec.raw()]], ["zero → dedup → lz4", [
      codec.zero(),
      codec.dedup(),
      codec.lz4(),
    ]]] as const
  ) {
    await using run = await migrateSimVm(
      { memoryBytes: MiB(16), workload: "memcached", seed: 3, dirtyRate: 0 },
      compile(policy(name).codec(chain).switchover(when.rounds(1))),
    );
    wire[name] = verifiedReport(run).wireBytes;
  }
  assert.ok(wire["zero → dedup → lz4"] * 5 < wire.raw, JSON.stringify(wire));
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

const hasAdapter = await (async () => {
  try {
    return (await navigator.gpu?.requestAdapter()) != null;
  } catch {
    return false;
  }
})();

for (
  const [name, chain] of [
    ["zero → rle", [codec.zero(), codec.rle()]],
    ["zero → delta", [codec.zero(), codec.delta()]],
  ] as const
) {
  Deno.test({
    name:
      `GPU codec chain "${name}" migrates a running VM bit-exact (WebGPU, prefer: "gpu")`,
    ignore: !hasAdapter,
    fn: async () => {
      await using run = await migrateSimVm(
        { memoryBytes: MiB(8), workload: "postgres", seed: 5, dirtyRate: 4000 },
        compile(
          chainPolicy(`gpu-${name}`, chain).gpu({ prefer: "gpu", batch: 512 }),
        ),
      );
      const { report } = assertBitExact(run);
      assert.equal(report.gpu.used, true, report.gpu.note);
      assert.equal(report.gpu.pagesEncoded, report.pagesSent);
      if (name.includes("delta")) {
        assert.ok(
          report.rounds.some((r) => (r.codecMix.delta ?? 0) > 0),
          "the GPU delta kernel claimed no page: " +
            JSON.stringify(report.rounds.map((r) => r.codecMix)),
        );
      }
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
