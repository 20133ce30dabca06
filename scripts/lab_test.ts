import assert from "node:assert/strict";
import { codec, compile, MiB, policy, when } from "../dsl/mod.ts";
import { MigrationError } from "../engine/errors.ts";
import { compare, roundChart, roundTable, simVm, tryPolicy } from "./lab.ts";
import type { MigrationReport } from "../engine/report.ts";

const plain = policy("plain")
  .codec([codec.zero(), codec.raw()])
  .switchover(when.rounds(3))
  .bandwidth(null);

/** One small verified migration shared by the rendering tests. */
let shared: Promise<MigrationReport> | undefined;
function sharedReport(): Promise<MigrationReport> {
  shared ??= tryPolicy(plain, { workload: "memcached", mem: "16MiB" });
  return shared;
}

Deno.test("simVm takes a size as text or bytes", async () => {
  const a = await simVm("idle", { mem: "8MiB", seed: 2 });
  const b = await simVm("idle", { mem: MiB(8), seed: 2 });
  try {
    assert.equal(a.pageCount, 2048);
    assert.equal(b.pageCount, 2048);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("tryPolicy migrates a fresh VM over loopback TCP and verifies it", async () => {
  const report = await sharedReport();
  assert.equal(report.verified, true, report.outcome);
  assert.equal(report.memoryBytes, MiB(16));
  assert.equal(report.policy, "plain");
  assert.match(report.vm, /memcached/);
  assert.equal(report.rounds.length, 4);
  assert.equal(report.rounds.at(-1)?.final, true);
  assert.equal(report.bandwidth, null);
});

Deno.test("tryPolicy takes a compiled plan, overrides the link rate, reports rounds", async () => {
  const rounds: number[] = [];
  const report = await tryPolicy(compile(plain), {
    workload: "partial",
    mem: MiB(8),
    seed: 5,
    bandwidth: "1Gbit",
    onRound: (r) => rounds.push(r.round),
  });
  assert.equal(report.verified, true, report.outcome);
  assert.equal(report.bandwidth, 125_000_000);
  assert.deepEqual(rounds, report.rounds.map((r) => r.round));
});

Deno.test("tryPolicy rejects when the policy aborts, and cleans up", async () => {
  const quitter = policy("quitter")
    .switchover(when.rounds(30))
    .abortIf(when.rounds(1))
    .bandwidth(null);
  await assert.rejects(
    tryPolicy(quitter, { workload: "random", mem: "8MiB" }),
    MigrationError,
  );
  // The test sanitizers check that no listener, connection or worker is left.
});

Deno.test("compare runs both policies on the same VM and seed, both verified", async () => {
  const withDelta = policy("delta")
    .codec([codec.zero(), codec.delta(), codec.raw()])
    .switchover(when.rounds(3))
    .bandwidth(null);
  const c = await compare(plain, withDelta, {
    workload: "memcached",
    mem: "16MiB",
    seed: 3,
  });
  assert.equal(c.a.verified, true, c.a.outcome);
  assert.equal(c.b.verified, true, c.b.outcome);
  assert.equal(c.a.vm, c.b.vm);
  assert.match(c.a.vm, /seed 3/);
  assert.equal(c.a.policy, "plain");
  assert.equal(c.b.policy, "delta");
  for (
    const row of [
      "total time",
      "downtime",
      "wire bytes",
      "ratio",
      "rounds",
      "verified",
    ]
  ) {
    assert.match(c.table, new RegExp(`│ ${row}`), row);
  }
  assert.match(c.table, /plain.*delta/);
  assert.equal(c.table.match(/VERIFIED/g)?.length, 2);
});

Deno.test("compare labels two policies of the same name a and b", async () => {
  const c = await compare(plain, compile(plain), {
    workload: "idle",
    mem: "4MiB",
  });
  assert.match(c.table, /a: plain.*b: plain/);
});

Deno.test("roundTable lists every round, then the totals", async () => {
  const report = await sharedReport();
  const text = roundTable(report);
  for (const r of report.rounds) {
    const name = r.final ? `${r.round} (stop)` : String(r.round);
    assert.match(text, new RegExp(`^│ ${name.replace(/[()]/g, "\\$&")} `, "m"));
  }
  assert.match(text, /VERIFIED \(memory digests match\)/);
  assert.match(text, /^downtime +\S/m);
  assert.doesNotMatch(roundTable(report, { summary: false }), /VERIFIED/);
});

Deno.test("roundChart plots one point per round", async () => {
  const report = await sharedReport();
  const n = report.rounds.length;
  const width = (per: number) =>
    Math.max(
      ...roundChart(report, "pagesSent", { columnsPerRound: per }).split("\n")
        .filter((l) => /[┤┼]/.test(l)).map((l) => l.trimEnd().length),
    );
  // One more column per round widens every row by exactly one column per round.
  assert.equal(width(4) - width(3), n);
  assert.equal(width(3) - width(2), n);
  const chart = roundChart(report, "pagesSent", { height: 4 });
  const lines = chart.split("\n");
  assert.equal(lines[0], `pagesSent per round (plain, ${n} rounds)`);
  assert.equal(lines.filter((l) => /[┤┼]/.test(l)).length, 5); // height + 1 rows
  // Round 0 sends every page: the top of the axis is the page count.
  assert.match(lines[1], new RegExp(`^ *${MiB(16) / 4096} [┤┼]`));
  assert.match(
    lines.at(-1) ?? "",
    /^ +0 +1 +2 +S +\(round; S = stop-and-copy\)$/,
  );
});

Deno.test("roundChart formats byte fields and rejects unknown fields", async () => {
  const report = await sharedReport();
  assert.match(roundChart(report, "wireBytes"), /MiB [┤┼]/);
  assert.match(roundChart(report), /^dirtyPages per round/);
  assert.throws(
    () => roundChart(report, "codecMix" as "wireBytes"),
    /Cannot chart field "codecMix": expected one of dirtyPages/,
  );
});
