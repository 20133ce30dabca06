/**
 * The bench's clock on two real, kernel-less QEMUs (TCG, 64 MiB): the
 * source runs its firmware, the destination waits with `-incoming defer`.
 */

import assert from "node:assert/strict";
import { migrateQemu } from "../../engine/qemu/policy_driver.ts";
import { bareQemu, SWITCH_AT_ONCE } from "../../engine/qemu/_bare_qemu.ts";
import { qemuBinary } from "../../engine/qemu/stream/_capture.ts";
import { freePort } from "./qemu_guest.ts";
import { watchMigration } from "./migration_clock.ts";

const HAVE_QEMU = qemuBinary() !== null;

Deno.test({
  name:
    "watchMigration: times start, source STOP and destination RESUME of a real migration",
  ignore: !HAVE_QEMU,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-clock-" });
    const src = await bareQemu(`${dir}/src.qmp`);
    const dst = await bareQemu(`${dir}/dst.qmp`, ["-incoming", "defer"]);
    try {
      const uri = `tcp:127.0.0.1:${freePort()}`;
      await dst.qmp.migrateIncoming(uri);
      const clock = watchMigration(src.qmp, dst.qmp);
      const before = Date.now();
      const report = await migrateQemu({
        plan: SWITCH_AT_ONCE,
        source: src.qmp,
        uri,
      });
      assert.equal(report.status, "completed");
      const t = await clock.result(30_000);
      const after = Date.now();
      assert.ok(before - 50 <= t.startMs, `${before} <= ${t.startMs}`);
      assert.ok(t.startMs <= t.stopMs && t.stopMs <= t.resumeMs);
      assert.ok(t.resumeMs <= after + 50);
      assert.equal(t.totalMs, t.resumeMs - t.startMs);
      assert.equal(t.downtimeMs, t.resumeMs - t.stopMs);
      assert.equal((await dst.qmp.queryStatus()).status, "running");
    } finally {
      await src.stop();
      await dst.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "watchMigration: a migration that never resumes names the missing event",
  ignore: !HAVE_QEMU,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-clock-" });
    const src = await bareQemu(`${dir}/src.qmp`);
    try {
      const clock = watchMigration(src.qmp, src.qmp);
      const report = await migrateQemu({
        plan: SWITCH_AT_ONCE,
        source: src.qmp,
        uri: "exec:cat > /dev/null",
      });
      assert.equal(report.status, "completed");
      await assert.rejects(
        clock.result(300),
        /Migration events missing after 300 ms: destination RESUME/,
      );
    } finally {
      await src.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
