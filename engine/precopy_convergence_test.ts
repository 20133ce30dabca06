/**
 * Convergence controls of the DSL (stall detection, a downtime ramp, a time
 * budget per GiB) steering real loopback migrations of a simulated VM whose
 * workload dirties pages faster than the link sends them: the engine fills
 * in `RoundStats.history`, and the migration ends as the policy says.
 */

import assert from "node:assert/strict";
import {
  codec,
  compile,
  KiB,
  MiB,
  ms,
  type Policy,
  policy,
  seconds,
  when,
} from "../dsl/mod.ts";
import {
  assertBitExact,
  assertMigrationError,
  migrateSimVm,
} from "./_precopy_testing.ts";
import type { Decision, Plan, RoundStats } from "./plan.ts";

/**
 * A 4 MiB VM whose random writes (about 12 000 per round over its 768-page
 * heap) dirty the whole heap again in every round, at 16 MiB/s: each
 * round leaves as much to send as the one before. Pre-copy cannot converge.
 */
const NON_CONVERGING = {
  memoryBytes: MiB(4),
  workload: "random",
  seed: 9,
  dirtyRate: 60_000,
} as const;

/** What the plan was asked and answered at each decision point. */
interface Asked {
  readonly stats: RoundStats;
  readonly decision: Decision;
}

/** `p` compiled, with every decision it makes recorded in `asked`. */
function recorded(p: Policy, asked: Asked[]): Plan {
  const plan = compile(p);
  return {
    ...plan,
    decide: (stats) => {
      const decision = plan.decide(stats);
      asked.push({ stats, decision });
      return decision;
    },
  };
}

/** The engine's history at each decision point is exactly the points before it. */
function assertHistory(asked: readonly Asked[]): void {
  for (const [i, { stats }] of asked.entries()) {
    assert.equal(stats.round, i);
    assert.deepEqual(
      stats.history,
      asked.slice(0, i).map(({ stats: s }) => ({
        round: s.round,
        remainingBytes: s.remainingBytes,
        dirtyRate: s.dirtyRate,
        elapsedMs: s.elapsedMs,
      })),
      `history at round ${i}`,
    );
  }
}

Deno.test("a non-converging VM is caught by stall detection and the policy's abort leaves it running on the source", async () => {
  const asked: Asked[] = [];
  await using run = await migrateSimVm(
    NON_CONVERGING,
    recorded(
      policy("stall-abort")
        .codec([codec.zero(), codec.raw()])
        .switchover(when.remainingBelow(KiB(64)))
        .abortIf(when.stalled({ rounds: 3, minProgress: 0.1 }))
        .bandwidth(MiB(16)),
      asked,
    ),
  );
  const { report, received, sink, vm } = run;
  assertMigrationError(
    report,
    /aborted by policy "stall-abort" after round \d+: abort: remaining .* has not shrunk below .* since round \d+ \(for 3 rounds, .*\): stalled/,
  );
  assertHistory(asked);
  // Continue until the third round in a row that left 90% or more of what
  // remained at the last round that shrank it, then abort.
  assert.deepEqual(
    asked.map((a) => a.decision),
    [...Array(asked.length - 1).fill("continue"), "abort"],
  );
  assert.ok(asked.length >= 4, `aborted after ${asked.length} rounds`);
  const remaining = asked.map((a) => a.stats.remainingBytes);
  const mark = remaining.at(-4)!;
  for (const r of remaining.slice(-3)) {
    assert.ok(r >= 0.9 * mark, `${r} shrank from ${mark}: ${remaining}`);
  }
  if (!(received instanceof Error)) assert.equal(received.verified, false);
  assert.equal(sink?.state, "discarded");
  const before = vm.pagesWritten;
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(vm.pagesWritten > before, "source VM stopped writing after abort");
});

Deno.test("a downtime ramp per stall switches a non-converging VM over once its allowance covers the estimated downtime", async () => {
  const asked: Asked[] = [];
  await using run = await migrateSimVm(
    NON_CONVERGING,
    recorded(
      policy("ramp")
        .codec([codec.zero(), codec.raw()])
        .switchover(
          when.downtimeRamp({
            startMs: ms(10),
            stepMs: ms(100),
            maxMs: seconds(5),
            every: { stalls: 1, minProgress: 0.1 },
          }),
        )
        .bandwidth(MiB(16)),
      asked,
    ),
  );
  const { report } = assertBitExact(run);
  assertHistory(asked);
  const last = report.rounds.filter((r) => !r.final).at(-1)!;
  assert.equal(last.decision, "switchover");
  assert.match(
    last.reason,
    /^switchover: estimated downtime .* is at most .*, what the ramp allows after [1-9]\d* stalled rounds?$/,
  );
  // 3 MiB at 16 MiB/s is about 190 ms: more than the 10 ms of round 0.
  assert.ok(asked.length >= 2, `switched over after ${asked.length} rounds`);
});

Deno.test("a time budget per GiB forces completion of a non-converging VM", async () => {
  await using run = await migrateSimVm(
    NON_CONVERGING,
    compile(
      policy("budget")
        .codec([codec.zero(), codec.raw()])
        .switchover(
          when.any(
            when.remainingBelow(KiB(64)),
            // 4 MiB of memory: 200 s per GiB is 781 ms.
            when.elapsedAbovePerGiB(seconds(200)),
          ),
        )
        .bandwidth(MiB(16)),
    ),
  );
  const { report } = assertBitExact(run);
  const live = report.rounds.filter((r) => !r.final);
  assert.match(
    live.at(-1)!.reason,
    /^switchover: elapsed time .* is above 781 ms \(3 min 20 s per GiB of 4\.00 MiB\)$/,
  );
  assert.ok(live.slice(0, -1).every((r) => r.decision === "continue"));
});
