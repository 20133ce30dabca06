import assert from "node:assert/strict";
import { MiB, policy, when } from "../dsl/mod.ts";
import type { ChannelRoundReport, RoundReport } from "./report.ts";
import {
  decidedRoundReport,
  finalRoundReport,
  type RoundTraffic,
} from "./round_report.ts";
import { Steering } from "./steering.ts";

const traffic = (over: Partial<RoundTraffic> = {}): RoundTraffic => ({
  dirtyPages: 300,
  pagesSent: 280,
  rawBytes: 280 * 4096,
  wireBytes: 100 * 4096,
  codecMix: { zero: 180, lz4: 100 },
  codecs: ["zero", "lz4", "raw"],
  durationMs: 250,
  ...over,
});

Deno.test("decidedRoundReport: the traffic as counted, the rates, pages left and decision as the steering answered", () => {
  const plan = policy("two").switchover(when.remainingBelow(1)).maxRounds(2)
    .compile();
  let t = 0;
  const steering = new Steering(plan, { memoryBytes: MiB(4), now: () => t });
  t = 500;
  const first = steering.decide({
    round: 0,
    dirtyPages: 40,
    bytesSent: 100 * 4096,
    rawBytesSent: 280 * 4096,
  });
  const r0 = decidedRoundReport(first, traffic());
  const expected: RoundReport = {
    round: 0,
    final: false,
    dirtyPages: 300,
    pagesSent: 280,
    rawBytes: 280 * 4096,
    wireBytes: 100 * 4096,
    codecMix: { zero: 180, lz4: 100 },
    codecs: ["zero", "lz4", "raw"],
    durationMs: 250,
    dirtyRate: first.stats.dirtyRate,
    sendRate: first.stats.sendRate,
    wireRate: first.stats.wireRate,
    remainingPages: 40,
    decision: "continue",
    reason: first.reason,
  };
  assert.deepEqual(r0, expected);
  assert.ok(!("channels" in r0), "no channels key when the backend has none");
  assert.equal(r0.sendRate, (280 * 4096) / 0.5); // the steering's, not the traffic's
  t = 900;
  const second = steering.decide({
    round: 1,
    dirtyPages: 40,
    bytesSent: 140 * 4096,
    rawBytesSent: 320 * 4096,
  });
  const r1 = decidedRoundReport(second, traffic({ dirtyPages: 40 }));
  // maxRounds overrode the plan's continue: the report says so
  assert.equal(r1.round, 1);
  assert.equal(r1.decision, "switchover");
  assert.equal(r1.reason, second.reason);
  assert.match(r1.reason, /reached the limit of maxRounds 2/);
  assert.equal(r1.dirtyPages, 40);
});

Deno.test("decidedRoundReport: a reconstructed decision and per-channel traffic", () => {
  const channels: ChannelRoundReport[] = [
    { pages: 200, wireBytes: 60 * 4096, codecMix: { zero: 180, lz4: 20 } },
    { pages: 80, wireBytes: 40 * 4096, codecMix: { lz4: 80 } },
  ];
  const r = decidedRoundReport({
    stats: {
      round: 4,
      dirtyPages: 7,
      dirtyRate: 1,
      sendRate: 2,
      wireRate: 3,
    },
    decision: "abort",
    reason: "abort: too slow",
  }, traffic({ channels }));
  assert.equal(r.channels, channels);
  assert.deepEqual(
    [r.round, r.dirtyRate, r.sendRate, r.wireRate, r.remainingPages],
    [4, 1, 2, 3, 7],
  );
  assert.equal(r.decision, "abort");
});

Deno.test("finalRoundReport: stop-and-copy has the traffic, no rates, nothing left", () => {
  const r = finalRoundReport(
    { round: 5, reason: "stop-and-copy after the policy's switchover" },
    traffic(),
  );
  assert.deepEqual(r, {
    round: 5,
    final: true,
    dirtyPages: 300,
    pagesSent: 280,
    rawBytes: 280 * 4096,
    wireBytes: 100 * 4096,
    codecMix: { zero: 180, lz4: 100 },
    codecs: ["zero", "lz4", "raw"],
    durationMs: 250,
    dirtyRate: 0,
    sendRate: 0,
    wireRate: 0,
    remainingPages: 0,
    decision: "final",
    reason: "stop-and-copy after the policy's switchover",
  });
});
