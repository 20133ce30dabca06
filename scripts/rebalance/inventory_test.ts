import assert from "node:assert/strict";
import {
  InventoryError,
  inventoryToJson,
  loadInventory,
  parseInventory,
} from "./inventory.ts";

const EXAMPLE = new URL("../../examples/inventory.json", import.meta.url)
  .pathname;

function base(): { hosts: unknown[]; vms: unknown[]; targets?: unknown } {
  return {
    hosts: [{ name: "h1", memory: "1GiB" }, {
      name: "h2",
      memoryBytes: 2 ** 30,
    }],
    vms: [{ name: "a", host: "h1", memory: "64MiB" }],
  };
}

function fails(value: unknown, path: string, message: RegExp): void {
  assert.throws(() => parseInventory(value), (e: unknown) => {
    assert.ok(e instanceof InventoryError, String(e));
    assert.equal(e.field, path);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("parseInventory reads sizes, rates, workloads and default targets", () => {
  const inv = parseInventory({
    hosts: [{
      name: "h1",
      memory: "64GiB",
      address: "10.0.0.1:7700",
      maxMigrations: 2,
    }],
    vms: [
      {
        name: "web1",
        host: "h1",
        memory: "8GiB",
        dirtyRate: "50MB/s",
        load: 0.5,
      },
      { name: "mc", host: "h1", memoryBytes: 2 ** 20, workload: "memcached" },
      { name: "plain", host: "h1", memory: "1MiB" },
    ],
  });
  assert.equal(inv.hosts[0].memoryBytes, 64 * 2 ** 30);
  assert.equal(inv.hosts[0].maxMigrations, 2);
  assert.equal(inv.vms[0].memoryBytes, 8 * 2 ** 30);
  assert.equal(inv.vms[0].dirtyRate, 50e6);
  assert.equal(inv.vms[0].load, 0.5);
  // No dirtyRate given: the workload's default (2000 pages/s), else 0.
  assert.equal(inv.vms[1].dirtyRate, 2000 * 4096);
  assert.equal(inv.vms[2].dirtyRate, 0);
  assert.deepEqual(inv.targets, { maxHostMemoryPercent: 85 });
});

Deno.test("parseInventory names the field path of each error", () => {
  const badHost = base();
  badHost.vms.push({ name: "b", host: "h9", memory: "64MiB" });
  fails(
    badHost,
    "vms[1].host",
    /vms\[1\]\.host "h9": it is not a host in the inventory/,
  );

  const dupHost = base();
  dupHost.hosts.push({ name: "h1", memory: "1GiB" });
  fails(dupHost, "hosts[2].name", /Duplicate host name "h1"/);

  const dupVm = base();
  dupVm.vms.push({ name: "a", host: "h2", memory: "64MiB" });
  fails(dupVm, "vms[1].name", /Duplicate VM name "a"/);

  const badSize = base();
  badSize.vms.push({ name: "b", host: "h1", memory: "64 parsecs" });
  fails(badSize, "vms[1].memory", /Cannot parse size "64 parsecs"/);

  const both = base();
  both.vms.push({ name: "b", host: "h1", memory: "1MiB", memoryBytes: 1 });
  fails(both, "vms[1].memory", /exactly one of memory/);

  const notPages = base();
  notPages.vms.push({ name: "b", host: "h1", memoryBytes: 5000 });
  fails(notPages, "vms[1].memory", /whole number of 4096-byte pages/);

  const typo = base();
  typo.vms.push({ name: "b", host: "h1", memory: "1MiB", dirtyrate: 5 });
  fails(typo, "vms[1].dirtyrate", /Unknown field "vms\[1\]\.dirtyrate"/);

  const workload = base();
  workload.vms.push({
    name: "b",
    host: "h1",
    memory: "1MiB",
    workload: "redis",
  });
  fails(workload, "vms[1].workload", /"redis": expected one of .*memcached/);

  const rate = base();
  rate.vms.push({ name: "b", host: "h1", memory: "1MiB", dirtyRate: "fast" });
  fails(rate, "vms[1].dirtyRate", /Cannot parse bandwidth "fast"/);

  const address = base();
  address.hosts.push({ name: "h3", memory: "1GiB", address: "nowhere" });
  fails(address, "hosts[2].address", /expected HOST:PORT/);

  const maxMig = base();
  maxMig.hosts.push({ name: "h3", memory: "1GiB", maxMigrations: 0 });
  fails(maxMig, "hosts[2].maxMigrations", /whole number ≥ 1/);

  const pct = base();
  pct.targets = { maxHostMemoryPercent: 120 };
  fails(pct, "targets.maxHostMemoryPercent", /"120": expected a percentage/);

  fails({ hosts: {}, vms: [] }, "hosts", /expected an array/);
  fails([], "", /expected an object/);
  fails({ ...base(), hostz: [] }, "hostz", /Unknown field "hostz"/);
});

Deno.test("loadInventory reads the example and reports file errors", async () => {
  const inv = await loadInventory(EXAMPLE);
  assert.equal(inv.hosts.length, 3);
  assert.equal(inv.vms.length, 8);
  await assert.rejects(
    () => loadInventory("/nonexistent/inventory.json"),
    /Cannot read inventory "\/nonexistent\/inventory\.json": file not found/,
  );
  const bad = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(bad, "{ not json");
    await assert.rejects(() => loadInventory(bad), /Cannot parse inventory/);
    await Deno.writeTextFile(
      bad,
      JSON.stringify({
        hosts: [],
        vms: [{ name: "a", host: "x", memory: "1MiB" }],
      }),
    );
    await assert.rejects(
      () => loadInventory(bad),
      (e: unknown) => e instanceof InventoryError && e.field === "vms[0].host",
    );
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("inventoryToJson round-trips through parseInventory", async () => {
  const inv = await loadInventory(EXAMPLE);
  assert.deepEqual(
    parseInventory(JSON.parse(JSON.stringify(inventoryToJson(inv)))),
    inv,
  );
});

Deno.test("parseInventory reads tags and what is known of a VM's memory, and checks them", () => {
  const inv = parseInventory({
    hosts: [{ name: "h1", memory: "1GiB" }],
    vms: [{
      name: "db",
      host: "h1",
      memory: "64MiB",
      tags: ["db", "tier:gold"],
      zeroFraction: 0.25,
      compression: { lz4: 1.8, zstd: 2.5, delta: 10 },
    }],
  });
  assert.deepEqual(inv.vms[0].tags, ["db", "tier:gold"]);
  assert.equal(inv.vms[0].zeroFraction, 0.25);
  assert.deepEqual(inv.vms[0].compression, { lz4: 1.8, zstd: 2.5, delta: 10 });
  assert.deepEqual(
    parseInventory(JSON.parse(JSON.stringify(inventoryToJson(inv)))),
    inv,
  );

  const vm = (extra: Record<string, unknown>) => ({
    hosts: [{ name: "h1", memory: "1GiB" }],
    vms: [{ name: "a", host: "h1", memory: "1MiB", ...extra }],
  });
  fails(vm({ tags: "db" }), "vms[0].tags", /expected an array of tags/);
  fails(vm({ tags: ["ok", "no spaces"] }), "vms[0].tags[1]", /"no spaces"/);
  fails(vm({ zeroFraction: 1.5 }), "vms[0].zeroFraction", /from 0 to 1/);
  fails(vm({ zeroFraction: "half" }), "vms[0].zeroFraction", /"half"/);
  fails(
    vm({ compression: { gzip: 3 } }),
    "vms[0].compression.gzip",
    /Unknown codec "gzip" in vms\[0\]\.compression: expected one of rle, delta, dedup, lz4, zstd/,
  );
  fails(
    vm({ compression: { zero: 3 } }),
    "vms[0].compression.zero",
    /zero pages are counted by zeroFraction/,
  );
  fails(
    vm({ compression: { lz4: 0.5 } }),
    "vms[0].compression.lz4",
    /a number ≥ 1/,
  );
  fails(vm({ compression: [2] }), "vms[0].compression", /expected an object/);
});
