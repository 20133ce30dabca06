import assert from "node:assert/strict";
import { inRegion, isZero, regionOf, runWorkload } from "../_testing.ts";

Deno.test("lmbench: sequential sweep of the destination buffer", async () => {
  const { vm, dirty } = await runWorkload("lmbench", { memoryBytes: 64 << 20 });
  try {
    const dst = regionOf(vm, "dst");
    const src = regionOf(vm, "src");
    assert.ok(dirty.length > 500, `only ${dirty.length} dirty pages`);
    let gaps = 0;
    for (let i = 0; i < dirty.length; i++) {
      assert.ok(inRegion(dst, dirty[i]), `pfn ${dirty[i]} outside dst`);
      if (i > 0 && dirty[i] !== dirty[i - 1] + 1) gaps++;
    }
    assert.ok(gaps <= 1, `writes not sequential: ${gaps} gaps`);
    // Every written page is the result of a bw_mem kernel: a copy, a constant or zero.
    for (const pfn of dirty) {
      const page = vm.page(pfn);
      const words = new Int32Array(page.buffer, page.byteOffset, 1024);
      const constant = words.every((w) => w === words[0]);
      const copy = page.every((b, i) =>
        b === vm.memory[(src.start + pfn - dst.start) * 4096 + i]
      );
      assert.ok(
        constant || copy || isZero(page),
        `page ${pfn} is not a bw_mem result`,
      );
    }
  } finally {
    await vm.close();
  }
});
