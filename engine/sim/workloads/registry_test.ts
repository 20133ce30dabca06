import assert from "node:assert/strict";
import { SimError } from "../errors.ts";
import { workloadByName, workloadNames } from "./registry.ts";

Deno.test("registry: every seed workload is listed, documented and has a rate", () => {
  assert.deepEqual(workloadNames(), [
    "idle",
    "zero",
    "unique",
    "random",
    "partial",
    "memcached",
    "postgres",
    "lmbench",
  ]);
  for (const name of workloadNames()) {
    const w = workloadByName(name);
    assert.equal(w.name, name);
    assert.ok(w.summary.length > 10 && !w.summary.includes("\n"));
    assert.ok(w.models.length > w.summary.length);
    assert.ok(w.dirtyRate >= 0);
    const regions = w.regions(4096);
    for (const r of regions) {
      assert.ok(r.start >= 0 && r.start + r.count <= 4096, `${name} ${r.name}`);
    }
  }
});

Deno.test("registry: an unknown workload names the known ones", () => {
  assert.throws(() => workloadByName("foo"), (e: unknown) => {
    assert.ok(e instanceof SimError);
    assert.match(
      e.message,
      /^Unknown workload "foo": known workloads are "idle", "zero"/,
    );
    return true;
  });
});

Deno.test("registry: workloads are deterministic from the seed and cope with tiny memories", () => {
  for (const name of workloadNames()) {
    const w = workloadByName(name);
    for (const pages of [1, 3, 64]) {
      const a = new Uint8Array(pages * 4096);
      const b = new Uint8Array(pages * 4096);
      w.init(a, 5);
      w.init(b, 5);
      assert.deepEqual(a, b, name);
      const writer = w.writer(a, 5);
      for (let i = 0; i < 50; i++) {
        writer.step((pfn) =>
          assert.ok(pfn >= 0 && pfn < pages, `${name}: pfn ${pfn} of ${pages}`)
        );
      }
    }
  }
});
