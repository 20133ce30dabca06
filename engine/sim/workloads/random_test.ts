import assert from "node:assert/strict";
import { inRegion, isZero, regionOf, runWorkload } from "../_testing.ts";

Deno.test("random: small writes anywhere in the heap, pages stay non-zero", async () => {
  const { vm, dirty, before } = await runWorkload("random");
  try {
    assert.ok(dirty.length > 300, `only ${dirty.length} dirty pages`);
    const heap = regionOf(vm, "heap");
    let spread = 0;
    for (const pfn of dirty) {
      assert.ok(inRegion(heap, pfn), `pfn ${pfn} outside the heap`);
      const page = vm.page(pfn);
      assert.ok(!isZero(page), `dirty page ${pfn} is zero`);
      let changed = 0;
      for (let i = 0; i < 4096; i++) {
        if (page[i] !== before[pfn * 4096 + i]) changed++;
      }
      assert.ok(
        changed > 0 && changed <= 512,
        `page ${pfn}: ${changed} bytes changed`,
      );
      spread = Math.max(spread, pfn - heap.start);
    }
    assert.ok(spread > heap.count / 2, "writes do not cover the allocation");
  } finally {
    await vm.close();
  }
});
