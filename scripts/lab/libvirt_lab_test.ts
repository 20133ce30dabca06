/**
 * The libvirt lab end to end: start two libvirt hosts, boot a guest under
 * load on host a, live-migrate it to b with plain `virsh migrate --live
 * --p2p`, check that it runs on b with its data intact and is gone from a,
 * migrate it back through a counting TCP proxy (`--migrateuri` +
 * `--listen-address`, the route hakobu's tunnel takes), check it on a, and
 * stop the lab leaving no process, port or folder behind. Skipped (with the
 * reason) without root, libvirt or QEMU. About 20 s on 2 shared cores (45 s
 * on a loaded machine whose libvirt capability cache is cold).
 */

import assert from "node:assert/strict";
import { retryingTcgFaults } from "./guest_fault.ts";
import { freePort } from "./qemu_guest.ts";
import {
  asTcgFault,
  LibvirtLabError,
  libvirtLabProcesses,
  libvirtLabUnavailable,
  proxiedMigration,
  startLibvirtLab,
} from "./libvirt_lab.ts";

const why = await libvirtLabUnavailable().catch((e) => String(e));
if (why) console.warn(`skipping libvirt lab tests: ${why}`);

/** Ports apart from the CLI's default lab, so a human's lab is left alone. */
const PORTS: [number, number] = [16521, 16522];

Deno.test("libvirt lab: bad options fail before anything starts", async () => {
  await assert.rejects(
    () => startLibvirtLab({ ports: [16501, 16501] }),
    (e) => e instanceof LibvirtLabError && /two ports/.test(e.message),
  );
  await assert.rejects(
    () => startLibvirtLab({ migrationPorts: [[12000, 12031], [12031, 12040]] }),
    (e) => e instanceof LibvirtLabError && /disjoint/.test(e.message),
  );
  assert.throws(() => proxiedMigration(70000), LibvirtLabError);
});

Deno.test({
  name:
    "libvirt lab: a loaded guest live-migrates a -> b (virsh) and back through a proxy, data intact; stop leaves nothing",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await retryingTcgFaults(labRun);
  },
});

/**
 * A guest that crashed or hung after a migration libvirt called complete is
 * QEMU/TCG's fault (guest_fault.ts): retried. Lost data (`bad`), a guest not
 * running where it should, or any other failure fails at once.
 */

async function labRun(): Promise<void> {
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  // what a killed earlier run leaves: a process in a mount namespace with
  // host a's private /run/libvirt (as its libvirtd and QEMUs were)
  const stale = await leftover();
  const lines: string[] = [];
  const lab = await startLibvirtLab({
    ports: PORTS,
    log: (l) => {
      lines.push(l);
      console.log(`  [lab] ${l}`);
    },
  });
  assert.ok(
    lines.some((l) => /^killed \d+ processes left by an earlier run/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    (await stale.status).signal === "SIGKILL",
    "the leftover was killed",
  );
  const dir = lab.dir;
  const name = "hakobu-lab-g1";
  try {
    assert.notEqual(lab.a.hostUuid, lab.b.hostUuid);
    const g = await lab.startGuest("a", { name, dirty: "light" });
    assert.ok(g.check);
    console.log(`  guest up on a at ${secs()} s: ${g.check.line}`);
    assert.equal(await lab.domainState("a", name), "running");
    assert.deepEqual(await lab.listDomains("b"), []);

    // a -> b with plain virsh
    const markB = await lab.serialMark("b", name);
    const ab = await lab.virshMigrate(name, "a", "b");
    const onB = await lab.checkGuest("b", name, {
      since: markB,
      boot: g.check.boot,
    }).catch((e) => Promise.reject(asTcgFault(e)));
    console.log(
      `  a -> b in ${ab.ms.toFixed(0)} ms; on b at ${secs()} s: ${onB.line}`,
    );
    assert.equal(onB.status, "ok");
    assert.ok(onB.n > g.check.n, "the check counter went on, not restarted");
    assert.ok(onB.dirtiedMiB > g.check.dirtiedMiB, "the guest kept dirtying");
    assert.equal(await lab.domainState("a", name), null, "gone from a");
    assert.deepEqual(
      (await lab.listDomains("b")).map((d) => [d.name, d.state]),
      [[name, "running"]],
    );
    // the serial log is each host's own: b's holds no line from before
    assert.doesNotMatch(
      await lab.serialLog("b", name),
      new RegExp(`HAKOBU-CHECK ok ${g.check.n} `),
    );

    // b -> a through a proxy on 127.0.0.1:P forwarding to 127.0.0.2:P
    const port = freePort();
    const proxy = lab.startMigrationProxy(port);
    const markA = await lab.serialMark("a", name);
    const ba = await lab.virshMigrate(
      name,
      "b",
      "a",
      proxiedMigration(port).virshArgs,
    );
    const onA = await lab.checkGuest("a", name, {
      since: markA,
      boot: g.check.boot,
    }).catch((e) => Promise.reject(asTcgFault(e)));
    console.log(
      `  b -> a through the proxy in ${ba.ms.toFixed(0)} ms (${
        (proxy.bytesUp / 2 ** 20).toFixed(1)
      } MiB through it); on a at ${secs()} s: ${onA.line}`,
    );
    assert.ok(proxy.connections >= 1);
    // at least the guest's 32 MiB of random data went through the proxy
    assert.ok(proxy.bytesUp > 32 * 2 ** 20, `${proxy.bytesUp} bytes`);
    assert.ok(onA.n > onB.n);
    assert.equal(await lab.domainState("b", name), null, "gone from b");

    await lab.destroyGuest("a", name);
    assert.deepEqual(await lab.listDomains("a"), []);
  } finally {
    await lab.stop();
  }
  // nothing left: no daemon or QEMU of the lab, no listener, no folder
  assert.deepEqual(await libvirtLabProcesses({ ports: PORTS }), []);
  for (const p of PORTS) {
    await assert.rejects(() =>
      Deno.connect({ hostname: "127.0.0.1", port: p })
    );
  }
  await assert.rejects(() => Deno.stat(dir), Deno.errors.NotFound);
  console.log(`  libvirt lab test took ${secs()} s`);
}

/**
 * A stand-in for what a killed run of the lab leaves (the lab's default
 * folder for PORTS): `sleep` in a private mount namespace with the folder's
 * `a/run` bind-mounted on /run/libvirt.
 */
async function leftover(): Promise<Deno.ChildProcess> {
  const run = `${Deno.env.get("TMPDIR") ?? "/tmp"}/hakobu-libvirt-lab-${
    PORTS[0]
  }-${PORTS[1]}/a/run`;
  await Deno.mkdir(run, { recursive: true });
  await Deno.mkdir("/run/libvirt", { recursive: true });
  const child = new Deno.Command("unshare", {
    args: [
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      `mount --bind '${run}' /run/libvirt && exec sleep 600`,
    ],
    stdin: "null",
    stdout: "null",
  }).spawn();
  const deadline = Date.now() + 10_000;
  while (!(await libvirtLabProcesses({ ports: PORTS })).length) {
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error("the stand-in leftover did not show up in /proc");
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}
