import assert from "node:assert/strict";
import { LibvirtConnection } from "../../ffi/libvirt/mod.ts";
import { rebalanceCluster } from "../_cli/rebalance.ts";
import {
  hostNameFromUri,
  InventoryError,
  libvirtInventory,
  memoryProfileOf,
  pageCosts,
  parseDomainTags,
  parseHostMemory,
  parseHostsFlag,
} from "./mod.ts";

const haveLibvirt = (() => {
  try {
    LibvirtConnection.open("test:///default").close();
    return true;
  } catch {
    return false;
  }
})();
if (!haveLibvirt) {
  console.warn("libvirt0 is not installed: test:///default tests skipped");
}

Deno.test("parseHostsFlag: libvirt URIs, named or not, and what it refuses", () => {
  assert.deepEqual(
    parseHostsFlag(
      "libvirt:qemu+tcp://127.0.0.1:16531/system,b=libvirt:qemu+ssh://root@kvm2/system?keyfile=/k",
    ),
    [
      { uri: "qemu+tcp://127.0.0.1:16531/system" },
      { name: "b", uri: "qemu+ssh://root@kvm2/system?keyfile=/k" },
    ],
  );
  for (
    const [text, why] of [
      ["", /expected libvirt:URI/],
      ["libvirt:qemu:///system,", /empty entry/],
      ["qemu:///system", /expected libvirt:URI or NAME=libvirt:URI/],
      ["xen:dom1", /expected libvirt:URI/],
      ["libvirt:", /expected libvirt:URI/],
      ["libvirt:kvm1", /"kvm1" is no libvirt URI/],
      ["libvirt:qemu:///system,libvirt:qemu:///system", /given twice/],
      ["a b=libvirt:qemu:///system", /expected libvirt:URI/],
    ] as const
  ) {
    assert.throws(
      () => parseHostsFlag(text),
      (e) =>
        e instanceof InventoryError && e.field === "--hosts" &&
        why.test(e.message),
      text,
    );
  }
});

Deno.test("hostNameFromUri: the server part, without the user; null when local", () => {
  assert.equal(hostNameFromUri("qemu+ssh://root@kvm1/system"), "kvm1");
  assert.equal(
    hostNameFromUri("qemu+tcp://127.0.0.1:16532/system"),
    "127.0.0.1:16532",
  );
  assert.equal(hostNameFromUri("xen+tls://a@b@h3:16514/"), "h3:16514");
  assert.equal(hostNameFromUri("qemu:///session"), null);
  assert.equal(hostNameFromUri("test:///default"), null);
});

Deno.test("parseDomainTags: hakobu's namespace only, any prefix, entities, errors", () => {
  const wrap = (m: string) =>
    `<domain type='kvm'><name>x</name><description><hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">not-metadata</hakobu:tags></description><metadata>${m}</metadata></domain>`;
  // as `virsh metadata --key hakobu --set '<tags>…</tags>'` leaves it
  assert.deepEqual(
    parseDomainTags(
      wrap(
        `<hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">heavy,db</hakobu:tags>`,
      ),
    ),
    ["heavy", "db"],
  );
  // another prefix, single quotes, white space and duplicates
  assert.deepEqual(
    parseDomainTags(
      wrap(
        `<h:tags xmlns:h='https://hakobu.dev/xmlns/1'>\n  pinned  web,pinned\n</h:tags>`,
      ),
    ),
    ["pinned", "web"],
  );
  // a default namespace; an entity
  assert.deepEqual(
    parseDomainTags(
      wrap(`<tags xmlns="https://hakobu.dev/xmlns/1">a&#44;b</tags>`),
    ),
    ["a", "b"],
  );
  // other namespaces' tags are not ours; nor is an empty element
  assert.deepEqual(
    parseDomainTags(
      wrap(
        `<nova:tags xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">db</nova:tags><hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1"/>`,
      ),
    ),
    [],
  );
  assert.deepEqual(parseDomainTags("<domain><name>x</name></domain>"), []);
  assert.throws(
    () =>
      parseDomainTags(
        wrap(
          `<hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">ok,"bad"</hakobu:tags>`,
        ),
      ),
    /Invalid tag ""bad""/,
  );
});

Deno.test("parseHostMemory: SIZE or NAME=SIZE", () => {
  assert.deepEqual(parseHostMemory("1GiB"), { memoryBytes: 2 ** 30 });
  assert.deepEqual(parseHostMemory("127.0.0.1:16531=512MiB"), {
    name: "127.0.0.1:16531",
    memoryBytes: 512 * 2 ** 20,
  });
  for (const bad of ["", "=1GiB", "a=", "a=0", "lots"]) {
    assert.throws(() => parseHostMemory(bad), InventoryError, bad);
  }
});

Deno.test("rebalanceCluster: exactly one of --inventory and --hosts; --host-memory names a host", () => {
  assert.throws(
    () => rebalanceCluster({}),
    /No inventory: give --inventory FILE .* or --hosts libvirt:URI/,
  );
  assert.throws(
    () =>
      rebalanceCluster({
        inventory: "examples/inventory.json",
        hosts: "libvirt:test:///default",
      }),
    /Both --inventory and --hosts given/,
  );
  assert.throws(
    () =>
      rebalanceCluster({
        inventory: "examples/inventory.json",
        hostMemory: ["1GiB"],
      }),
    /apply to --hosts/,
  );
  assert.throws(
    () =>
      rebalanceCluster({
        hosts: "libvirt:test:///default",
        hostMemory: ["h9=1GiB"],
      }),
    /no host of --hosts is named "h9"/,
  );
  const file = rebalanceCluster({ inventory: "examples/inventory.json" });
  assert.equal(file.source.live, false);
  assert.equal(file.fabricName, "sim hosts");
  const live = rebalanceCluster({
    hosts: "t=libvirt:test:///default",
    hostMemory: ["t=8GiB"],
  });
  assert.equal(live.source.live, true);
  assert.match(live.fabricName, /libvirt/);
});

Deno.test({
  name:
    "libvirtInventory on test:///default: node and domains read, no dirty rate measured, tags from metadata",
  ignore: !haveLibvirt,
  sanitizeResources: false, // test:///default's state lives as long as the process
  async fn() {
    // A second running domain with hakobu tags, in the test driver's
    // process-wide default state (every connection to test:///default sees it).
    using conn = LibvirtConnection.open("test:///default");
    using tagged = conn.createDomain(
      `<domain type='test'><name>tagged</name><memory unit='KiB'>262144</memory><currentMemory unit='KiB'>131074</currentMemory>
       <metadata><hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">heavy,db</hakobu:tags></metadata>
       <os><type>hvm</type></os></domain>`,
    );
    try {
      const logs: string[] = [];
      const source = libvirtInventory([{ uri: "test:///default" }], {
        targets: { maxHostMemoryPercent: 70 },
        dirtyRateSeconds: 1, // the test driver cannot: the source copes
        samplePages: 0, // the next test samples
        log: (l) => logs.push(l),
      });
      assert.equal(source.live, true);
      assert.equal(source.description, "libvirt hosts test:///default");
      const inv = await source.read();
      assert.deepEqual(inv.hosts, [{ name: "vm", memoryBytes: 3 * 2 ** 30 }]); // node info
      assert.deepEqual(inv.targets, { maxHostMemoryPercent: 70 });
      assert.deepEqual(
        inv.vms.toSorted((a, b) => a.name.localeCompare(b.name)),
        [
          {
            name: "tagged",
            host: "vm",
            memoryBytes: 131076 * 1024, // 131074 KiB rounded up to whole pages
            dirtyRate: 0,
            tags: ["heavy", "db"],
          },
          { name: "test", host: "vm", memoryBytes: 2 * 2 ** 30, dirtyRate: 0 },
        ],
      );
      assert.deepEqual(logs, []); // NO_SUPPORT is expected, not noise
      assert.equal(source.uriOf("vm"), "test:///default");
      assert.throws(() => source.uriOf("h9"), /No libvirt host named "h9"/);
    } finally {
      tagged.destroy();
    }
  },
});

Deno.test({
  name:
    "libvirtInventory samples each domain's memory into its profile, and predictions count it",
  ignore: !haveLibvirt,
  sanitizeResources: false,
  async fn() {
    const logs: string[] = [];
    const read = (samplePages?: number) =>
      libvirtInventory([{ uri: "test:///default" }], {
        memoryBytes: 4 * 2 ** 30,
        ...(samplePages === undefined ? {} : { samplePages }),
        log: (l) => logs.push(l),
      }).read();
    const [vm] = (await read()).vms;
    // The test driver's memory reads as each address's low byte: no zero
    // page, and every page alike (so dedup claims all but the first).
    assert.equal(vm.zeroFraction, 0);
    assert.ok(vm.compression!.lz4 > 100, JSON.stringify(vm.compression));
    assert.ok(vm.compression!.zstd > vm.compression!.lz4);
    assert.ok(vm.compression!.dedup > 50);
    assert.deepEqual(logs, []);
    // Predictions count it: a zero,lz4 move of this VM is far cheaper on
    // the wire than the same VM costed as incompressible.
    const [unsampled] = (await read(0)).vms;
    assert.equal(unsampled.zeroFraction, undefined);
    assert.equal(unsampled.compression, undefined);
    const chain = [{ name: "zero" }, { name: "lz4" }];
    const sampled = pageCosts(chain, memoryProfileOf(vm), "first", 4096);
    const unknown = pageCosts(chain, memoryProfileOf(unsampled), "first", 4096);
    assert.equal(unknown.page, 4096);
    assert.ok(sampled.page < 4096 / 100, `${sampled.page}`);
    // A sample size that is not whole reads of 8 pages is refused up front.
    assert.throws(
      () => libvirtInventory([{ uri: "test:///default" }], { samplePages: 12 }),
      (e) =>
        e instanceof InventoryError && e.field === "--sample-pages" &&
        /expected a whole multiple of 8/.test(e.message),
    );
  },
});

Deno.test({
  name:
    "libvirtInventory: an unreachable host and two hosts with one name are errors that name them",
  ignore: !haveLibvirt,
  sanitizeResources: false,
  async fn() {
    await assert.rejects(
      () =>
        libvirtInventory([
          { uri: "test:///default" },
          { uri: "qemu+tcp://127.0.0.1:1/system" },
        ]).read(),
      (e) =>
        e instanceof InventoryError && e.field === "hosts[1]" &&
        /^Cannot read libvirt host "qemu\+tcp:\/\/127\.0\.0\.1:1\/system": .*Connection refused/
          .test(e.message),
    );
    // Both report the hostname "vm" and have no server part in the URI.
    await assert.rejects(
      () =>
        libvirtInventory([
          { uri: "test:///default" },
          { uri: "test:///default?x" },
        ]).read(),
      /both named "vm": name them, e\.g\. --hosts a=libvirt:test:\/\/\/default,b=libvirt:test:\/\/\/default\?x/,
    );
    // named: the names tell them apart; then the one domain on both is caught
    await assert.rejects(
      () =>
        libvirtInventory([
          { name: "a", uri: "test:///default" },
          { name: "b", uri: "test:///default?x" },
        ]).read(),
      /Domain "test" runs on two libvirt hosts at once/,
    );
  },
});
