import assert from "node:assert/strict";
import {
  inRegion,
  isZero,
  pageStats,
  regionOf,
  runWorkload,
} from "../_testing.ts";

Deno.test("idle: mostly zero memory, a trickle of writes into kernel data", async () => {
  const { vm, dirty } = await runWorkload("idle", { ms: 500 });
  try {
    const stats = pageStats(vm.memory);
    assert.ok(
      stats.zero / stats.total > 0.95,
      `zero share ${stats.zero / stats.total}`,
    );
    const kernel = regionOf(vm, "kernel");
    for (let p = kernel.start; p < kernel.start + kernel.count; p++) {
      assert.ok(!isZero(vm.page(p)));
    }
    // 20 pages/s for 0.5 s: about 10 writes; allow a wide margin but not a busy guest.
    assert.ok(dirty.length <= 40, `idle dirtied ${dirty.length} pages`);
    const data = regionOf(vm, "kernel-data");
    for (const pfn of dirty) {
      assert.ok(inRegion(data, pfn), `pfn ${pfn} outside kernel data`);
    }
  } finally {
    await vm.close();
  }
});
