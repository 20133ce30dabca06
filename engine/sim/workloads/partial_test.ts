import assert from "node:assert/strict";
import { inRegion, regionOf, runWorkload } from "../_testing.ts";

Deno.test("partial: writes stay inside the hot window of the allocation", async () => {
  const { vm, dirty, before } = await runWorkload("partial");
  try {
    const alloc = regionOf(vm, "allocation");
    const hot = regionOf(vm, "hot");
    assert.ok(
      hot.start >= alloc.start &&
        hot.start + hot.count <= alloc.start + alloc.count,
    );
    assert.ok(hot.count < alloc.count / 4);
    assert.ok(dirty.length > 200, `only ${dirty.length} dirty pages`);
    for (const pfn of dirty) {
      assert.ok(inRegion(hot, pfn), `pfn ${pfn} outside the hot window`);
      let changed = 0;
      const page = vm.page(pfn);
      for (let i = 0; i < 4096; i++) {
        if (page[i] !== before[pfn * 4096 + i]) changed++;
      }
      assert.ok(
        changed < 2048,
        `page ${pfn}: ${changed} bytes changed, not a partial update`,
      );
    }
  } finally {
    await vm.close();
  }
});
