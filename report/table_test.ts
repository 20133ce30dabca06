import assert from "node:assert/strict";
import { migrationStatus } from "../engine/report.ts";
import { verdictLine } from "./table.ts";
import type { MigrationReport } from "../engine/report.ts";

function report(over: Partial<MigrationReport>): MigrationReport {
  return {
    verified: false,
    verification: "memory-digest",
    aborted: false,
    outcome: "",
    policy: "p",
    vm: "vm",
    memoryBytes: 4096,
    pageSize: 4096,
    bandwidth: null,
    startedAt: "2026-12-03T00:00:00.000Z",
    totalTimeMs: 1,
    downtimeMs: 1,
    verifyMs: 0,
    wireBytes: 1,
    rawBytes: 1,
    compressionRatio: 1,
    pagesSent: 1,
    sourceCpuSeconds: 0,
    sourceCpuSecondsPerGiB: 0,
    digest: "",
    gpu: { used: false, adapter: null, pagesEncoded: 0, note: "" },
    rounds: [],
    ...over,
  };
}

Deno.test("migrationStatus and verdictLine: each verification says what was compared, and only a match says VERIFIED", () => {
  const cases: [Partial<MigrationReport>, string, RegExp][] = [
    [{ verified: true }, "verified", /^VERIFIED \(memory digests match\)$/],
    [
      { verified: true, verification: "stream-digest" },
      "verified",
      /^VERIFIED \(the rebuilt stream's SHA-256 matches the source's, on both ends\)$/,
    ],
    [
      { verification: "none", outcome: "completed: QEMU reported completion" },
      "unchecked",
      /^COMPLETED, NOT CHECKED: completed: QEMU/,
    ],
    [
      {
        verification: "none",
        outcome: "failed: QEMU reported the migration failed",
      },
      "failed",
      /^NOT VERIFIED: failed/,
    ],
    [
      {
        verification: "stream-digest",
        outcome: "completed but NOT verified: the tunnel's digests differ",
      },
      "failed",
      /^NOT VERIFIED: completed but NOT verified/,
    ],
    [
      { aborted: true, outcome: "aborted by policy" },
      "aborted",
      /^ABORTED: aborted by policy$/,
    ],
  ];
  for (const [over, status, line] of cases) {
    const r = report(over);
    assert.equal(migrationStatus(r), status, JSON.stringify(over));
    assert.match(verdictLine(r), line);
  }
});
