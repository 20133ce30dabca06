import assert from "node:assert/strict";
import { type MigrationReport, migrationStatus } from "../engine/report.ts";
import { formatRoundTable, formatSummary, verdictLine } from "./table.ts";
import { sampleReport } from "./_sample_report.ts";

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

Deno.test("verdictLine: each verification says what was compared, only a match says VERIFIED, and the line agrees with migrationStatus", () => {
  const cases: [Partial<MigrationReport>, string, RegExp][] = [
    [{ verified: true }, "verified", /^VERIFIED \(memory digests match\)$/],
    [
      { verified: true, verification: "stream-digest" },
      "verified",
      /^VERIFIED \(the rebuilt stream's XXH3-128 matches the source's, on both ends\)$/,
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

/** The cells of a cli-table3 table, row by row, without the box drawing. */
function cells(table: string): string[][] {
  return table.split("\n")
    .filter((line) => line.startsWith("│"))
    .map((line) => line.split("│").slice(1, -1).map((c) => c.trim()));
}

Deno.test("formatRoundTable: one row per round under the header, the stop-and-copy round labelled and without rates", () => {
  const report = sampleReport(3);
  const rows = cells(formatRoundTable(report));
  assert.equal(rows.length, 1 + report.rounds.length);
  assert.equal(rows[0].length, 11);
  assert.deepEqual(rows.map((r) => r[0]), [
    "round",
    "0",
    "1",
    "2",
    "3 (stop)",
  ]);
  const stop = rows[4];
  assert.deepEqual(stop.slice(7), ["-", "-", "0", "final"]);
  assert.deepEqual(rows[1].slice(7, 9), ["800.0 Mbit/s", "160.0 Mbit/s"]);
});

Deno.test("formatSummary: an unpaced link, a hypervisor's own transport and no digest read as such", () => {
  const text = formatSummary(sampleReport(2, {
    bandwidth: null,
    verified: false,
    verification: "none",
    outcome: "completed: QEMU reported completion",
    digest: "",
  }));
  const lines = new Map(
    text.split("\n").map((l) => [l.slice(0, 10).trim(), l.slice(12)]),
  );
  assert.equal(
    lines.get("result"),
    "COMPLETED, NOT CHECKED: completed: QEMU reported completion",
  );
  assert.equal(lines.get("link"), "unpaced");
  assert.equal(lines.get("digest"), "-");
  assert.equal(lines.get("rounds"), "3 (2 live + stop-and-copy)");
});

Deno.test("formatSummary: the backend and its notes get a line each under their labels, aligned with the rest", () => {
  const text = formatSummary({
    ...sampleReport(),
    backend: "qemu",
    notes: {
      tunnel: "123 bytes on the hakobu wire for a 456-byte QEMU stream",
    },
  });
  assert.match(text, /^backend {5}qemu$/m);
  assert.match(text, /^tunnel {6}123 bytes on the hakobu wire/m);
  // A report without them (older JSON) prints neither.
  assert.doesNotMatch(formatSummary(sampleReport()), /^(backend|tunnel) /m);
});

Deno.test("formatSummary: a migration that resumed says how often, and what each resume took", () => {
  const resume = {
    round: 0,
    reason: "The receiver 127.0.0.1:4444 reset the connection during round 0",
    attempts: 1,
    downMs: 412,
    wireBytesBefore: 1 << 20,
    pagesMissing: 3021,
    pagesDirtied: 12,
    pagesToSend: 3030,
  };
  assert.match(
    formatSummary({ ...sampleReport(), resumes: [resume] }),
    /^resumed {5}1 time after a lost link: round 0, down 412(\.0)? ms, 3021 pages missing \+ 12 dirtied sent again$/m,
  );
  assert.match(
    formatSummary({
      ...sampleReport(),
      resumes: [resume, { ...resume, round: 2 }],
    }),
    /^resumed {5}2 times after a lost link: round 0, .*; round 2, /m,
  );
  assert.doesNotMatch(formatSummary(sampleReport()), /^resumed /m);
});
