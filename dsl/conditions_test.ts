import assert from "node:assert/strict";
import { estimatedDowntimeMs, when } from "./conditions.ts";
import { PolicyError } from "./errors.ts";
import { roundSeries, roundStats } from "./stats.ts";
import { GiB, MBps, MiB, minutes, seconds } from "./units.ts";

Deno.test("remainingBelow and remainingAbove are strict", () => {
  const below = when.remainingBelow(MiB(64));
  assert.equal(below.test(roundStats({ remainingBytes: MiB(63) })), true);
  assert.equal(below.test(roundStats({ remainingBytes: MiB(64) })), false);
  const above = when.remainingAbove(MiB(64));
  assert.equal(above.test(roundStats({ remainingBytes: MiB(65) })), true);
  assert.equal(above.test(roundStats({ remainingBytes: MiB(64) })), false);
});

Deno.test("dirtyRateAbove with a number and with a function of the stats", () => {
  const fixed = when.dirtyRateAbove(MBps(100));
  assert.equal(fixed.test(roundStats({ dirtyRate: MBps(101) })), true);
  assert.equal(fixed.test(roundStats({ dirtyRate: MBps(100) })), false);

  const relative = when.dirtyRateAbove((s) => 0.8 * s.sendRate);
  assert.equal(
    relative.test(roundStats({ dirtyRate: MBps(90), sendRate: MBps(100) })),
    true,
  );
  assert.equal(
    relative.test(roundStats({ dirtyRate: MBps(70), sendRate: MBps(100) })),
    false,
  );
  assert.equal(
    relative.test(roundStats({ dirtyRate: MBps(90), sendRate: MBps(200) })),
    false,
  );
  assert.match(
    relative.describe(),
    /^dirty rate above \(\(?s\)?\s*=>\s*0\.8 \* s\.sendRate\)$/,
  );
  assert.match(
    relative.why(roundStats({ dirtyRate: MBps(90), sendRate: MBps(100) })),
    /^dirty rate 720\.0 Mbit\/s is above 640\.0 Mbit\/s/,
  );
});

Deno.test("a function threshold that returns NaN is a PolicyError", () => {
  const c = when.dirtyRateAbove(() => NaN);
  assert.throws(() => c.test(roundStats()), (e: unknown) => {
    assert.ok(e instanceof PolicyError);
    assert.match(e.message, /got "NaN"/);
    return true;
  });
});

Deno.test("dirtyRateBelow", () => {
  const c = when.dirtyRateBelow(MBps(10), "a quiet guest");
  assert.equal(c.test(roundStats({ dirtyRate: MBps(9) })), true);
  assert.equal(c.test(roundStats({ dirtyRate: MBps(10) })), false);
});

Deno.test("rounds(n) holds once n rounds have finished", () => {
  const c = when.rounds(30);
  assert.equal(c.test(roundStats({ round: 28 })), false);
  assert.equal(c.test(roundStats({ round: 29 })), true);
  assert.equal(when.rounds(1).test(roundStats({ round: 0 })), true);
});

Deno.test("elapsedAbove and bytesSentAbove", () => {
  assert.equal(
    when.elapsedAbove(minutes(10)).test(
      roundStats({ elapsedMs: minutes(10) + 1 }),
    ),
    true,
  );
  assert.equal(
    when.elapsedAbove(minutes(10)).test(roundStats({ elapsedMs: minutes(9) })),
    false,
  );
  assert.equal(
    when.bytesSentAbove(GiB(8)).test(roundStats({ bytesSent: GiB(9) })),
    true,
  );
  assert.equal(
    when.bytesSentAbove(GiB(8)).test(roundStats({ bytesSent: GiB(7) })),
    false,
  );
});

Deno.test("downtimeBelow estimates remaining / sendRate and is false while nothing was sent", () => {
  const c = when.downtimeBelow(300);
  const s = roundStats({ remainingBytes: MBps(30), sendRate: MBps(100) }); // 300 ms
  assert.equal(estimatedDowntimeMs(s), 300);
  assert.equal(c.test(s), true);
  assert.equal(
    c.test(roundStats({ remainingBytes: MBps(31), sendRate: MBps(100) })),
    false,
  );
  assert.equal(
    c.test(roundStats({ remainingBytes: MBps(1), sendRate: 0 })),
    false,
  );
  assert.equal(
    estimatedDowntimeMs(roundStats({ remainingBytes: 0, dirtyPages: 0 })),
    0,
  );
});

Deno.test("any, all and not combine conditions", () => {
  const small = when.remainingBelow(MiB(64));
  const late = when.rounds(10);
  const s = roundStats({ round: 3, remainingBytes: MiB(10) });
  assert.equal(when.any(small, late).test(s), true);
  assert.equal(when.all(small, late).test(s), false);
  assert.equal(when.not(late).test(s), true);
  assert.equal(when.all(small, when.not(late)).test(s), true);
  assert.equal(
    when.any(small, when.all(late, when.not(small))).describe(),
    "remaining below 64.00 MiB or (10 rounds have finished and not (remaining below 64.00 MiB))",
  );
});

Deno.test("why names the condition that fired, with measured values", () => {
  const c = when.any(when.remainingBelow(MiB(64)), when.rounds(30));
  assert.equal(
    c.why(roundStats({ round: 2, remainingBytes: MiB(10) })),
    "remaining 10.00 MiB is below 64.00 MiB",
  );
  assert.equal(
    c.why(roundStats({ round: 29, remainingBytes: GiB(1) })),
    "30 of 30 rounds done",
  );
  assert.match(
    c.why(roundStats({ round: 2, remainingBytes: GiB(1) })),
    /^none of: remaining 1\.00 GiB is not below/,
  );
});

Deno.test("custom conditions use their description", () => {
  const c = when.custom(
    "half the memory sent",
    (s) => s.rawBytesSent > s.memoryBytes / 2,
  );
  assert.equal(c.describe(), "half the memory sent");
  assert.equal(
    c.test(roundStats({ memoryBytes: GiB(4), rawBytesSent: GiB(3) })),
    true,
  );
  assert.equal(
    c.test(roundStats({ memoryBytes: GiB(4), rawBytesSent: GiB(1) })),
    false,
  );
});

/** What a condition answers at each decision point of a series. */
function answers(
  c: { test(s: ReturnType<typeof roundStats>): boolean },
  series: readonly ReturnType<typeof roundStats>[],
): boolean[] {
  return series.map((s) => c.test(s));
}

Deno.test("stalled({ rounds: n }) holds from the nth round in a row that did not shrink the remaining bytes, not before", () => {
  // Rounds 0-1 shrink; 2, 3, 4 do not (equal counts as not shrinking).
  const series = roundSeries([
    MiB(100),
    MiB(40),
    MiB(40),
    MiB(55),
    MiB(41),
  ]);
  assert.deepEqual(answers(when.stalled({ rounds: 3 }), series), [
    false,
    false,
    false,
    false,
    true,
  ]);
  assert.deepEqual(answers(when.stalled({ rounds: 1 }), series), [
    false,
    false,
    true,
    true,
    true,
  ]);
  // A round that shrinks below the mark starts the count again.
  const resumed = roundSeries([MiB(100), MiB(40), MiB(45), MiB(39), MiB(50)]);
  assert.deepEqual(answers(when.stalled({ rounds: 2 }), resumed), [
    false,
    false,
    false,
    false,
    false,
  ]);
  assert.deepEqual(answers(when.stalled({ rounds: 1 }), resumed), [
    false,
    false,
    true,
    false,
    true,
  ]);
});

Deno.test("stalled compares with the last round that shrank the remaining bytes, not the round before", () => {
  // 45 then 42: shrinking from round 2 to 3, but never below round 1's 40.
  const series = roundSeries([MiB(100), MiB(40), MiB(45), MiB(42), MiB(41)]);
  assert.deepEqual(answers(when.stalled({ rounds: 3 }), series), [
    false,
    false,
    false,
    false,
    true,
  ]);
});

Deno.test("stalled with minProgress: shrinking by less than the fraction is a stall", () => {
  // Each round shrinks by 5%: no stall at all without minProgress.
  const series = roundSeries([100, 95, 90.25, 85.74, 81.45].map(MiB));
  assert.deepEqual(answers(when.stalled({ rounds: 1 }), series), [
    false,
    false,
    false,
    false,
    false,
  ]);
  // With 10%: rounds 1 and 2 (5% and 9.75% below round 0) are stalls;
  // round 3, 14% below round 0, is progress, and the new mark.
  const strict = when.stalled({ rounds: 2, minProgress: 0.1 });
  assert.deepEqual(answers(strict, series), [false, false, true, false, false]);
  // With 9%: every second round reaches 9% below the mark.
  const slow = when.stalled({ rounds: 2, minProgress: 0.09 });
  assert.deepEqual(answers(slow, series), [false, false, false, false, false]);
  assert.deepEqual(
    answers(when.stalled({ rounds: 1, minProgress: 0.09 }), series),
    [false, true, false, true, false],
  );
  assert.equal(
    strict.describe(),
    "remaining bytes have not shrunk by 10% for 2 rounds",
  );
});

Deno.test("stalled({ forMs }) holds once the remaining bytes have not shrunk for that long", () => {
  // Rounds of 400 ms; the last shrink is round 1's, at 800 ms.
  const series = roundSeries([MiB(100), MiB(40), MiB(41), MiB(40), MiB(42)], {
    roundMs: 400,
  });
  const c = when.stalled({ forMs: 1000 });
  // Stalled for 400, 800 and 1200 ms at rounds 2, 3 and 4.
  assert.deepEqual(answers(c, series), [false, false, false, false, true]);
  assert.deepEqual(
    answers(when.stalled({ forMs: 800 }), series),
    [false, false, false, true, true],
  );
  // Either limit is enough.
  assert.deepEqual(
    answers(when.stalled({ rounds: 2, forMs: seconds(60) }), series),
    [false, false, false, true, true],
  );
  assert.equal(
    when.stalled({ rounds: 2, forMs: seconds(60) }).describe(),
    "remaining bytes have not shrunk for 2 rounds or 1 min 0 s",
  );
});

Deno.test("stalled is stateless: the same stats give the same answer whatever was asked before", () => {
  const c = when.stalled({ rounds: 2 });
  const a = roundSeries([MiB(100), MiB(40), MiB(40), MiB(40)]);
  const b = roundSeries([MiB(100), MiB(80), MiB(60), MiB(40)]);
  // Interleaved, as two migrations sharing one plan would ask.
  const got = [a[3], b[3], a[3], b[2], a[2]].map((s) => c.test(s));
  assert.deepEqual(got, [true, false, true, false, false]);
});

Deno.test("stalled says why with the measured values", () => {
  const c = when.stalled({ rounds: 3 });
  const series = roundSeries([MiB(100), MiB(40), MiB(50), MiB(30), MiB(31)], {
    roundMs: 500,
  });
  assert.equal(
    c.why(series[0]),
    "round 0 is the first decision point, nothing to compare with: not stalled",
  );
  assert.equal(
    c.why(series[3]),
    "remaining 30.00 MiB shrank in round 3: not stalled",
  );
  assert.equal(
    c.why(series[2]),
    "remaining 50.00 MiB has not shrunk below 40.00 MiB since round 1 (for 1 round, 500 ms): not yet 3 rounds",
  );
});

Deno.test("stalled without RoundStats.history fails naming what is missing, also in round 0", () => {
  const c = when.stalled({ rounds: 2 });
  for (const round of [0, 5]) {
    assert.throws(
      () => c.test(roundStats({ round })),
      (e: unknown) => {
        assert.ok(e instanceof PolicyError);
        assert.equal(e.field, "history");
        assert.match(
          e.message,
          new RegExp(
            `^Cannot test "remaining bytes have not shrunk for 2 rounds" in round ${round}: RoundStats\.history is missing: the backend that called decide keeps no record`,
          ),
        );
        return true;
      },
    );
  }
  assert.throws(
    () =>
      c.test(
        roundStats({
          round: 1,
          history: [{
            round: 0,
            remainingBytes: NaN,
            dirtyRate: 0,
            elapsedMs: 5,
          }],
        }),
      ),
    /RoundStats\.history\[0\]\.remainingBytes is "NaN"/,
  );
});

Deno.test("downtimeRamp every n rounds: the allowance per round, capped at maxMs", () => {
  const ramp = when.downtimeRamp({
    startMs: 50,
    stepMs: 50,
    maxMs: 500,
    every: { rounds: 2 },
  });
  const allowed = Array.from(
    { length: 22 },
    (_, round) => ramp.allowedMs(roundStats({ round })),
  );
  assert.deepEqual(allowed, [
    50,
    50,
    100,
    100,
    150,
    150,
    200,
    200,
    250,
    250,
    300,
    300,
    350,
    350,
    400,
    400,
    450,
    450,
    500,
    500,
    500,
    500,
  ]);
  // A step that overshoots stops at maxMs.
  const odd = when.downtimeRamp({
    startMs: 100,
    stepMs: 150,
    maxMs: 300,
    every: { rounds: 1 },
  });
  assert.deepEqual(
    [0, 1, 2, 3].map((round) => odd.allowedMs(roundStats({ round }))),
    [100, 250, 300, 300],
  );
  assert.equal(
    ramp.describe(),
    "estimated downtime at most the ramp 50 ms, +50 ms every 2 rounds, up to 500 ms",
  );
});

Deno.test("downtimeRamp holds when the estimated downtime fits what is allowed now", () => {
  const ramp = when.downtimeRamp({
    startMs: 50,
    stepMs: 50,
    maxMs: 500,
    every: { rounds: 1 },
  });
  // 20 MB at 100 MB/s: 200 ms, allowed from round 3 on.
  const at = (round: number) =>
    roundStats({ round, remainingBytes: 20e6, sendRate: MBps(100) });
  assert.deepEqual([0, 1, 2, 3, 4].map((r) => ramp.test(at(r))), [
    false,
    false,
    false,
    true,
    true,
  ]);
  assert.equal(
    ramp.why(at(2)),
    "estimated downtime 200 ms is not at most 150 ms, what the ramp allows in round 2",
  );
  // Nothing sent yet: unknown downtime never fits.
  assert.equal(ramp.test(roundStats({ round: 20, sendRate: 0 })), false);
  // It composes: any of the ramp and a size bound.
  const c = when.any(ramp, when.remainingBelow(MiB(1)));
  assert.equal(c.test(roundStats({ round: 0, remainingBytes: 1000 })), true);
});

Deno.test("downtimeRamp per stalled round counts every round that did not shrink the remaining bytes", () => {
  const ramp = when.downtimeRamp({
    startMs: 100,
    stepMs: 100,
    maxMs: 400,
    every: { stalls: 1 },
  });
  // Stalls at rounds 2, 3 and 5 (round 4 shrinks below round 1's 40).
  const series = roundSeries([100, 40, 45, 41, 30, 35, 36, 37].map(MiB));
  assert.deepEqual(series.map((s) => ramp.allowedMs(s)), [
    100,
    100,
    200,
    300,
    300,
    400,
    400,
    400,
  ]);
  const two = when.downtimeRamp({
    startMs: 100,
    stepMs: 100,
    maxMs: 400,
    every: { stalls: 2, minProgress: 0.5 },
  });
  // With minProgress 0.5 only round 1 (100 → 40) makes progress.
  assert.deepEqual(series.map((s) => two.allowedMs(s)), [
    100,
    100,
    100,
    200,
    200,
    300,
    300,
    400,
  ]);
  assert.throws(
    () => ramp.allowedMs(roundStats({ round: 3 })),
    /history is missing/,
  );
});

Deno.test("downtimeRamp every ms steps with the elapsed time", () => {
  const ramp = when.downtimeRamp({
    startMs: 50,
    stepMs: 25,
    maxMs: 100,
    every: { ms: seconds(10) },
  });
  assert.deepEqual(
    [0, 9_999, 10_000, 25_000, 30_000, 600_000].map((elapsedMs) =>
      ramp.allowedMs(roundStats({ elapsedMs }))
    ),
    [50, 50, 75, 100, 100, 100],
  );
});

Deno.test("elapsedAbovePerGiB scales the budget with the memory size", () => {
  const c = when.elapsedAbovePerGiB(seconds(150));
  assert.equal(c.limitMs(roundStats({ memoryBytes: GiB(4) })), minutes(10));
  assert.equal(c.limitMs(roundStats({ memoryBytes: MiB(512) })), seconds(75));
  const vm = { memoryBytes: GiB(2) }; // 300 s
  assert.equal(c.test(roundStats({ ...vm, elapsedMs: seconds(300) })), false);
  assert.equal(
    c.test(roundStats({ ...vm, elapsedMs: seconds(300) + 1 })),
    true,
  );
  assert.equal(c.describe(), "elapsed time above 2 min 30 s per GiB of memory");
  assert.equal(
    c.why(roundStats({ ...vm, elapsedMs: seconds(400) })),
    "elapsed time 6 min 40 s is above 5 min 0 s (2 min 30 s per GiB of 2.00 GiB)",
  );
  assert.throws(
    () => c.test(roundStats({ memoryBytes: NaN })),
    (e: unknown) =>
      e instanceof PolicyError && e.field === "memoryBytes" &&
      /RoundStats\.memoryBytes is "NaN": expected the VM's memory size/.test(
        e.message,
      ),
  );
});

Deno.test("stalled and downtimeRamp keep a copy of their options: changing them afterwards changes nothing", () => {
  const stallOptions = { rounds: 2 };
  const stall = when.stalled(stallOptions);
  const every = { rounds: 1 };
  const rampOptions = { startMs: 50, stepMs: 50, maxMs: 500, every };
  const ramp = when.downtimeRamp(rampOptions);
  stallOptions.rounds = 0;
  every.rounds = 100;
  rampOptions.stepMs = -1;
  assert.deepEqual(stall.options, { rounds: 2 });
  assert.deepEqual(ramp.options, {
    startMs: 50,
    stepMs: 50,
    maxMs: 500,
    every: { rounds: 1 },
  });
  assert.equal(ramp.allowedMs(roundStats({ round: 2 })), 150);
});
