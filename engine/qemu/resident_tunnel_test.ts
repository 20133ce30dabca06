/**
 * The resident tunnel between two real, kernel-less QEMUs (TCG, 64 MiB):
 * both tunnel processes start once and carry two migrations, each checked
 * by the sender's own digest comparison, each destination running.
 */

import assert from "node:assert/strict";
import { migrateQemu } from "./policy_driver.ts";
import { bareQemu, SWITCH_AT_ONCE } from "./_bare_qemu.ts";
import {
  startResidentReceiver,
  startResidentSender,
} from "./resident_tunnel.ts";
import { qemuBinary } from "./stream/_capture.ts";
import { generateCredentials } from "../transport/secure/generate.ts";

Deno.test({
  name:
    "resident tunnel: two QEMU migrations through the same two tunnel processes, each verified by the sender, each destination running",
  ignore: qemuBinary() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    // Both tunnels authenticate: a PSK source admitted by name.
    await generateCredentials(`${dir}/pki`, {
      receiverNames: ["127.0.0.1"],
      sourceIdentity: "resident-src",
    });
    const receiver = await startResidentReceiver({
      listen: `127.0.0.1:${port}`,
      incoming: `${dir}/in.sock`,
      security: { tlsDir: `${dir}/pki`, tlsAuthz: ["resident-src"] },
    });
    const sender = await startResidentSender({
      socket: `${dir}/out.sock`,
      to: `127.0.0.1:${port}`,
      codecs: ["zero", "zstd"],
      security: { tlsDir: `${dir}/pki`, tlsIdentity: "resident-src" },
    });
    try {
      for (const run of [1, 2]) {
        const src = await bareQemu(`${dir}/src${run}.qmp`);
        const dst = await bareQemu(`${dir}/dst${run}.qmp`, [
          "-incoming",
          "defer",
        ]);
        try {
          await dst.qmp.migrateIncoming(receiver.incomingUri);
          const report = await migrateQemu({
            plan: SWITCH_AT_ONCE,
            source: src.qmp,
            destination: dst.qmp,
            uri: sender.uri,
            verify: () => sender.verdict(30_000),
          });
          assert.equal(report.status, "completed", report.outcome);
          assert.equal(report.verification, "stream-digest");
          assert.equal(report.verified, true, report.outcome);
          assert.equal(report.destinationStatus, "running");
          const line = await receiver.next(10_000);
          assert.equal(line?.ok, true, JSON.stringify(line));
          assert.equal(line?.session, run);
          assert.equal(line?.digest, report.digest);
        } finally {
          await src.stop();
          await dst.stop();
        }
      }
    } finally {
      await sender.close();
      await receiver.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

Deno.test({
  name:
    "resident tunnel: startResidentReceiver resolves once the receiver listens (its JSON listening line, printed at once), so a sender connects at the first try",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
    const port = freePort();
    const receiver = await startResidentReceiver({
      listen: `127.0.0.1:${port}`,
      incoming: `${dir}/in.sock`,
      security: { insecurePlain: true },
    });
    try {
      // No retry: the listener is there when the promise resolves.
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
    } finally {
      await receiver.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/**
 * A stand-in for the tunnel process (`command`): prints what a resident
 * receiver prints, `lines` after `delay` seconds, all in one write.
 */
function fakeTunnel(delay: number, lines: readonly object[]): string[] {
  const text = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
  return [
    "bash",
    "-c",
    `printf '%s\\n' '{"listening":"127.0.0.1:1"}'; sleep ${delay}; printf '%s' '${text}'; sleep 30`,
    "fake-tunnel",
  ];
}

Deno.test({
  name:
    "resident tunnel: next() loses no line, neither one that came after a next() timed out nor two that came in one write",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const receiver = await startResidentReceiver({
      command: fakeTunnel(0.4, [
        { ok: true, session: 1 },
        { ok: true, session: 2 },
      ]),
      listen: "127.0.0.1:1",
      incoming: "/nonexistent/in.sock",
      security: { insecurePlain: true },
    });
    try {
      // Times out before the lines come: the read it started must not
      // take them away from the next call.
      assert.equal(await receiver.next(50), null);
      assert.deepEqual(await receiver.next(5000), { ok: true, session: 1 });
      assert.deepEqual(await receiver.next(5000), { ok: true, session: 2 });
      assert.equal(await receiver.next(50), null);
    } finally {
      await receiver.close();
    }
  },
});
