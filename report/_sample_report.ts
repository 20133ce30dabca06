/**
 * A made-up {@link MigrationReport} for the tests and the doc examples of
 * this package: a 256 MiB memcached VM over a link paced at 200 Mbit/s,
 * round 0 mostly zero pages, each later round a fifth smaller, then the
 * stop-and-copy round, verified by memory digest. Round times follow from
 * bytes and send rate, and the totals from the rounds.
 *
 * @module
 */

import type { MigrationReport, RoundReport } from "../engine/report.ts";

function round(
  i: number,
  dirtyPages: number,
  extra: Partial<RoundReport> = {},
): RoundReport {
  const raw = dirtyPages * 4096;
  const sendRate = extra.sendRate ?? 25e6;
  return {
    round: i,
    final: false,
    dirtyPages,
    pagesSent: dirtyPages,
    rawBytes: raw,
    wireBytes: Math.round(raw * 1.004),
    codecMix: { raw: dirtyPages },
    codecs: ["zero", "raw"],
    durationMs: raw / sendRate * 1000,
    dirtyRate: 20e6 + i * 1e6,
    sendRate,
    wireRate: 25.1e6,
    remainingPages: Math.round(dirtyPages * 0.8),
    decision: "continue",
    reason: "continue: nothing to stop for",
    ...extra,
  };
}

/**
 * A report with `liveRounds` live rounds (round 0 dirty 65,536 pages, 57,000
 * of them zero) and the stop-and-copy round of 4,000 pages; `extra`
 * replaces any field.
 */
export function sampleReport(
  liveRounds = 4,
  extra: Partial<MigrationReport> = {},
): MigrationReport {
  const rounds: RoundReport[] = [
    round(0, 65536, {
      codecMix: { zero: 57000, raw: 8536 },
      wireBytes: 8536 * 4112 + 57000 * 16,
      sendRate: 100e6,
    }),
  ];
  for (let i = 1; i < liveRounds; i++) {
    rounds.push(round(i, Math.round(9000 * 0.8 ** i)));
  }
  rounds.push(
    round(liveRounds, 4000, {
      final: true,
      decision: "final",
      reason: "stop-and-copy",
      remainingPages: 0,
    }),
  );
  const rawBytes = rounds.reduce((s, r) => s + r.rawBytes, 0);
  const wireBytes = rounds.reduce((s, r) => s + r.wireBytes, 0);
  return {
    verified: true,
    verification: "memory-digest",
    aborted: false,
    outcome: "migrated and verified (switchover: remaining below 16 MiB)",
    policy: "test-policy",
    vm: "sim:memcached 256.00 MiB seed 1",
    memoryBytes: 256 * 2 ** 20,
    pageSize: 4096,
    bandwidth: 25e6,
    startedAt: "2026-11-27T04:00:00.000Z",
    totalTimeMs: 6900,
    downtimeMs: 700,
    verifyMs: 600,
    wireBytes,
    rawBytes,
    compressionRatio: rawBytes / wireBytes,
    pagesSent: rounds.reduce((s, r) => s + r.pagesSent, 0),
    sourceCpuSeconds: 1.25,
    sourceCpuSecondsPerGiB: 3.1,
    digest: "ab".repeat(32),
    gpu: {
      used: false,
      adapter: null,
      pagesEncoded: 0,
      note: "not used: the plan prefers the CPU",
    },
    rounds,
    ...extra,
  };
}
