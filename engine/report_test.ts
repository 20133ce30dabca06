import assert from "node:assert/strict";
import { type MigrationReport, migrationStatus } from "./report.ts";

type Verdict = Pick<
  MigrationReport,
  "verified" | "verification" | "aborted" | "outcome"
>;

Deno.test("migrationStatus: verified only on a match, unchecked only when nothing was compared and it completed", () => {
  const cases: [Verdict, ReturnType<typeof migrationStatus>][] = [
    [{
      verified: true,
      verification: "memory-digest",
      aborted: false,
      outcome: "migrated and verified",
    }, "verified"],
    [{
      verified: false,
      verification: "none",
      aborted: false,
      outcome: "completed: QEMU reported completion",
    }, "unchecked"],
    [{
      verified: false,
      verification: "none",
      aborted: false,
      outcome: "failed: QEMU reported the migration failed",
    }, "failed"],
    [{
      verified: false,
      verification: "stream-digest",
      aborted: false,
      outcome: "completed but NOT verified: the tunnel's digests differ",
    }, "failed"],
    [{
      verified: false,
      verification: "memory-digest",
      aborted: true,
      outcome: "aborted by policy",
    }, "aborted"],
  ];
  for (const [verdict, status] of cases) {
    assert.equal(migrationStatus(verdict), status, JSON.stringify(verdict));
  }
});
