import assert from "node:assert/strict";
import { compile, policy, when } from "../dsl/mod.ts";
import type { Decision, RoundStats } from "./plan.ts";
import { roundLimitReason, Steering, type SteeringPlan } from "./steering.ts";

/** A hand-made plan (no `reason`, no maxRounds in its decide) that records what it was asked. */
function recording(
  answer: (s: RoundStats) => Decision,
  maxRounds = 64,
): SteeringPlan & { seen: RoundStats[] } {
  const seen: RoundStats[] = [];
  return {
    name: "rec",
    maxRounds,
    decide: (s) => {
      seen.push(s);
      return answer(s);
    },
    seen,
  };
}

/** A fake clock advanced by hand. */
function clock() {
  let t = 0;
  return { now: () => t, set: (ms: number) => void (t = ms) };
}

Deno.test("steering: each decision point carries the earlier ones as history, oldest first, and earlier stats keep theirs", () => {
  const plan = recording(() => "continue");
  const c = clock();
  const s = new Steering(plan, { pageSize: 4096, now: c.now });
  const remaining = [1000, 600, 500];
  for (let round = 0; round < remaining.length; round++) {
    c.set((round + 1) * 100);
    s.decide({
      round,
      dirtyPages: remaining[round],
      bytesSent: 0,
      rawBytesSent: 0,
    });
  }
  const [a, b, third] = plan.seen;
  assert.deepEqual(a.history, []);
  assert.deepEqual(b.history, [
    {
      round: 0,
      remainingBytes: 1000 * 4096,
      dirtyRate: 1000 * 4096 * 10,
      elapsedMs: 100,
    },
  ]);
  assert.deepEqual(
    third.history?.map((h) => [h.round, h.remainingBytes, h.elapsedMs]),
    [
      [0, 1000 * 4096, 100],
      [1, 600 * 4096, 200],
    ],
  );
  // A later point does not change what an earlier one saw.
  assert.equal(b.history?.length, 1);
  assert.equal(s.history.length, 3);
  // stats() for the codec chooser sees the history too, and records nothing.
  const view = s.stats({
    round: 3,
    dirtyPages: 1,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(view.history?.length, 3);
  assert.equal(s.history.length, 3);
});

Deno.test("steering: rates it is not given come from the previous decision point; rates it is given stand", () => {
  const plan = recording(() => "continue");
  const c = clock();
  const s = new Steering(plan, { memoryBytes: 1 << 30, now: c.now });
  c.set(2000);
  const first = s.decide({
    round: 0,
    dirtyPages: 256, // 1 MiB dirtied in 2 s
    bytesSent: 100e6,
    rawBytesSent: 200e6,
  }).stats;
  assert.equal(first.dirtyRate, (256 * 4096) / 2);
  assert.equal(first.sendRate, 100e6);
  assert.equal(first.wireRate, 50e6);
  assert.equal(first.elapsedMs, 2000);
  assert.equal(first.memoryBytes, 1 << 30);
  assert.equal(first.remainingBytes, 256 * 4096);
  c.set(3000);
  const second = s.decide({
    round: 1,
    remainingBytes: 8192 + 1, // dirty pages follow, rounded up
    dirtyRate: 7,
    bytesSent: 110e6,
    rawBytesSent: 230e6,
    elapsedMs: 2500, // the backend's own clock wins
    memoryBytes: 2 << 30,
  }).stats;
  assert.equal(second.dirtyPages, 3);
  assert.equal(second.dirtyRate, 7);
  assert.equal(second.sendRate, 30e6 / 0.5);
  assert.equal(second.wireRate, 10e6 / 0.5);
  assert.equal(second.elapsedMs, 2500);
  assert.equal(second.memoryBytes, 2 << 30);
});

Deno.test("steering: maxRounds turns a continue at the last allowed round into a switchover, in one wording; abort and switchover stand", () => {
  const plan = recording((s) => s.round === 1 ? "abort" : "continue", 3);
  const s = new Steering(plan);
  const step = (round: number) =>
    s.decide({ round, dirtyPages: 10, bytesSent: 0, rawBytesSent: 0 });
  const r0 = step(0);
  assert.equal(r0.decision, "continue");
  assert.equal(r0.override, undefined);
  assert.equal(
    r0.reason,
    `continue: the plan "rec" answered "continue" after round 0`,
  );
  // The plan's abort wins even though round 1 is not the last.
  assert.equal(step(1).decision, "abort");
  const r2 = step(2);
  assert.equal(r2.decision, "switchover");
  assert.equal(r2.override, "maxRounds");
  assert.equal(
    r2.reason,
    "switchover: 3 rounds reached the limit of maxRounds 3",
  );
  assert.equal(r2.reason, roundLimitReason(3, 3));
  // The plan was still asked at every point (conditions that keep state see them all).
  assert.deepEqual(plan.seen.map((x) => x.round), [0, 1, 2]);
  // An abort at the last round is not overridden.
  const last = new Steering(recording(() => "abort", 1));
  assert.equal(
    last.decide({ round: 0, dirtyPages: 1, bytesSent: 0, rawBytesSent: 0 })
      .decision,
    "abort",
  );
  assert.equal(s.roundLimit(2), null);
  assert.match(s.roundLimit(3)!, /^switchover: 3 rounds/);
});

Deno.test("steering: a compiled policy's own limit and reasons come through unchanged", () => {
  const plan = compile(
    policy("p").switchover(when.remainingBelow(5 * 4096)).maxRounds(2),
  );
  const s = new Steering(plan);
  const r0 = s.decide({
    round: 0,
    dirtyPages: 100,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(r0.decision, "continue");
  assert.match(r0.reason, /^continue: /);
  const r1 = s.decide({
    round: 1,
    dirtyPages: 100,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(r1.decision, "switchover");
  assert.equal(r1.override, undefined); // the policy applied maxRounds itself
  assert.equal(r1.reason, roundLimitReason(2, 2));
  const done = new Steering(plan).decide({
    round: 0,
    dirtyPages: 1,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(done.decision, "switchover");
  assert.match(done.reason, /^switchover: /);
});

Deno.test("steering: a plan that throws, or answers no decision, aborts with its error as the reason", () => {
  const throwing = new Steering({
    name: "bad",
    maxRounds: 10,
    decide: () => {
      throw new Error("no data");
    },
  });
  const t = throwing.decide({
    round: 4,
    dirtyPages: 1,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(t.decision, "abort");
  assert.equal(t.override, "plan-error");
  assert.equal(
    t.reason,
    `abort: the plan "bad" failed in decide after round 4: no data`,
  );
  const nonsense = new Steering({
    name: "odd",
    maxRounds: 10,
    decide: () => "stop" as Decision,
  });
  const n = nonsense.decide({
    round: 0,
    dirtyPages: 1,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(n.decision, "abort");
  assert.match(
    n.reason,
    /answered "stop" after round 0, expected continue, switchover or abort/,
  );
  // A reason() that throws falls back to the plain wording.
  const r = new Steering({
    name: "r",
    maxRounds: 10,
    decide: () => "switchover",
    reason: () => {
      throw new Error("x");
    },
  }).decide({ round: 0, dirtyPages: 1, bytesSent: 0, rawBytesSent: 0 });
  assert.equal(
    r.reason,
    `switchover: the plan "r" answered "switchover" after round 0`,
  );
});
