import assert from "node:assert/strict";
import { channelCounts } from "./bench_qemu.ts";

Deno.test("bench:qemu --tunnel-channels: one count or several, each from 1 to 64, distinct", () => {
  assert.deepEqual(channelCounts("2"), [2]);
  assert.deepEqual(channelCounts("1,2,4"), [1, 2, 4]);
  assert.throws(() => channelCounts("0"), /from 1 to 64, got "0"/);
  assert.throws(() => channelCounts("1,x"), /got "x"/);
  assert.throws(() => channelCounts("65"), /from 1 to 64/);
  assert.throws(
    () => channelCounts("2,2"),
    /distinct channel counts, got "2,2"/,
  );
});
