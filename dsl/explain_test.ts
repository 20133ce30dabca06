import assert from "node:assert/strict";
import type { Plan } from "../engine/plan.ts";
import { codec } from "./codec_spec.ts";
import { compile } from "./compile.ts";
import { when } from "./conditions.ts";
import { PolicyError } from "./errors.ts";
import { explain, explainDecision } from "./explain.ts";
import { policy } from "./policy.ts";
import { roundStats } from "./stats.ts";
import { Gbit, MiB, minutes, ms, seconds } from "./units.ts";

Deno.test("explain states codecs, switchover, abort, bandwidth, batch and gpu", () => {
  const text = explain(
    policy("default")
      .codec([codec.zero(), codec.raw()])
      .switchover(when.any(when.remainingBelow(MiB(64)), when.rounds(30)))
      .abortIf(when.elapsedAbove(minutes(10)))
      .bandwidth(Gbit(1))
      .gpu({ batch: 4096 })
      .batchPages(512),
  );
  const lines = text.split("\n");
  assert.equal(lines[0], 'Policy "default"');
  assert.match(text, /codecs: +zero → raw, every round/);
  assert.match(
    text,
    /switchover: +when remaining below 64\.00 MiB or 30 rounds have finished/,
  );
  assert.match(text, /rounds: +at most 64 \(maxRounds\), then switchover/);
  assert.match(text, /abort: +when elapsed time above 10 min/);
  assert.match(text, /bandwidth: +1\.00 Gbit\/s/);
  assert.match(text, /batch: +512 non-zero pages per batch \(BATCH frame\)/);
  assert.match(text, /channels: +one per core \(default\)/);
  assert.match(
    text,
    /gpu: +GPU when one is present, else CPU; 4096 pages per dispatch/,
  );
});

Deno.test("explain evaluates a codec function on round 0 and a later round", () => {
  const text = explain(
    policy("split")
      .codec((s) => (s.round === 0 ? [codec.zero()] : [codec.raw()]))
      .switchover(when.rounds(10)),
  );
  assert.match(
    text,
    /chosen per round by a function; round 0: zero → raw; a typical round 5: raw/,
  );
  const same = explain(
    policy("same").codec(() => [codec.zero()]).switchover(when.rounds(10)),
  );
  assert.match(
    same,
    /chosen per round by a function; zero → raw in round 0 and in a typical round 5/,
  );
});

Deno.test("explain of the low-level form, unpaced, CPU only", () => {
  const text = explain(
    policy("xen").decide(() => "continue").gpu({ prefer: "cpu" }).maxRounds(12),
  );
  assert.match(
    text,
    /switchover: +decided after each round by the policy's decide function/,
  );
  assert.match(text, /rounds: +at most 12 \(maxRounds\)/);
  assert.match(text, /bandwidth: +unlimited \(unpaced\)/);
  assert.match(text, /gpu: +CPU only; 8192 pages per dispatch/);
  assert.doesNotMatch(text, /else CPU/);
});

Deno.test("explain of a hand-written plan and of a required GPU", () => {
  const hand: Plan = {
    name: "hand",
    codecsFor: () => [{ name: "raw" }],
    decide: () => "switchover",
    bandwidth: 1000,
    batchPages: 1,
    maxRounds: 1,
    gpu: { batch: 1, prefer: "gpu", require: true },
  };
  const text = explain(hand);
  assert.match(text, /decided after each round by the plan's decide function/);
  assert.match(
    text,
    /gpu: +prefers the GPU, fails without one; 1 pages per dispatch/,
  );
});

Deno.test("explain of an invalid policy throws the compile error", () => {
  assert.throws(() => explain(policy("bad")), PolicyError);
});

Deno.test("explainDecision gives the reason for these stats", () => {
  const plan = compile(policy("p").switchover(when.remainingBelow(MiB(64))));
  assert.equal(
    explainDecision(plan, roundStats({ round: 3, remainingBytes: MiB(10) })),
    "switchover: remaining 10.00 MiB is below 64.00 MiB",
  );
  assert.equal(
    explainDecision(
      { ...plan, reason: undefined },
      roundStats({ round: 3, remainingBytes: MiB(100) }),
    ),
    "continue after round 3",
  );
});

Deno.test("explain spells out a downtime ramp step by step, stalls and a time budget per GiB with its action", () => {
  const text = explain(
    policy("schedule")
      .switchover(
        when.any(
          when.remainingBelow(MiB(1)),
          when.downtimeRamp({
            startMs: ms(50),
            stepMs: ms(50),
            maxMs: ms(500),
            every: { rounds: 2 },
          }),
        ),
      )
      .abortIf(
        when.any(
          when.stalled({ rounds: 6, minProgress: 0.05 }),
          when.elapsedAbovePerGiB(seconds(150)),
        ),
      )
      .maxRounds(30),
  );
  assert.match(
    text,
    /switchover: +when remaining below 1\.00 MiB or estimated downtime at most the ramp 50 ms, \+50 ms every 2 rounds, up to 500 ms\n/,
  );
  assert.match(
    text,
    /ramp: +50 ms in rounds 0–1, 100 ms in rounds 2–3, 150 ms in rounds 4–5, …, 500 ms from round 18\n/,
  );
  assert.match(
    text,
    /abort: +when remaining bytes have not shrunk by 5% for 6 rounds or elapsed time above 2 min 30 s per GiB of memory\n/,
  );
  assert.match(
    text,
    /stalls: +a round stalls when its remaining bytes are not below those of the last round that shrank them .*RoundStats\.history/,
  );
  assert.match(
    text,
    /budget: +2 min 30 s per GiB of memory: 2 min 30 s for 1 GiB, 10 min 0 s for 4 GiB, 40 min 0 s for 16 GiB; then abort\n/,
  );
});

Deno.test("explain of a ramp per stall and a budget that forces completion", () => {
  const text = explain(
    policy("force").switchover(
      when.any(
        when.downtimeRamp({
          startMs: ms(100),
          stepMs: ms(100),
          maxMs: ms(300),
          every: { stalls: 1 },
        }),
        when.elapsedAbovePerGiB(seconds(60)),
      ),
    ),
  );
  assert.match(
    text,
    /ramp: +100 ms until the first stalled round, 200 ms after 1 stalled round, 300 ms after 2 stalled rounds\n/,
  );
  assert.match(text, /stalls: /);
  assert.match(
    text,
    /budget: +1 min 0 s per GiB of memory: .*; then switch over \(forced completion\)\n/,
  );
  // Under all() or not() a budget does not decide alone.
  const inner = explain(
    policy("inner").switchover(
      when.all(when.rounds(2), when.elapsedAbovePerGiB(seconds(60))),
    ),
  );
  assert.match(inner, /budget: .*; as part of a larger condition\n/);
  assert.doesNotMatch(inner, /stalls: /);
  // A ramp over time.
  assert.match(
    explain(
      policy("t").switchover(
        when.downtimeRamp({
          startMs: 50,
          stepMs: 25,
          maxMs: 100,
          every: { ms: seconds(10) },
        }),
      ),
    ),
    /ramp: +50 ms for the first 10\.00 s, 75 ms from 10\.00 s, 100 ms from 20\.00 s\n/,
  );
});
