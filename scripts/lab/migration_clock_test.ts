/**
 * The bench's clock on two real, kernel-less QEMUs (TCG, 64 MiB): the
 * source runs its firmware, the destination waits with `-incoming defer`.
 */

import assert from "node:assert/strict";
import { migrateQemu } from "../../engine/qemu/policy_driver.ts";
import { QmpClient } from "../../engine/qemu/qmp.ts";
import type { Plan } from "../../engine/plan.ts";
import { freePort } from "./qemu_guest.ts";
import { watchMigration } from "./migration_clock.ts";

const HAVE_QEMU = new Deno.Command("sh", {
  args: ["-c", "command -v qemu-system-x86_64"],
  stdout: "null",
}).outputSync().success;

async function bare(dir: string, name: string, extra: string[]) {
  const sock = `${dir}/${name}.qmp`;
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-accel",
      "tcg",
      "-m",
      "64",
      "-nodefaults",
      "-display",
      "none",
      "-qmp",
      `unix:${sock},server=on,wait=off`,
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const qmp = await QmpClient.connect(sock, { timeoutMs: 15_000 });
  return {
    qmp,
    async stop() {
      qmp.close();
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    },
  };
}

const plan: Plan = {
  name: "now",
  codecsFor: () => [],
  decide: () => "switchover",
  bandwidth: null,
  batchPages: 256,
  maxRounds: 30,
  gpu: { batch: 8192, prefer: "cpu", require: false },
};

Deno.test({
  name:
    "watchMigration: times start, source STOP and destination RESUME of a real migration",
  ignore: !HAVE_QEMU,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-clock-" });
    const src = await bare(dir, "src", []);
    const dst = await bare(dir, "dst", ["-incoming", "defer"]);
    try {
      const uri = `tcp:127.0.0.1:${freePort()}`;
      await dst.qmp.migrateIncoming(uri);
      const clock = watchMigration(src.qmp, dst.qmp);
      const before = Date.now();
      const report = await migrateQemu({ plan, source: src.qmp, uri });
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
    const src = await bare(dir, "src", []);
    try {
      const clock = watchMigration(src.qmp, src.qmp);
      const report = await migrateQemu({
        plan,
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
