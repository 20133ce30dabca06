import assert from "node:assert/strict";
import { estimatedDowntimeMs, when } from "./conditions.ts";
import { PolicyError } from "./errors.ts";
import { roundStats } from "./stats.ts";
import { GiB, MBps, MiB, minutes } from "./units.ts";

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
