import assert from "node:assert/strict";
import { inRegion, isZero, regionOf, runWorkload } from "../_testing.ts";

Deno.test("zero: every dirtied page is an all-zero page inside the heap", async () => {
  const { vm, dirty } = await runWorkload("zero");
  try {
    assert.ok(dirty.length > 300, `only ${dirty.length} dirty pages`);
    const heap = regionOf(vm, "heap");
    for (const pfn of dirty) {
      assert.ok(inRegion(heap, pfn), `pfn ${pfn} outside the heap`);
      assert.ok(isZero(vm.page(pfn)), `dirty page ${pfn} is not zero`);
    }
    assert.ok(!isZero(vm.page(0)), "kernel text should not be zero");
  } finally {
    await vm.close();
  }
});
