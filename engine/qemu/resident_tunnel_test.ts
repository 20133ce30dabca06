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
