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
