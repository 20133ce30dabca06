import assert from "node:assert/strict";
import { PageBatchBuilder } from "./page_batch.ts";

const PS = 4096;

/** Guest memory of `pages` pages; page `p` filled with byte `fill(p)`. */
function memoryOf(pages: number, fill: (p: number) => number): Uint8Array {
  const m = new Uint8Array(pages * PS);
  for (let p = 0; p < pages; p++) m.fill(fill(p), p * PS, (p + 1) * PS);
  return m;
}

Deno.test("PageBatchBuilder: a zero page in a slot an earlier batch filled reads as zeros", () => {
  const b = new PageBatchBuilder({
    pageSize: PS,
    nonZeroPages: 2,
    maxPages: 4,
  });
  // batch 1: pages 0..3 all non-zero (fills every slot)
  const full = memoryOf(4, (p) => p + 1);
  for (let p = 0; p < 2; p++) b.addFrom(full, p);
  assert.equal(b.full, true);
  assert.deepEqual([...b.zero.subarray(0, 2)], [0, 0]);
  b.reset();
  // batch 2: zero, non-zero, zero, zero over the same slots
  const mixed = memoryOf(4, (p) => p === 1 ? 7 : 0);
  for (let p = 0; p < 4; p++) b.addFrom(mixed, p);
  assert.equal(b.count, 4);
  assert.equal(b.nonZero, 1);
  assert.deepEqual([...b.zero.subarray(0, 4)], [1, 0, 1, 1]);
  assert.deepEqual(b.pages, mixed);
  b.reset();
  // batch 3: all zero, slots cleared again or never used since
  const zeros = new Uint8Array(4 * PS);
  for (let p = 0; p < 4; p++) b.addFrom(zeros, p);
  assert.deepEqual(b.pages, zeros);
});

Deno.test("PageBatchBuilder: add() marks its slot, so a later zero page there is cleared", () => {
  const b = new PageBatchBuilder({
    pageSize: PS,
    nonZeroPages: 4,
    maxPages: 4,
  });
  b.add(5, new Uint8Array(PS).fill(9));
  b.reset();
  b.addFrom(new Uint8Array(PS), 0);
  assert.equal(b.zero[0], 1);
  assert.deepEqual(b.pages.subarray(0, PS), new Uint8Array(PS));
});
