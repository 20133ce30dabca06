import assert from "node:assert/strict";
import { compile, policy, when } from "../../dsl/mod.ts";
import { XgsPolicy } from "../../ffi/xen/xenguest.ts";
import { PrecopyPolicy } from "./save.ts";
import { xenRoundReports } from "./save_rounds.ts";

/** libxc 4.17's call sequence of precopy_policy, answered as it goes: it stops where libxc would. */
function runLibxc(policy: PrecopyPolicy, p2m: number, dirty: number[]) {
  let written = 0;
  let count = p2m;
  for (let i = 0;; i++) {
    const a = policy.answer({
      iteration: i,
      totalWritten: written,
      dirtyCount: count,
    });
    if (a !== XgsPolicy.CONTINUE_PRECOPY) return;
    written += count;
    const b = policy.answer({
      iteration: i + 1,
      totalWritten: written,
      dirtyCount: -1,
    });
    if (b !== XgsPolicy.CONTINUE_PRECOPY || i >= dirty.length) return;
    count = dirty[i];
  }
}

Deno.test("xen rounds: one live round per iteration libxc sent, the steering's decisions and reasons, then the stop-and-copy round", () => {
  const plan = compile(
    policy("xen").switchover(when.remainingBelow(100 * 4096)).maxRounds(10),
  );
  const p = new PrecopyPolicy({ plan, memoryBytes: 32768 * 4096 });
  runLibxc(p, 32768, [4000, 900, 50, 40]);
  const imageBytes = (32768 + 4000 + 900 + 50 + 30) * 4096;
  const rounds = xenRoundReports(p.calls, { imageBytes, downtimeMs: 80 });
  assert.deepEqual(
    rounds.map((r) => [r.round, r.final, r.pagesSent, r.decision]),
    [
      [0, false, 32768, "continue"],
      [1, false, 4000, "continue"],
      [2, false, 900, "continue"],
      // libxc sends the 50 pages of the switchover call live, then stops
      [3, false, 50, "switchover"],
      [4, true, 30, "final"],
    ],
  );
  assert.match(rounds[3].reason, /^switchover: /);
  assert.equal(rounds[0].remainingPages, 4000);
  assert.equal(rounds[3].remainingPages, 30);
  assert.equal(rounds[4].durationMs, 80);
  assert.match(rounds[4].reason, /estimated from the image bytes/);
  // The history reached libxc's decisions through the steering.
  const last = p.calls.filter((c) => c.roundStats).at(-1)!;
  assert.deepEqual(
    last.roundStats!.history?.map((h) => h.remainingBytes / 4096),
    [32768, 4000, 900],
  );
});

Deno.test("xen rounds: maxRounds stops libxc through the steering; an abort sends nothing more", () => {
  const plan = {
    name: "hand",
    maxRounds: 2,
    decide: () => "continue" as const,
  };
  const p = new PrecopyPolicy({ plan });
  runLibxc(p, 1000, [500, 400, 300]);
  const rounds = xenRoundReports(p.calls, { imageBytes: null });
  assert.deepEqual(rounds.map((r) => r.decision), [
    "continue",
    "switchover",
    "final",
  ]);
  assert.equal(
    rounds[1].reason,
    "switchover: 2 rounds reached the limit of maxRounds 2",
  );
  assert.equal(rounds[2].pagesSent, 0); // no image size: nothing is guessed
  assert.match(rounds[2].reason, /how much is unknown/);

  const aborting = new PrecopyPolicy({
    plan: {
      name: "stop",
      maxRounds: 9,
      decide: (s) => s.round === 1 ? "abort" : "continue",
    },
  });
  runLibxc(aborting, 1000, [500, 400]);
  assert.equal(aborting.calls.at(-1)?.answer, XgsPolicy.ABORT);
  assert.deepEqual(
    xenRoundReports(aborting.calls).filter((r) => !r.final).map((r) => r.round),
    [0],
  );
});

Deno.test("xen precopy_policy: an aborted signal answers ABORT at the next call, with the reason", () => {
  const controller = new AbortController();
  const p = new PrecopyPolicy({
    plan: { name: "p", maxRounds: 9, decide: () => "continue" },
    signal: controller.signal,
  });
  assert.equal(
    p.answer({ iteration: 0, totalWritten: 0, dirtyCount: 10 }),
    XgsPolicy.CONTINUE_PRECOPY,
  );
  controller.abort("interrupted (SIGINT)");
  assert.equal(
    p.answer({ iteration: 1, totalWritten: 10, dirtyCount: -1 }),
    XgsPolicy.ABORT,
  );
  assert.equal(
    p.calls.at(-1)?.reason,
    "abort: cancelled: interrupted (SIGINT)",
  );
});
