/**
 * The lab's real guests migrated THROUGH HAKOBU: a memcached guest and a
 * PostgreSQL guest, each under its in-guest load, go from a source QEMU
 * (`migrate "exec:deno run -A scripts/tunnel.ts qemu send --to … --codecs
 * zero,dedup,lz4"`) across the hakobu tunnel to a destination QEMU listening
 * on `-incoming defer` + `migrate-incoming "exec:… tunnel.ts qemu receive
 * --listen …"`, driven by `migrateQemu` under a compiled hakobu policy. The
 * memcached case runs a second time through the CLI (`hakobu migrate --from
 * qemu:SOCKET --to HOST:PORT --policy FILE`).
 *
 * Each case checks: QEMU says `completed`; the destination's in-guest checker
 * answers `ok` (memcached's 1000 keys, postgres's table md5, the 16 MiB blob)
 * and data written from the host before the migration reads back through the
 * app's port; the destination's uptime advances; the source is in
 * `postmigrate` and then quits; both tunnel ends report `ok` and the receiver
 * `verified` (SHA-256 of the rebuilt QEMU stream).
 *
 * Loopback only (no namespaces). Skipped when QEMU or the lab's packages are
 * absent. Builds the lab images when they are not cached. About 2 minutes 10 s
 * on 2 shared cores, most of it booting the guests under TCG (postgres ~40 s).
 * A case whose destination guest crashes, hangs or goes silent after a
 * verified stream (a QEMU/TCG fault that QEMU's own `tcp:` transport shows
 * too; see guest_fault.ts and docs/qemu-lab.md) is retried, 3 tries in all.
 */

import assert from "node:assert/strict";
import { codec, compile, policy, when } from "../../dsl/mod.ts";
import type { Plan } from "../../engine/plan.ts";
import { migrateQemu } from "../../engine/qemu/policy_driver.ts";
import { execTunnel } from "../../engine/qemu/exec_tunnel.ts";
import { generateCredentials } from "../../engine/transport/secure/generate.ts";
import { QmpClient } from "../../engine/qemu/qmp.ts";
import { guestFailure, retryingTcgFaults } from "./guest_fault.ts";
import { type Pair, startPair } from "./qemu_pair.ts";
import {
  buildLab,
  checkerUptime,
  expectedPostgresDigest,
  freePort,
  type Guest,
  type LabApp,
  labUnavailable,
  qemuPid,
} from "./qemu_guest.ts";

const why = await labUnavailable().catch((e) => String(e));
if (why) console.warn(`skipping QEMU tunnel lab tests: ${why}`);

const DENO = Deno.execPath();
const TUNNEL = `${new URL("../tunnel.ts", import.meta.url).pathname} qemu`;
const CLI = new URL("../hakobu.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;
const CODECS = "zero,dedup,lz4";
const PSQL = ["/usr/lib/postgresql/15/bin/psql", "/usr/bin/psql"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

function tunnelPlan(): Plan {
  return compile(
    policy("tunnel-lab")
      .codec([codec.zero(), codec.dedup(), codec.lz4()])
      // three live rounds, then stop-and-copy (the lab pads guest RAM so
      // QEMU 7.2's TCG dirty tracking holds; see TCG_RAM_PAD_KIB)
      .switchover(when.rounds(3)),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The tunnel's one JSON stats line from a stderr log (waits for it). */
async function tunnelStats(
  path: string,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>> {
  const until = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < until) {
    text = await Deno.readTextFile(path).catch(() => "");
    const line = text.trim().split("\n").reverse().find((l) =>
      l.startsWith("{")
    );
    if (line) return JSON.parse(line);
    await sleep(200);
  }
  throw new Error(`No tunnel stats in ${path} after ${timeoutMs} ms: ${text}`);
}

/** One memcached text-protocol exchange with the guest's app port. */
async function memcached(port: number, request: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(65536);
    let out = "";
    const until = Date.now() + 15_000;
    while (!/(END|STORED|ERROR)\r\n$/.test(out) && Date.now() < until) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += new TextDecoder().decode(buf.subarray(0, n));
    }
    return out;
  } finally {
    conn.close();
  }
}

/** One psql query against the guest's app port. */
async function psql(port: number, sql: string): Promise<string> {
  const out = await new Deno.Command(PSQL!, {
    args: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-qAt"]
      .concat(["-c", sql, "postgres"]),
    env: { PGCONNECT_TIMEOUT: "15" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `psql failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text;
}

/** Writes a marker through the app's own protocol on the source. */
async function writeMarker(app: LabApp, g: Guest, marker: string) {
  if (app === "memcached") {
    const r = await memcached(
      g.appPort,
      `set hakobu-tunnel 0 0 ${marker.length}\r\n${marker}\r\n`,
    );
    assert.match(r, /STORED/);
  } else if (PSQL) {
    await psql(
      g.appPort,
      `create table tunnel_marker as select '${marker}'::text as m`,
    );
  }
}

/** Reads the marker back through the app on the destination. */
async function assertMarker(app: LabApp, g: Guest, marker: string) {
  if (app === "memcached") {
    const r = await memcached(g.appPort, "get hakobu-tunnel\r\n");
    assert.equal(
      r,
      `VALUE hakobu-tunnel 0 ${marker.length}\r\n${marker}\r\nEND\r\n`,
    );
  } else if (PSQL) {
    assert.equal(
      await psql(g.appPort, "select m from tunnel_marker"),
      marker,
    );
  }
}

async function waitStatus(
  qmp: QmpClient,
  want: string,
  timeoutMs: number,
): Promise<string> {
  const until = Date.now() + timeoutMs;
  let s = "";
  while (Date.now() < until) {
    s = ((await qmp.execute("query-status")) as { status: string }).status;
    if (s === want) break;
    await sleep(100);
  }
  return s;
}

/** Asks the destination's checker; throws with the evidence unless `ok`. */
async function destinationCheck(pair: Pair, recvLog: string): Promise<string> {
  const answer = await pair.destination.check(30_000);
  if (answer.startsWith("ok")) return answer;
  const recv = await tunnelStats(recvLog, 5000).catch(() => null);
  throw await guestFailure({
    answer,
    guest: pair.destination,
    qmp: pair.dst,
    // the receiver matched the source QEMU's length and SHA-256
    streamIntact: recv?.verified === true,
    extra: `receiver: ${JSON.stringify(recv)}`,
  });
}

/** The checks every case ends with, once QEMU said completed. */
async function assertMigrated(
  app: LabApp,
  pair: Pair,
  marker: string,
  recvLog: string,
  sendLog: string | null,
) {
  // destination answers with its data intact
  const answer = await destinationCheck(pair, recvLog);
  if (app === "memcached") {
    assert.match(answer, /^ok keys=1000\/1000 blob=ok uptime=/);
  } else {
    assert.match(
      answer,
      new RegExp(`^ok rows=20000 ${expectedPostgresDigest()} blob=ok uptime=`),
    );
  }
  await assertMarker(app, pair.destination, marker);
  // the destination runs: its uptime advances
  await sleep(1500);
  const later = await destinationCheck(pair, recvLog);
  assert.ok(
    checkerUptime(later) > checkerUptime(answer),
    `${answer} -> ${later}`,
  );
  // both tunnel ends finished cleanly, the rebuilt stream verified
  const recv = await tunnelStats(recvLog);
  console.log(
    `  tunnel: stream ${mb(recv.streamBytes)} -> wire ${
      mb(recv.wireBytes)
    }, ${recv.pages} pages + ${recv.zeroPages} zero, ${recv.rounds} rounds, codecs ${
      JSON.stringify(recv.codecPages)
    }, receiver verified=${recv.verified}`,
  );
  assert.equal(recv.ok, true, JSON.stringify(recv));
  assert.equal(recv.verified, true);
  assert.equal(recv.fallbackReason, null);
  assert.ok((recv.pages as number) > 0);
  assert.ok((recv.zeroPages as number) > 0);
  if (sendLog) {
    const send = await tunnelStats(sendLog);
    assert.equal(send.ok, true, JSON.stringify(send));
    assert.equal(send.fallbackReason, null);
    assert.equal(send.streamBytes, recv.streamBytes);
    assert.equal(send.wireBytes, recv.wireBytes);
    assert.deepEqual(send.codecPages, recv.codecPages);
    // each end compared the two digests itself, and they agree
    assert.equal(send.verified, true);
    assert.equal(send.digest, recv.digest);
    assert.equal(send.peerDigest, recv.digest);
    assert.equal(recv.peerDigest, send.digest);
  }
  // the compressing chain earned its keep: fewer bytes on the wire
  assert.ok(
    (recv.wireBytes as number) < (recv.streamBytes as number),
    `wire ${recv.wireBytes} >= stream ${recv.streamBytes}`,
  );
  // the source is gone: postmigrate, then quit; the destination carries on
  assert.equal(
    await waitStatus(pair.src, "postmigrate", 10_000),
    "postmigrate",
  );
  await pair.src.quit();
  const exited = await Promise.race([
    pair.source.status.then(() => true),
    sleep(15_000).then(() => false),
  ]);
  assert.ok(exited, "source QEMU did not exit after quit");
  await destinationCheck(pair, recvLog);
}

function mb(n: unknown): string {
  return `${((n as number) / 1e6).toFixed(1)} MB`;
}

interface CaseOptions {
  readonly app: LabApp;
  readonly memMiB: number;
  /** Drive the source with `hakobu migrate` instead of `migrateQemu`. */
  readonly cli?: boolean;
  readonly warmupS?: number;
}

async function tunnelCase(o: CaseOptions): Promise<void> {
  const t0 = performance.now();
  const img = await buildLab(o.app);
  const logs = await Deno.makeTempDir({ prefix: "hakobu-tunnel-lab-" });
  const recvLog = `${logs}/recv.log`;
  const port = freePort();
  // Authentication on, as users run it: a fresh CA, the receiving tunnel's
  // certificate for 127.0.0.1, the sender's client certificate, and an
  // allow-list that admits only that sender.
  const pki = `${logs}/pki`;
  await generateCredentials(pki, {
    receiverNames: ["127.0.0.1"],
    sourceIdentity: "lab-source",
  });
  const incoming =
    `exec:${DENO} run -A ${TUNNEL} receive --listen 127.0.0.1:${port} --tls-dir ${pki} --tls-authz lab-source 2>${recvLog}`;
  const pair = await startPair({
    app: o.app,
    memMiB: o.memMiB,
    incomingUri: incoming,
    warmupS: o.warmupS,
  });
  try {
    console.log(
      `  ${o.app} ${o.memMiB} MiB: image ${
        img.built ? `built in ${(img.buildMs / 1000).toFixed(1)} s` : "cached"
      }, source ready in ${(pair.bootMs / 1000).toFixed(1)} s`,
    );
    const marker = `hakobu-${o.app}-${Date.now()}`;
    await writeMarker(o.app, pair.source, marker);
    if (o.cli) {
      const policyFile = `${logs}/policy.ts`;
      const mod = new URL("../../mod.ts", import.meta.url).href;
      await Deno.writeTextFile(
        policyFile,
        `import { codec, policy, when } from "${mod}";\n` +
          `export default policy("tunnel-lab-cli")\n` +
          `  .codec([codec.zero(), codec.dedup(), codec.lz4()])\n` +
          `  .switchover(when.rounds(1));\n`,
      );
      // QEMU serves one QMP client at a time: let the CLI have the socket
      pair.src.close();
      const out = await new Deno.Command(DENO, {
        args: [
          "run",
          "-A",
          CLI,
          "migrate",
          "--tls-dir",
          pki,
          "--from",
          `qemu:${pair.source.qmpPath}`,
          "--to",
          `127.0.0.1:${port}`,
          "--policy",
          policyFile,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `hakobu migrate failed:\n${stdout}\n${stderr}`);
      assert.match(stderr, /migrating through the hakobu tunnel/);
      assert.match(stdout, /policy\s+tunnel-lab-cli/);
      assert.match(stdout, /^rounds\s+2 \(1 live \+ stop-and-copy\)/m);
      assert.match(
        stdout,
        /^result\s+VERIFIED \(the rebuilt stream's XXH3-128 matches the source's, on both ends\)/m,
      );
      assert.match(stdout, /^tunnel\s+\d+ bytes on the hakobu wire/m);
      console.log(
        stdout.split("\n").filter((l) =>
          /^(result|rounds|total time|downtime|wire bytes)/.test(l)
        ).map((l) => `  cli | ${l}`).join("\n"),
      );
      assert.equal(
        await waitStatus(pair.dst, "running", 30_000),
        "running",
      );
      const srcQmp = await QmpClient.connect(pair.source.qmpPath);
      const info = await srcQmp.queryMigrate();
      assert.equal(info.status, "completed");
      // reuse the pair's checks with a fresh QMP session on the source
      await assertMigrated(
        o.app,
        { ...pair, src: srcQmp },
        marker,
        recvLog,
        // the CLI's sender writes its stats to QEMU's stderr (not captured)
        null,
      );
      srcQmp.close();
    } else {
      // qemuPid() misses a QEMU spawned outside a namespace (Deno puts the
      // resolved path in argv[0]); on loopback the child is QEMU itself
      const pid = (await qemuPid(pair.source.qmpPath)) ?? pair.source.pid;
      const tunnel = await execTunnel({
        to: `127.0.0.1:${port}`,
        codecs: CODECS.split(","),
        security: { tlsDir: pki },
      });
      const report = await migrateQemu({
        plan: tunnelPlan(),
        source: pair.src,
        destination: pair.dst,
        uri: tunnel.uri,
        sourcePids: [pid],
        vm: `lab ${o.app} ${o.memMiB} MiB`,
        timeoutMs: 240_000,
        verify: () => tunnel.verdict(),
      });
      console.log(
        `  migrated: ${report.status}, ${report.totalTimeMs} ms total, ${report.downtimeMs} ms downtime, ${
          mb(report.wireBytes)
        } into the tunnel, ${report.rounds.length} rounds, source CPU ${
          report.sourceCpuSeconds.toFixed(2)
        } s`,
      );
      assert.equal(report.status, "completed", report.outcome);
      assert.equal(report.error, null);
      assert.equal(report.verified, true, report.outcome);
      assert.equal(report.verification, "stream-digest");
      assert.equal(report.digest, tunnel.stats?.digest);
      assert.equal(report.destinationStatus, "running");
      assert.equal(report.sourceStatus, "postmigrate");
      assert.ok(report.rounds.length >= 2);
      assert.equal(report.rounds.at(-1)!.final, true);
      assert.ok(report.memoryBytes >= o.memMiB * 1024 * 1024);
      assert.ok(report.uri.startsWith("exec:"));
      // QEMU plus its reaped `exec:` tunnel sender
      assert.ok(report.sourceCpuSeconds > 0);
      await assertMigrated(o.app, pair, marker, recvLog, tunnel.statsFile);
    }
    console.log(
      `  ${o.app}${o.cli ? " (CLI)" : ""} took ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  } finally {
    await pair.close();
    await Deno.remove(logs, { recursive: true }).catch(() => {});
  }
}

for (
  const c of [
    { app: "memcached", memMiB: 256 },
    { app: "memcached", memMiB: 256, cli: true },
    { app: "postgres", memMiB: 512, warmupS: 5 },
  ] satisfies CaseOptions[]
) {
  Deno.test({
    name:
      `tunnel lab: a ${c.app} guest under load migrates through the hakobu tunnel (${CODECS})${
        "cli" in c ? " via `hakobu migrate`" : " under migrateQemu"
      }, data intact, source gone`,
    ignore: why !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await retryingTcgFaults(() => tunnelCase(c));
    },
  });
}
