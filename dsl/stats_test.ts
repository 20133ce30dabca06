import assert from "node:assert/strict";
import { roundStats } from "./stats.ts";
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
