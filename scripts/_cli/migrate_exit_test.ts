import assert from "node:assert/strict";
import {
  CommitUnknownError,
  LinkLostError,
  MigrationError,
} from "../../engine/errors.ts";
import { XenMigrateError } from "../../engine/xen/migrate_domain.ts";
import { exitCodeOfError } from "./migrate.ts";

Deno.test("hakobu migrate's exit code on failure: 3 only when the source's VM may not run on, else 1", () => {
  // COMMIT went out and nobody knows whether the receiver committed: the
  // VM stays paused at the source, and scripts must not restart it blindly.
  assert.equal(
    exitCodeOfError(
      new CommitUnknownError("Outcome unknown", {
        receiver: "10.0.0.2:4444",
        session: "ab".repeat(16),
      }),
    ),
    3,
  );
  // Xen's final handshake failed after "go": the domain was not resumed.
  assert.equal(exitCodeOfError(new XenMigrateError("x", false)), 3);
  // Every other failure leaves the VM running at the source.
  assert.equal(exitCodeOfError(new XenMigrateError("x", true)), 1);
  assert.equal(
    exitCodeOfError(
      new LinkLostError("lost", {
        side: "receiver",
        peer: null,
        phase: "round 1",
      }),
    ),
    1,
  );
  assert.equal(exitCodeOfError(new MigrationError("x")), 1);
  assert.equal(exitCodeOfError(new Error("x")), 1);
  assert.equal(exitCodeOfError("a string"), 1);
});
