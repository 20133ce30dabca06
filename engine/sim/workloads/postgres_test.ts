import assert from "node:assert/strict";
import { inRegion, regionOf, runWorkload } from "../_testing.ts";
import { PG_BLOCK, PG_PAGESIZE_VERSION, PG_WAL_MAGIC } from "./postgres.ts";

Deno.test("postgres: sequential WAL pages and 8 KiB heap blocks are dirtied", async () => {
  const { vm, dirty, before } = await runWorkload("postgres", {
    memoryBytes: 64 << 20,
  });
  try {
    const wal = regionOf(vm, "wal_buffers");
    const buffers = regionOf(vm, "shared_buffers");
    const view = new DataView(vm.memory.buffer);
    const walPages = [...dirty].filter((p) => inRegion(wal, p));
    const heapPages = [...dirty].filter((p) => inRegion(buffers, p));
    assert.equal(
      walPages.length + heapPages.length,
      dirty.length,
      "writes outside WAL and buffers",
    );
    assert.ok(walPages.length >= 2, `only ${walPages.length} WAL pages`);
    assert.ok(heapPages.length > 100, `only ${heapPages.length} buffer pages`);
    // WAL: one contiguous run of pages, allowing one wrap round the ring.
    let gaps = 0;
    for (let i = 1; i < walPages.length; i++) {
      if (walPages[i] !== walPages[i - 1] + 1) gaps++;
    }
    assert.ok(gaps <= 1, `WAL writes not sequential: ${walPages.join(",")}`);
    if (gaps === 1) {
      assert.ok(
        walPages[0] === wal.start &&
          walPages.at(-1) === wal.start + wal.count - 1,
      );
    }
    // Each 8 KiB WAL page starts with the XLOG page magic.
    for (const p of walPages) {
      const block = (p - wal.start) - ((p - wal.start) % 2) + wal.start;
      assert.equal(
        view.getUint16(block * 4096, true),
        PG_WAL_MAGIC,
        `WAL page ${p}`,
      );
    }
    // Heap: each dirtied page belongs to a well-formed 8 KiB block whose pd_lsn moved on.
    for (const p of heapPages) {
      const head = p - ((p - buffers.start) % 2);
      const at = head * 4096;
      assert.equal(view.getUint16(at + 18, true), PG_PAGESIZE_VERSION);
      const lower = view.getUint16(at + 12, true);
      const upper = view.getUint16(at + 14, true);
      assert.ok(
        24 <= lower && lower <= upper && upper <= PG_BLOCK,
        `block ${head}: ${lower}..${upper}`,
      );
      const old = new DataView(before.buffer).getUint32(at + 4, true);
      assert.notEqual(
        view.getUint32(at + 4, true),
        old,
        `block ${head}: pd_lsn unchanged`,
      );
    }
    assert.ok(
      heapPages.some((p) => (p - buffers.start) % 2 === 1),
      "no second half of a block was written",
    );
  } finally {
    await vm.close();
  }
});
