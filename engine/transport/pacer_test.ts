import assert from "node:assert/strict";
import { Pacer } from "./pacer.ts";

Deno.test("Pacer holds a sender to its rate once the burst is spent", async () => {
  const rate = 20 << 20; // 20 MiB/s
  const pacer = new Pacer({ bytesPerSecond: rate, burstBytes: 64 << 10 });
  const t0 = performance.now();
  const total = 4 << 20;
  for (let sent = 0; sent < total; sent += 256 << 10) {
    await pacer.take(256 << 10);
  }
  const seconds = (performance.now() - t0) / 1000;
  // 4 MiB minus one burst at 20 MiB/s needs at least ~0.19 s; timers only ever make it later.
  assert.ok(
    seconds >= ((total - (64 << 10)) / rate) * 0.95,
    `finished too fast: ${seconds}s`,
  );
  assert.ok(pacer.waitedMs > 0);
});

Deno.test("Pacer lets a burst through without waiting", async () => {
  const pacer = new Pacer({ bytesPerSecond: 1 << 20, burstBytes: 1 << 20 });
  await pacer.take(512 << 10);
  assert.equal(pacer.waitedMs, 0);
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
