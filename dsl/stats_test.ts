import assert from "node:assert/strict";
import { roundSeries, roundStats } from "./stats.ts";
import { GiB, MiB } from "./units.ts";

Deno.test("roundStats defaults to round 0 of a 4 GiB VM sending every page", () => {
  const s = roundStats();
  assert.equal(s.round, 0);
  assert.equal(s.memoryBytes, GiB(4));
  assert.equal(s.pageSize, 4096);
  assert.equal(s.dirtyPages, GiB(4) / 4096);
  assert.equal(s.remainingBytes, GiB(4));
  assert.equal(s.sendRate, 0);
});

Deno.test("roundStats keeps dirtyPages and remainingBytes consistent", () => {
  assert.equal(roundStats({ remainingBytes: MiB(32) }).dirtyPages, 8192);
  assert.equal(roundStats({ dirtyPages: 10 }).remainingBytes, 40960);
  assert.equal(
    roundStats({ dirtyPages: 10, pageSize: 2 * 1024 * 1024 }).remainingBytes,
    MiB(20),
  );
});

Deno.test("roundSeries: one decision point per entry, each with the earlier ones as history", () => {
  const series = roundSeries([MiB(100), MiB(40), MiB(45)], {
    roundMs: 250,
    sendRate: 1000,
    dirtyRate: 7,
    dirtyPages: 1,
  });
  assert.deepEqual(series.map((s) => s.round), [0, 1, 2]);
  assert.deepEqual(series.map((s) => s.elapsedMs), [250, 500, 750]);
  assert.deepEqual(series.map((s) => s.dirtyPages), [25600, 10240, 11520]);
  assert.equal(series[1].sendRate, 1000);
  assert.deepEqual(series[0].history, []);
  assert.deepEqual(series[2].history, [
    { round: 0, remainingBytes: MiB(100), dirtyRate: 7, elapsedMs: 250 },
    { round: 1, remainingBytes: MiB(40), dirtyRate: 7, elapsedMs: 500 },
  ]);
  assert.ok(Object.isFrozen(series[2].history));
});
