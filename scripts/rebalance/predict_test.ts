import assert from "node:assert/strict";
import { codec, compile, MiB, policy, when } from "../../dsl/mod.ts";
import { predictMigration } from "./predict.ts";

Deno.test("an idle VM takes memory / bandwidth, with no downtime left", () => {
  const p = predictMigration({
    memoryBytes: MiB(1000),
    dirtyRate: 0,
    bandwidth: MiB(100),
  });
  assert.ok(p.converges);
  assert.equal(p.rounds, 1);
  assert.equal(p.totalMs, 10_000);
  assert.equal(p.downtimeMs, 0);
  assert.equal(p.bytesSent, MiB(1000));
});

Deno.test("rounds follow the geometric series until under the threshold", () => {
  // r/B = 1/4: D = 1024, 256, 64 (under 100 MiB: switch over), downtime 64/B.
  const p = predictMigration({
    memoryBytes: MiB(1024),
    dirtyRate: MiB(25),
    bandwidth: MiB(100),
    remainingBelowBytes: MiB(100),
  });
  assert.equal(p.rounds, 2);
  assert.equal(p.bytesSent, MiB(1024 + 256 + 64));
  assert.ok(Math.abs(p.downtimeMs - 640) < 1e-6);
  assert.ok(Math.abs(p.totalMs - (10240 + 2560 + 640)) < 1e-6);
});

Deno.test("a dirty rate at or above the link rate cannot converge", () => {
  const p = predictMigration({
    memoryBytes: MiB(64),
    dirtyRate: 200e6,
    bandwidth: 125e6,
  });
  assert.equal(p.converges, false);
  assert.match(
    p.reason,
    /200\.0 MB\/s is not below the link rate 125\.0 MB\/s/,
  );
});

Deno.test("with a plan, its decide() picks the switchover and abort", () => {
  const plan = compile(
    policy("t").codec([codec.raw()]).switchover(when.remainingBelow(MiB(300))),
  );
  const p = predictMigration({
    memoryBytes: MiB(1024),
    dirtyRate: MiB(25),
    bandwidth: MiB(100),
    plan,
  });
  assert.equal(p.rounds, 1); // 256 MiB left after round 0
  assert.equal(p.bytesSent, MiB(1024 + 256));
  const aborting = compile(
    policy("a").codec([codec.raw()]).switchover(when.rounds(30))
      .abortIf(when.elapsedAbove(1000)),
  );
  const q = predictMigration({
    memoryBytes: MiB(1024),
    dirtyRate: MiB(25),
    bandwidth: MiB(100),
    plan: aborting,
  });
  assert.equal(q.converges, false);
  assert.match(q.reason, /policy "a" would abort/);
});

Deno.test("a zero-heavy VM's predicted time drops with a zero codec in the policy, and not without", () => {
  // 90% of the pages are zero (a measured profile), 4 MB/s dirtied, 1 Gbit/s.
  const memory = { zeroFraction: 0.9, ratios: {}, source: "test" };
  const base = {
    memoryBytes: MiB(1024),
    dirtyRate: 4e6,
    bandwidth: 125e6,
    memory,
  };
  const withZero = predictMigration({
    ...base,
    plan: compile(
      policy("z").codec([codec.zero(), codec.raw()])
        .switchover(when.remainingBelow(MiB(64))),
    ),
  });
  const rawOnly = predictMigration({
    ...base,
    plan: compile(
      policy("r").codec([codec.raw()]).switchover(
        when.remainingBelow(MiB(64)),
      ),
    ),
  });
  // raw sends every page whole: the zero pages change nothing.
  const unknown = predictMigration({
    ...base,
    memory: undefined,
    plan: undefined,
    codecs: [{ name: "raw" }],
  });
  assert.ok(Math.abs(rawOnly.totalMs - unknown.totalMs) < 1e-6);
  assert.equal(rawOnly.wireBytes, rawOnly.bytesSent);
  // zero: round 0 puts only the 10% non-zero pages on the wire.
  assert.ok(Math.abs(withZero.totalMs / rawOnly.totalMs - 0.1) < 0.01);
  assert.ok(withZero.wireBytes < rawOnly.wireBytes / 9);
  assert.equal(withZero.bytesSent < rawOnly.bytesSent, true); // fewer re-dirtied pages too
  // Without anything known of the memory, the zero codec gains nothing.
  const blind = predictMigration({
    ...base,
    memory: undefined,
    plan: compile(
      policy("z").codec([codec.zero(), codec.raw()])
        .switchover(when.remainingBelow(MiB(64))),
    ),
  });
  assert.ok(Math.abs(blind.totalMs - rawOnly.totalMs) < 1e-6);
});

Deno.test("a per-round chain is asked for each round, and a compression ratio speeds the rounds it applies to", () => {
  const memory = { zeroFraction: 0, ratios: { lz4: 4 }, source: "test" };
  const asked: number[] = [];
  const plan = compile(
    policy("per-round").codec((s) => {
      asked.push(s.round);
      return s.round === 0 ? [codec.lz4(), codec.raw()] : [codec.raw()];
    }).switchover(when.rounds(2)),
  );
  const p = predictMigration({
    memoryBytes: MiB(400),
    dirtyRate: MiB(25),
    bandwidth: MiB(100),
    plan,
    memory,
  });
  // Round 0: 400 MiB at ratio 4 = 1 s; 25 MiB dirtied, sent raw in 0.25 s;
  // 6.25 MiB left for the stop-and-copy round at 62.5 ms.
  assert.ok(asked.includes(0) && asked.includes(1));
  assert.equal(p.rounds, 2);
  assert.ok(Math.abs(p.totalMs - (1000 + 250 + 62.5)) < 0.5, `${p.totalMs}`);
  assert.ok(Math.abs(p.wireBytes - MiB(100 + 25 + 6.25)) < 2 * 4096);
});

Deno.test("compression of pages sent again lets a VM dirtying faster than the link converge", () => {
  const base = { memoryBytes: MiB(256), dirtyRate: 200e6, bandwidth: 125e6 };
  const raw = predictMigration({
    ...base,
    codecs: [{ name: "zero" }, { name: "raw" }],
  });
  assert.equal(raw.converges, false);
  const lz4 = predictMigration({
    ...base,
    codecs: [{ name: "zero" }, { name: "lz4" }, { name: "raw" }],
    memory: { zeroFraction: 0, ratios: { lz4: 3 }, source: "test" },
  });
  assert.equal(lz4.converges, true, lz4.reason);
  const weak = predictMigration({
    ...base,
    codecs: [{ name: "lz4" }, { name: "raw" }],
    memory: { zeroFraction: 0, ratios: { lz4: 1.5 }, source: "test" },
  });
  assert.equal(weak.converges, false);
  assert.match(
    weak.reason,
    /not below the link rate 125\.0 MB\/s times lz4's ratio 1\.50 \(187\.5 MB\/s of pages sent again\)/,
  );
});

Deno.test("a policy that looks back (stall detection) is steered as a real migration: it sees the rounds before", () => {
  // r/B = 0.99: each round still leaves 99% of the last, under the 5% of
  // progress the policy asks for, so the third round without it aborts.
  const plan = policy("stall")
    .switchover(when.remainingBelow(MiB(1)))
    .abortIf(when.stalled({ rounds: 3, minProgress: 0.05 }))
    .maxRounds(30)
    .compile();
  const p = predictMigration({
    memoryBytes: MiB(1024),
    dirtyRate: MiB(99),
    bandwidth: MiB(100),
    plan,
  });
  assert.equal(p.converges, false);
  assert.equal(p.rounds, 4); // round 0 counts as progress; rounds 1–3 make none
  assert.match(p.reason, /policy "stall" would abort after round 3: .*stall/i);
});
