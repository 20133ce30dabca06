import assert from "node:assert/strict";
import { inRegion, pageStats, regionOf, runWorkload } from "../_testing.ts";

Deno.test("memcached: ~88% zero pages, a real share of duplicates, churn inside slabs", async () => {
  const { vm, dirty, before } = await runWorkload("memcached", {
    memoryBytes: 64 << 20,
  });
  try {
    const stats = pageStats(before);
    const zero = stats.zero / stats.total;
    const dup = stats.duplicate / stats.total;
    assert.ok(zero > 0.8 && zero < 0.95, `zero share ${zero}`);
    assert.ok(dup > 0.02 && dup < 0.15, `duplicate share ${dup}`);
    assert.ok(dirty.length > 100, `only ${dirty.length} dirty pages`);
    const slabs = regionOf(vm, "slabs");
    const text = new TextDecoder();
    let keys = 0;
    for (const pfn of dirty) {
      assert.ok(inRegion(slabs, pfn), `pfn ${pfn} outside the slabs`);
      if (text.decode(vm.page(pfn)).includes("key:")) keys++;
    }
    assert.ok(
      keys > dirty.length / 4,
      `only ${keys} of ${dirty.length} dirty pages hold item keys`,
    );
  } finally {
    await vm.close();
  }
});
