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
import { Buffer } from "node:buffer";
import { faultProxy } from "../_fault_proxy.ts";
import { firmwareStream } from "./stream/_fixture.ts";

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

Deno.test({
  name:
    "resident tunnel: with resumeGraceMs on both ends, a link cut mid-stream between the two resident processes resumes; the destination's socket gets the captured stream byte for byte, both ends verify the same digest, and the next migration goes through the same processes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
    const fixture = firmwareStream();
    const port = freePort();
    // The first link is cut once; the reconnection, and the second
    // migration's link, are not.
    const proxy = faultProxy(port, [
      { kind: "cut", direction: "up", afterBytes: 60_000 },
    ]);
    const plain = { insecurePlain: true } as const;
    const receiver = await startResidentReceiver({
      listen: `127.0.0.1:${port}`,
      incoming: `${dir}/in.sock`,
      resumeGraceMs: 20_000,
      security: plain,
    });
    const sender = await startResidentSender({
      socket: `${dir}/out.sock`,
      to: `127.0.0.1:${proxy.port}`,
      codecs: ["zero"],
      channels: 2,
      // slow enough for the cut to come mid-stream
      bandwidth: 400_000,
      resumeGraceMs: 20_000,
      security: plain,
    });
    // The destination QEMU's migrate-incoming socket.
    const incoming = Deno.listen({ transport: "unix", path: `${dir}/in.sock` });
    try {
      for (const run of [1, 2]) {
        const got = (async () => {
          const c = await incoming.accept();
          return new Uint8Array(await new Response(c.readable).arrayBuffer());
        })();
        // The source QEMU: its stream into the sender's socket, then EOF.
        const src = await Deno.connect({
          transport: "unix",
          path: `${dir}/out.sock`,
        });
        for (let off = 0; off < fixture.length;) {
          off += await src.write(fixture.subarray(off));
        }
        await src.closeWrite();
        await new Response(src.readable).arrayBuffer(); // the sender's close
        const line = await sender.next(30_000);
        assert.equal(line?.ok, true, JSON.stringify(line));
        assert.equal(line?.verified, true, JSON.stringify(line));
        assert.equal(
          (line?.resumes as unknown[]).length,
          run === 1 ? 1 : 0,
          JSON.stringify(line?.resumes),
        );
        const bytes = await got;
        assert.ok(
          Buffer.from(bytes).equals(Buffer.from(fixture)),
          `${bytes.length} bytes reached the destination, not the ${fixture.length} of the stream`,
        );
        const seen = await receiver.next(10_000);
        assert.equal(seen?.ok, true, JSON.stringify(seen));
        assert.equal(seen?.digest, line?.digest);
      }
      assert.ok(proxy.fired, "the link was never cut");
      // The cut link, its resumption, the second migration's link.
      assert.equal(proxy.connections.length, 3);
    } finally {
      incoming.close();
      await sender.close();
      await receiver.close();
      await proxy.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "resident tunnel: startResidentSender resolves once the sender listens (its listening line), so QEMU's connect right after succeeds, on a unix socket and on TCP",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
    // Nothing listens there: a migration would fail, the start must not.
    const to = `127.0.0.1:${freePort()}`;
    const port = freePort();
    const plain = { insecurePlain: true } as const;
    const senders = [
      await startResidentSender({
        socket: `${dir}/out.sock`,
        to,
        codecs: ["zero"],
        security: plain,
      }),
      await startResidentSender({
        serve: `127.0.0.1:${port}`,
        to,
        codecs: ["zero"],
        security: plain,
      }),
    ];
    try {
      assert.equal(senders[0].uri, `unix:${dir}/out.sock`);
      assert.equal(senders[1].uri, `tcp:127.0.0.1:${port}`);
      // No retry: the listeners are there when the promises resolve.
      const unix = await Deno.connect({
        transport: "unix",
        path: `${dir}/out.sock`,
      });
      unix.close();
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
      tcp.close();
    } finally {
      for (const s of senders) await s.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Whether this host lets us make a network namespace (`unshare -rn`, user namespaces). */
function canUnshareNet(): boolean {
  try {
    return new Deno.Command("unshare", { args: ["-rn", "true"] }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Whether `/proc/<pid>/net/tcp` (or this process's, for "self") shows a TCP listener on `port`. */
function listensIn(pid: number | "self", port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return ["tcp", "tcp6"].some((f) =>
    Deno.readTextFileSync(`/proc/${pid}/net/${f}`).split("\n").some((l) => {
      const cols = l.trim().split(/\s+/);
      return cols[1]?.endsWith(hex) && cols[3] === "0A";
    })
  );
}

Deno.test({
  name:
    "resident tunnel: a TCP sender wrapped into its own network namespace (as `ip netns exec`) starts: its readiness is its listening line, not this namespace's /proc/net/tcp, where its listener never shows",
  ignore: !canUnshareNet(),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const port = freePort();
    const sender = await startResidentSender({
      // `unshare` execs the tunnel: its pid is the tunnel's.
      wrap: ["unshare", "-rn"],
      // A new namespace's loopback is down: the wildcard still binds.
      serve: `0.0.0.0:${port}`,
      to: "127.0.0.1:1",
      codecs: ["zero"],
      security: { insecurePlain: true },
    });
    try {
      assert.ok(
        listensIn(sender.pid, port),
        "the sender's namespace has no listener on its port",
      );
      assert.ok(
        !listensIn("self", port),
        "the listener shows in this namespace too: the test proves nothing",
      );
    } finally {
      await sender.close();
    }
  },
});

Deno.test({
  name:
    "resident tunnel: a sender that exits before it listens fails the start at once, with its error (a real tunnel that cannot bind its address)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t0 = performance.now();
    await assert.rejects(
      startResidentSender({
        // TEST-NET-1 (RFC 5737): no host has it.
        serve: "192.0.2.1:4000",
        to: "127.0.0.1:1",
        codecs: ["zero"],
        security: { insecurePlain: true },
      }),
      /^Error: The resident tunnel sender for "192\.0\.2\.1:4000" exited with code 1 before it listened: Cannot assign requested address/,
    );
    const ms = performance.now() - t0;
    // The default wait is 20 s: failing at once is well under it.
    assert.ok(ms < 15_000, `the failed start took ${Math.round(ms)} ms`);
  },
});

Deno.test({
  name:
    "resident tunnel: a start names what did not come: the exit status and stderr of a process that died silently, the wait of one that never listens (and stops it)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t0 = performance.now();
    await assert.rejects(
      startResidentSender({
        command: ["bash", "-c", "echo 'boom: no such thing' >&2; exit 3"],
        socket: "/nonexistent/out.sock",
        to: "127.0.0.1:1",
        codecs: ["zero"],
        security: { insecurePlain: true },
      }),
      /exited with code 3 before it listened \(stderr: boom: no such thing\) \(bash -c/,
    );
    assert.ok(performance.now() - t0 < 10_000);
    const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
    try {
      await assert.rejects(
        startResidentReceiver({
          command: [
            "bash",
            "-c",
            `echo $$ > ${dir}/pid; echo 'still starting' >&2; exec sleep 30`,
          ],
          listen: "127.0.0.1:1",
          incoming: "/nonexistent/in.sock",
          startTimeoutMs: 300,
          security: { insecurePlain: true },
        }),
        /^Error: The resident tunnel receiver for "127\.0\.0\.1:1" printed no \{"listening":\.\.\.\} line within 300 ms \(stderr: still starting\)/,
      );
      // Stopped, not left behind.
      const pid = Number(await Deno.readTextFile(`${dir}/pid`));
      assert.equal(
        new Deno.Command("kill", { args: ["-0", String(pid)], stderr: "null" })
          .outputSync().success,
        false,
        `the process ${pid} still runs`,
      );
      await assert.rejects(
        startResidentSender({
          socket: `${dir}/out.sock`,
          to: "127.0.0.1:1",
          codecs: ["zero"],
          startTimeoutMs: 0,
          security: { insecurePlain: true },
        }),
        RangeError,
      );
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "resident tunnel: close() returns at once though a child the process left behind still holds its stdout and stderr",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sender = await startResidentSender({
      command: [
        "bash",
        "-c",
        `sleep 4 & echo '{"listening":"unix:/nonexistent/out.sock"}'; exec sleep 30`,
      ],
      socket: "/nonexistent/out.sock",
      to: "127.0.0.1:1",
      codecs: ["zero"],
      security: { insecurePlain: true },
    });
    const t0 = performance.now();
    await sender.close();
    const ms = performance.now() - t0;
    assert.ok(ms < 3000, `close() took ${Math.round(ms)} ms`);
  },
});
