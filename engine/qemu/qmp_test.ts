/**
 * Tests of the QMP client and the policy driver against a real, kernel-less
 * QEMU (`-S`, 64 MiB, TCG). Skipped when `qemu-system-x86_64` is absent.
 */

import assert from "node:assert/strict";
import type { Plan, RoundStats } from "../plan.ts";
import {
  cpuSeconds,
  migrateQemu,
  type StreamVerdict,
} from "./policy_driver.ts";
import { QmpClient, QmpError, type QmpEvent } from "./qmp.ts";
import { type BareQemu, bareQemu } from "./_bare_qemu.ts";
import { qemuBinary } from "./stream/_capture.ts";

const HAVE_QEMU = qemuBinary() !== null;
if (!HAVE_QEMU) {
  console.warn(
    `skipping QMP tests: "qemu-system-x86_64" not installed (apt-get install qemu-system-x86)`,
  );
}

/** A bare QEMU, paused (`-S`), in a folder of its own that stop() removes. */
async function pausedQemu(): Promise<BareQemu & { readonly dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "hakobu-qmp-test-" });
  const q = await bareQemu(`${dir}/qmp.sock`, ["-S"]);
  return {
    ...q,
    dir,
    async stop() {
      await q.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test({
  name: "qmp: negotiates, queries status, reports STOP/RESUME events",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      assert.match(q.qmp.version, /^\d+\.\d+\.\d+$/);
      const st = await q.qmp.queryStatus();
      assert.equal(st.running, false);
      assert.equal(st.status, "prelaunch");
      const seen: string[] = [];
      const off = q.qmp.on("*", (e: QmpEvent) => seen.push(e.event));
      const resumed = q.qmp.waitEvent("RESUME", { timeoutMs: 5000 });
      await q.qmp.execute("cont");
      await resumed;
      assert.equal((await q.qmp.queryStatus()).status, "running");
      const stopped = q.qmp.waitEvent("STOP", { timeoutMs: 5000 });
      await q.qmp.execute("stop");
      const ev = await stopped;
      assert.ok(ev.timeMs > 1e12);
      off();
      assert.deepEqual(seen.filter((e) => e === "RESUME" || e === "STOP"), [
        "RESUME",
        "STOP",
      ]);
    } finally {
      await q.stop();
    }
  },
});

Deno.test({
  name: "qmp: a failing command rejects with QEMU's error.desc",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      await assert.rejects(
        () => q.qmp.execute("no-such-command"),
        (e: unknown) =>
          e instanceof QmpError && e.command === "no-such-command" &&
          e.errorClass === "CommandNotFound" &&
          /failed: The command no-such-command has not been found/.test(
            e.message,
          ),
      );
      await assert.rejects(
        () => q.qmp.setParameters({ "xbzrle-cache-size": 12345 }),
        (e: unknown) => e instanceof QmpError && /xbzrle/i.test(e.message),
      );
      // the session survives errors
      assert.equal((await q.qmp.queryStatus()).running, false);
    } finally {
      await q.stop();
    }
  },
});

Deno.test({
  name:
    "qmp: parameters and capabilities round-trip; migrate to exec: completes with events",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      await q.qmp.setCapabilities({ events: true, xbzrle: true });
      await q.qmp.setParameters({
        "downtime-limit": 1234,
        "max-bandwidth": 1 << 30,
        "xbzrle-cache-size": 1 << 22,
      });
      const p = await q.qmp.queryParameters();
      assert.equal(p["downtime-limit"], 1234);
      assert.equal(p["max-bandwidth"], 1 << 30);
      assert.equal(p["xbzrle-cache-size"], 1 << 22);
      const statuses: string[] = [];
      q.qmp.on("MIGRATION", (e) => statuses.push(String(e.data.status)));
      const done = q.qmp.waitEvent("MIGRATION", {
        until: (e) => e.data.status === "completed",
        timeoutMs: 30_000,
      });
      await q.qmp.migrate(`exec:cat > ${q.dir}/stream`);
      await done;
      assert.ok(statuses.includes("setup") || statuses.includes("active"));
      const info = await q.qmp.queryMigrate();
      assert.equal(info.status, "completed");
      assert.ok((info.ram?.total ?? 0) >= 64 * 1024 * 1024);
      const head = (await Deno.readFile(`${q.dir}/stream`)).subarray(0, 4);
      assert.deepEqual([...head], [0x51, 0x45, 0x56, 0x4d]); // "QEVM"
      let st = (await q.qmp.queryStatus()).status;
      for (let i = 0; i < 100 && st === "finish-migrate"; i++) {
        await new Promise((r) => setTimeout(r, 50));
        st = (await q.qmp.queryStatus()).status;
      }
      assert.equal(st, "postmigrate");
    } finally {
      await q.stop();
    }
  },
});

Deno.test({
  name: "qmp: quit closes the session; pending and later commands fail clearly",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      await q.qmp.quit();
      await q.qmp.closed;
      assert.equal(q.qmp.isClosed, true);
      await assert.rejects(
        () => q.qmp.queryStatus(),
        (e: unknown) => e instanceof QmpError && /closed/.test(e.message),
      );
    } finally {
      await q.stop();
    }
  },
});

Deno.test({
  name: "qmp: connect to a missing socket fails with the path in the message",
  async fn() {
    await assert.rejects(
      () => QmpClient.connect("/nonexistent/hakobu.qmp", { timeoutMs: 200 }),
      (e: unknown) =>
        e instanceof QmpError && /"\/nonexistent\/hakobu\.qmp"/.test(e.message),
    );
  },
});

function plan(
  decide: (s: RoundStats) => "continue" | "switchover" | "abort",
): Plan {
  return {
    name: "test",
    codecsFor: () => [{ name: "zero" }, { name: "raw" }],
    decide,
    reason: (s) => `round ${s.round}`,
    bandwidth: null,
    batchPages: 256,
    maxRounds: 30,
    gpu: { batch: 8192, prefer: "cpu", require: false },
  };
}

Deno.test({
  name:
    "policy driver: a paused VM migrates to exec: and reports totals and rounds",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      const report = await migrateQemu({
        plan: plan(() => "switchover"),
        source: q.qmp,
        uri: `exec:cat > /dev/null`,
        sourcePids: [q.child.pid],
        vm: "bare 64 MiB",
      });
      assert.equal(report.status, "completed");
      // QEMU's own transport: hakobu saw none of the bytes, so it claims nothing.
      assert.equal(report.verified, false);
      assert.equal(report.verification, "none");
      assert.match(report.outcome, /^completed: .*hakobu compared nothing/);
      assert.equal(report.error, null);
      assert.equal(report.memoryBytes >= 64 * 1024 * 1024, true);
      assert.ok(report.wireBytes > 0);
      assert.ok(report.pagesSent >= report.memoryBytes / report.pageSize);
      assert.equal(report.rounds.at(-1)?.final, true);
      assert.equal(report.sourceStatus, "postmigrate");
      assert.ok(report.sourceCpuSeconds >= 0);
    } finally {
      await q.stop();
    }
  },
});

Deno.test({
  name:
    "policy driver: verified only when the stream check matched; a mismatch or a failed check is reported",
  ignore: !HAVE_QEMU,
  async fn() {
    const verdicts: [StreamVerdict | Error, boolean, RegExp][] = [
      [
        {
          verified: true,
          sourceDigest: "aa".repeat(32),
          destinationDigest: "aa".repeat(32),
          detail: "digests equal",
        },
        true,
        /^completed and verified: digests equal/,
      ],
      [
        {
          verified: false,
          sourceDigest: "aa".repeat(32),
          destinationDigest: "bb".repeat(32),
          detail: "the tunnel's digests differ",
        },
        false,
        /^completed but NOT verified: the tunnel's digests differ/,
      ],
      [
        new Error("no stats line"),
        false,
        /^completed but NOT verified: the stream check failed: no stats line/,
      ],
    ];
    for (const [verdict, verified, outcome] of verdicts) {
      const q = await pausedQemu();
      try {
        let calls = 0;
        const report = await migrateQemu({
          plan: plan(() => "switchover"),
          source: q.qmp,
          uri: `exec:cat > /dev/null`,
          verify: () => {
            calls++;
            return verdict instanceof Error
              ? Promise.reject(verdict)
              : Promise.resolve(verdict);
          },
        });
        assert.equal(report.status, "completed");
        assert.equal(calls, 1);
        assert.equal(report.verification, "stream-digest");
        assert.equal(report.verified, verified);
        assert.match(report.outcome, outcome);
        assert.equal(
          report.digest,
          verdict instanceof Error ? "" : verdict.sourceDigest,
        );
      } finally {
        await q.stop();
      }
    }
  },
});

Deno.test({
  name:
    "policy driver: a failing destination is reported, not thrown; the source stays usable",
  ignore: !HAVE_QEMU,
  async fn() {
    const q = await pausedQemu();
    try {
      await q.qmp.execute("cont");
      const report = await migrateQemu({
        plan: plan(() => "continue"),
        source: q.qmp,
        uri: `exec:exit 1`,
      });
      assert.equal(report.status, "failed");
      assert.equal(report.verified, false);
      assert.ok(report.error && report.error.length > 0);
      assert.match(report.outcome, /^failed: /);
      assert.equal(report.sourceStatus, "running");
    } finally {
      await q.stop();
    }
  },
});

Deno.test("cpuSeconds: reads /proc for live pids and ignores gone ones", () => {
  assert.ok(cpuSeconds([Deno.pid]) >= 0);
  assert.equal(cpuSeconds([2 ** 30]), 0);
});
