/**
 * The `libvirt` backend without daemons: source and target parsing, and
 * the checks `migrate` makes before anything changes, against libvirt's
 * `test:///default` driver (in-process: a running domain "test", no job
 * stats). The migrations themselves run on the two-host lab
 * (`scripts/lab/libvirt_backend_lab_test.ts`).
 */

import assert from "node:assert/strict";
import { policy, when } from "../../mod.ts";
import { BackendError } from "./backend.ts";
import {
  libvirtBackend,
  parseLibvirtSource,
  parseLibvirtTarget,
} from "./libvirt.ts";
import { openBackend } from "./registry.ts";

function installed(name: string): boolean {
  try {
    Deno.dlopen(name, {}).close();
    return true;
  } catch {
    return false;
  }
}

const haveLibvirt = installed("libvirt.so.0");
if (!haveLibvirt) {
  console.warn(
    "libvirt is not installed (apt-get install libvirt0): libvirt backend checks against test:///default skipped",
  );
}

const plan = policy("p").switchover(when.rounds(3)).compile();

Deno.test("libvirt backend: sources split at the last slash; bad ones are refused naming the form", () => {
  assert.deepEqual(
    parseLibvirtSource("qemu+tcp://127.0.0.1:16501/system/vm1"),
    { uri: "qemu+tcp://127.0.0.1:16501/system", domain: "vm1" },
  );
  assert.deepEqual(parseLibvirtSource("qemu:///system/web-1"), {
    uri: "qemu:///system",
    domain: "web-1",
  });
  const vm = openBackend("libvirt:qemu+ssh://root@h2/system/db");
  assert.equal(vm.scheme, "libvirt");
  assert.equal(vm.source, "libvirt:qemu+ssh://root@h2/system/db");
  for (
    const [rest, why] of [
      ["vm1", /"" is no libvirt URI/],
      ["qemu:///system/", /no domain name after the URI/],
      ["qemu://", /no libvirt URI/],
      ["qemu:///system/my vm", /has spaces or quotes/],
      ["/system/vm1", /"\/system" is no libvirt URI/],
    ] as const
  ) {
    assert.throws(
      () => libvirtBackend.open(rest),
      (e: unknown) =>
        e instanceof BackendError && e.field === "source" &&
        why.test(e.message) &&
        e.message.includes(`"libvirt:${rest}"`) &&
        /expected libvirt:URI\/DOMAIN/.test(e.message),
    );
  }
});

Deno.test("libvirt backend: targets are libvirt:URI (or the bare URI); others are refused before anything is touched", async () => {
  assert.equal(
    parseLibvirtTarget("libvirt:qemu+tcp://127.0.0.1:16502/system"),
    "qemu+tcp://127.0.0.1:16502/system",
  );
  assert.equal(parseLibvirtTarget("qemu:///system"), "qemu:///system");
  // A source that does not exist: the target is read first, nothing connects.
  const vm = libvirtBackend.open("qemu+tcp://127.0.0.1:1/system/nosuch");
  for (const bad of ["10.0.0.2:4445", "libvirt:", "host2"]) {
    await assert.rejects(
      () => vm.migrate(plan, bad),
      (e: unknown) =>
        e instanceof BackendError && e.field === "target" &&
        e.message.includes(`"${bad}"`) &&
        /expected libvirt:URI/.test(e.message),
    );
  }
});

Deno.test({
  name:
    "libvirt backend: an unreachable host, a missing domain, a driver without job stats: clear errors naming URI and domain",
  ignore: !haveLibvirt,
  async fn() {
    // Nothing listens on port 1: the source host cannot be reached.
    await assert.rejects(
      () =>
        libvirtBackend.open("qemu+tcp://127.0.0.1:1/system/vm1").migrate(
          plan,
          "libvirt:test:///default",
        ),
      (e: unknown) =>
        e instanceof BackendError && e.field === "source" &&
        e.message.includes(
          'Cannot reach the source host "qemu+tcp://127.0.0.1:1/system"',
        ),
    );
    // The destination cannot be reached: refused before the domain is touched.
    await assert.rejects(
      () =>
        libvirtBackend.open("test:///default/test").migrate(
          plan,
          "libvirt:qemu+tcp://127.0.0.1:1/system",
        ),
      (e: unknown) =>
        e instanceof BackendError && e.field === "target" &&
        e.message.includes(
          'Cannot reach the destination host "qemu+tcp://127.0.0.1:1/system" to migrate "libvirt:test:///default/test"',
        ),
    );
    await assert.rejects(
      () =>
        libvirtBackend.open("test:///default/nosuch").migrate(
          plan,
          "libvirt:test:///default",
        ),
      (e: unknown) =>
        e instanceof BackendError && e.field === "source" &&
        e.message.startsWith(
          'No domain "nosuch" on "test:///default" (source "libvirt:test:///default/nosuch"): Domain not found',
        ),
    );
    // test:///default's "test" runs, but the driver has no job stats: hakobu
    // cannot steer it, and says so before migrating.
    await assert.rejects(
      () =>
        libvirtBackend.open("test:///default/test").migrate(
          plan,
          "test:///default",
        ),
      (e: unknown) =>
        e instanceof BackendError && e.field === "source" &&
        /libvirt at "test:\/\/\/default" gives no job stats for domain "test" \(.*virDomainGetJobStats.*not supported/
          .test(e.message),
    );
  },
});

Deno.test({
  name: "libvirt backend: --tunnel without a security choice is refused",
  async fn() {
    const vm = libvirtBackend.open("test:///default/test", { tunnel: true });
    await assert.rejects(
      () => vm.migrate(plan, "libvirt:test:///default"),
      (e: unknown) =>
        e instanceof BackendError && e.field === "security" &&
        /No connection security chosen/.test(e.message),
    );
  },
});
