/**
 * `hakobu rebalance --hosts libvirt:URI,libvirt:URI` on the two-host
 * libvirt lab: host a runs two guests and, with 512 MiB for VMs per host
 * (`--host-memory`), is above its 85% target. A dry run prints the plan and
 * changes nothing (both guests still on a, no state file written); a real
 * run moves one guest to b through the libvirt backend, the inventory read
 * back from the hosts shows it on b, the state file records the move, the
 * guest's data is intact on b, and a second pass has nothing to do.
 * Skipped (with the reason) without root, libvirt or QEMU.
 */

import assert from "node:assert/strict";
import { hakobu } from "../_cli/_cli_testing.ts";
import { libvirtInventory } from "../rebalance/mod.ts";
import { retryingTcgFaults } from "./guest_fault.ts";
import {
  asTcgFault,
  libvirtLabUnavailable,
  startLibvirtLab,
} from "./libvirt_lab.ts";

const why = await libvirtLabUnavailable().catch((e) => String(e));
if (why) console.warn(`skipping libvirt rebalance lab tests: ${why}`);

/** Ports apart from the other lab tests and the CLI's default lab. */
const PORTS: [number, number] = [16531, 16532];

Deno.test({
  name:
    "libvirt rebalance: --dry-run changes nothing; a run moves one VM off the loaded host, read back from the hosts, data intact",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await retryingTcgFaults(run);
  },
});

/** A guest that crashed or hung after a completed migration is QEMU/TCG's fault (guest_fault.ts): retried. */

async function run(): Promise<void> {
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  await using lab = await startLibvirtLab({ ports: PORTS });
  const names = ["hk-rb-one", "hk-rb-two"];
  const guests = await Promise.all(
    names.map((name) =>
      lab.startGuest("a", { name, memoryMiB: 256, dirty: "light" })
    ),
  );
  console.log(`  guests up on a at ${secs()} s`);
  const dir = await Deno.makeTempDir({ prefix: "hakobu-rb-lab-" });
  try {
    const state = `${dir}/state.json`;
    const hostA = "127.0.0.1:" + PORTS[0];
    const hostB = "127.0.0.1:" + PORTS[1];
    const args = [
      "rebalance",
      "--hosts",
      `libvirt:${lab.a.uri},libvirt:${lab.b.uri}`,
      "--host-memory",
      "512MiB",
      "--policy",
      "examples/policies/default.ts",
      "--state",
      state,
      "--timeout",
      "90s",
    ];
    const onA = async () =>
      (await lab.listDomains("a")).filter((d) => d.state === "running")
        .map((d) => d.name).sort();
    const onB = async () =>
      (await lab.listDomains("b")).filter((d) => d.state === "running")
        .map((d) => d.name).sort();

    // 1. the dry run: the plan, and nothing changed
    const dry = await hakobu([...args, "--dry-run"]);
    console.log(dry.stdout);
    assert.equal(dry.code, 0, dry.stderr + dry.stdout);
    assert.match(dry.stdout, /^inventory: libvirt hosts qemu\+tcp:/m);
    assert.match(dry.stdout, /1 move\(s\):/);
    assert.match(
      dry.stdout,
      new RegExp(`│ hk-rb-(one|two) │ ${hostA} → ${hostB} `),
    );
    assert.match(
      dry.stdout,
      /would run 1 move\(s\) on libvirt hosts \(libvirt backend\)/,
    );
    assert.match(dry.stdout, /dry run: nothing was changed/);
    assert.doesNotMatch(dry.stderr, /running the moves/);
    assert.deepEqual(await onA(), names);
    assert.deepEqual(await onB(), []);
    await assert.rejects(() => Deno.stat(state), Deno.errors.NotFound);
    console.log(`  dry run done at ${secs()} s`);

    // 2. the run: one guest moves to b, checked on the hosts
    const marks = await Promise.all(
      names.map((n) => lab.serialMark("b", n)),
    );
    const real = await hakobu(args);
    console.log(real.stdout, real.stderr);
    assert.equal(real.code, 0, real.stderr + real.stdout);
    assert.match(real.stdout, /1 of 1 move\(s\) verified/);
    assert.match(real.stdout, /read back from libvirt hosts/);
    assert.match(real.stdout, /ok: on "127\.0\.0\.1:16532"/);
    console.log(`  run done at ${secs()} s`);

    const [stayed] = await onA();
    const [moved] = await onB();
    assert.ok(stayed && moved && stayed !== moved, `a: ${stayed}, b: ${moved}`);
    assert.deepEqual([stayed, moved].sort(), names);

    // the inventory read back from the hosts says the same
    const inv = await libvirtInventory([
      { uri: lab.a.uri },
      { uri: lab.b.uri },
    ], { memoryBytes: 512 * 2 ** 20, dirtyRateSeconds: 1 }).read();
    console.log(
      `  read back: ${
        inv.vms.map((v) =>
          `${v.name}@${v.host} dirty ${v.dirtyRate} B/s, zero ${
            v.zeroFraction?.toFixed(2)
          }, ratios ${JSON.stringify(v.compression)}`
        ).join("; ")
      }`,
    );
    // Each guest's memory was sampled through virDomainMemoryPeek: a
    // 256 MiB lab guest is mostly zero pages (16 MiB of random data, a
    // 64 MiB area rewritten, a small kernel and initramfs), and none of it
    // is all zero.
    for (const vm of inv.vms) {
      assert.ok(
        vm.zeroFraction !== undefined && vm.zeroFraction > 0.3 &&
          vm.zeroFraction < 1,
        `${vm.name}: zero share ${vm.zeroFraction}`,
      );
      assert.ok(vm.compression !== undefined, `${vm.name}: no ratios`);
    }
    assert.deepEqual(
      inv.vms.map((v) => `${v.name}@${v.host}`).sort(),
      [`${moved}@${hostB}`, `${stayed}@${hostA}`].sort(),
    );

    // the state file holds the move (its cooldown starts now)
    const history = JSON.parse(await Deno.readTextFile(state));
    assert.deepEqual(
      history.moves.map((m: Record<string, unknown>) => [
        m.vm,
        m.from,
        m.to,
        m.moved,
      ]),
      [[moved, hostA, hostB, true]],
    );

    // the guest's data is intact on b, and it did not reboot
    const i = names.indexOf(moved);
    try {
      const check = await lab.checkGuest("b", moved, {
        since: marks[i],
        boot: guests[i].check?.boot,
      });
      console.log(`  ${check.line}`);
    } catch (e) {
      throw asTcgFault(e);
    }

    // 3. a second pass: balanced, nothing to do
    const again = await hakobu([...args, "--dry-run"]);
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(again.stdout, /balanced: no moves needed/);
    console.log(`  done at ${secs()} s`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
