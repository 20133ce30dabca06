import assert from "node:assert/strict";
import { Pacer } from "./pacer.ts";

/**
 * A fake clock for a {@link Pacer}: `sleep(ms)` advances `now` by exactly
 * `ms` (or by `wake(ms)`, for a timer that fires early) and records each
 * sleep.
 */
class FakeClock {
  t = 1000;
  readonly sleeps: number[] = [];
  constructor(readonly wake: (ms: number) => number = (ms) => ms) {}
  readonly now = (): number => this.t;
  readonly sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    this.t += this.wake(ms);
    return Promise.resolve();
  };
  /** A pacer on this clock. */
  pacer(bytesPerSecond: number, burstBytes?: number): Pacer {
    return new Pacer({
      bytesPerSecond,
      burstBytes,
      now: this.now,
      sleep: this.sleep,
    });
  }
}

/** Sends `pieces` takes of `bytes` through `pacer`; returns the clock time it took, in ms. */
async function send(
  pacer: Pacer,
  clock: FakeClock,
  pieces: number,
  bytes: number,
): Promise<number> {
  const t0 = clock.t;
  for (let i = 0; i < pieces; i++) await pacer.take(bytes);
  return clock.t - t0;
}

Deno.test("Pacer charges exactly the time N bytes take at its rate once the burst is spent (fake clock)", async () => {
  const clock = new FakeClock();
  const pacer = clock.pacer(1_000_000, 100_000);
  // 20 x 50 000 B = 1 000 000 B; the first 100 000 B are the burst, the
  // other 900 000 B at 1 000 000 B/s take 900 ms: 18 sleeps of 50 ms. A
  // pacer at half the rate would take 1800 ms, at double the rate 450 ms.
  assert.equal(await send(pacer, clock, 20, 50_000), 900);
  assert.deepEqual(clock.sleeps, Array(18).fill(50));
  assert.equal(pacer.waitedMs, 900);
  assert.equal(pacer.bytesPerSecond, 1_000_000);
});

Deno.test("Pacer lets one burst through at once, refills while idle, and never banks more than a burst (fake clock)", async () => {
  const clock = new FakeClock();
  const pacer = clock.pacer(1_000_000, 100_000);
  assert.equal(await send(pacer, clock, 1, 100_000), 0, "a full burst is free");
  // The bucket is empty: 20 000 B more cost 20 000 / 1 000 000 s = 20 ms.
  assert.equal(await send(pacer, clock, 1, 20_000), 20);
  // 30 ms idle refill 30 000 B: 30 000 B go at once, 10 000 B more cost 10 ms.
  clock.t += 30;
  assert.equal(await send(pacer, clock, 1, 30_000), 0);
  assert.equal(await send(pacer, clock, 1, 10_000), 10);
  // 10 s idle would refill 10 MB, but the bucket holds one burst (100 000 B):
  // 300 000 B cost (300 000 - 100 000) / 1 000 000 s = 200 ms.
  clock.t += 10_000;
  assert.equal(await send(pacer, clock, 1, 300_000), 200);
  assert.equal(pacer.waitedMs, 230);
});

Deno.test("Pacer's default burst is 4 ms of traffic, at least 256 KiB (fake clock)", async () => {
  for (
    const [rate, burst, more, ms] of [
      // 125 000 000 B/s (1 Gbit/s): 4 ms = 500 000 B; 125 000 B more = 1 ms.
      [125_000_000, 500_000, 125_000, 1],
      // 1 000 000 B/s: 4 ms = 4 000 B < 262 144 B; 50 000 B more = 50 ms.
      [1_000_000, 262_144, 50_000, 50],
    ]
  ) {
    const clock = new FakeClock();
    const pacer = clock.pacer(rate);
    assert.equal(await send(pacer, clock, 1, burst), 0, `${rate} B/s burst`);
    assert.equal(await send(pacer, clock, 1, more), ms, `${rate} B/s after`);
  }
});

Deno.test("Pacer re-checks after a timer that fires early and still holds the rate (fake clock)", async () => {
  // Every timer fires after half its time (at least 1 ms).
  const clock = new FakeClock((ms) => Math.max(1, Math.floor(ms / 2)));
  const pacer = clock.pacer(1_000_000, 100_000);
  // As in the exact test: 900 000 B past the burst take 900 ms, not less.
  assert.equal(await send(pacer, clock, 20, 50_000), 900);
  assert.ok(clock.sleeps.length > 18, `${clock.sleeps.length} sleeps`);
});

Deno.test("Pacer sleeps at least 1 ms and rounds a wait up to whole ms (fake clock)", async () => {
  const clock = new FakeClock();
  const pacer = clock.pacer(1_000_000, 1_000);
  await pacer.take(1_000);
  // 1 500 B cost 1.5 ms: one sleep of 2 ms, which also refills 500 B ahead.
  assert.equal(await send(pacer, clock, 1, 1_500), 2);
  // 100 B more are covered by those 500 B: no sleep.
  assert.equal(await send(pacer, clock, 1, 100), 0);
  // 401 B then owe 1 B, 0.001 ms: one sleep of the 1 ms minimum.
  assert.equal(await send(pacer, clock, 1, 401), 1);
  assert.deepEqual(clock.sleeps, [2, 1]);
});

Deno.test("Pacer holds a sender to its rate on the real clock once the burst is spent", async () => {
  const rate = 20 << 20; // 20 MiB/s
  const pacer = new Pacer({ bytesPerSecond: rate, burstBytes: 64 << 10 });
  const t0 = performance.now();
  const total = 4 << 20;
  for (let sent = 0; sent < total; sent += 256 << 10) {
    await pacer.take(256 << 10);
  }
  const seconds = (performance.now() - t0) / 1000;
  // 4 MiB minus one burst at 20 MiB/s needs at least ~0.19 s; timers only
  // ever make it later (the fake-clock tests check the upper bound).
  assert.ok(
    seconds >= ((total - (64 << 10)) / rate) * 0.95,
    `finished too fast: ${seconds}s`,
  );
  assert.ok(pacer.waitedMs > 0);
});

Deno.test("Pacer rejects a rate that is not positive", () => {
  assert.throws(
    () => new Pacer({ bytesPerSecond: 0 }),
    /Invalid pacing rate "0"/,
  );
  assert.throws(
    () => new Pacer({ bytesPerSecond: -5 }),
    /Invalid pacing rate "-5"/,
  );
  assert.throws(
    () => new Pacer({ bytesPerSecond: NaN }),
    /Invalid pacing rate "NaN"/,
  );
});
