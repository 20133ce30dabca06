import assert from "node:assert/strict";
import { pageKey, runWorkload } from "../_testing.ts";
import type { SimVm } from "../sim_vm.ts";

function assertAllDistinct(vm: SimVm): void {
  const seen = new Set<string>();
  for (let p = 0; p < vm.pageCount; p++) seen.add(pageKey(vm.page(p)));
  assert.equal(seen.size, vm.pageCount, "some pages are equal");
}

Deno.test("unique: all pages pairwise distinct after init and after recolouring", async () => {
  const { vm, dirty, before } = await runWorkload("unique", {
    memoryBytes: 8 << 20,
  });
  try {
    const initial = new Set<string>();
    for (let p = 0; p < vm.pageCount; p++) {
      initial.add(pageKey(before.subarray(p * 4096, (p + 1) * 4096)));
    }
    assert.equal(
      initial.size,
      vm.pageCount,
      "initial pages are not all distinct",
    );
    assert.ok(dirty.length > 300, `only ${dirty.length} dirty pages`);
    assertAllDistinct(vm);
    // A recoloured page shares nothing with its previous version beyond the header.
    const pfn = dirty[0];
    const old = before.subarray(pfn * 4096, (pfn + 1) * 4096);
    const now = vm.page(pfn);
    let same = 0;
    for (let i = 16; i < 4096; i++) if (old[i] === now[i]) same++;
    assert.ok(same < 100, `${same} bytes unchanged in a recoloured page`);
    assert.ok(
      new Uint32Array(now.buffer, now.byteOffset, 4)[1] >= 1,
      "generation not bumped",
    );
  } finally {
    await vm.close();
  }
});
