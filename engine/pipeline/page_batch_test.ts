import assert from "node:assert/strict";
import { PageBatchBuilder } from "./page_batch.ts";
import { PAGE_SIZE } from "../plan.ts";

/** Guest memory of `pages` pages; page `p` filled with byte `fill(p)`. */
function memoryOf(pages: number, fill: (p: number) => number): Uint8Array {
  const m = new Uint8Array(pages * PAGE_SIZE);
  for (let p = 0; p < pages; p++) {
    m.fill(fill(p), p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  }
  return m;
}

Deno.test("PageBatchBuilder: a zero page in a slot an earlier batch filled reads as zeros", () => {
  const b = new PageBatchBuilder({
    pageSize: PAGE_SIZE,
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
  const zeros = new Uint8Array(4 * PAGE_SIZE);
  for (let p = 0; p < 4; p++) b.addFrom(zeros, p);
  assert.deepEqual(b.pages, zeros);
});

Deno.test("PageBatchBuilder: add() marks its slot, so a later zero page there is cleared", () => {
  const b = new PageBatchBuilder({
    pageSize: PAGE_SIZE,
    nonZeroPages: 4,
    maxPages: 4,
  });
  b.add(5, new Uint8Array(PAGE_SIZE).fill(9));
  b.reset();
  b.addFrom(new Uint8Array(PAGE_SIZE), 0);
  assert.equal(b.zero[0], 1);
  assert.deepEqual(b.pages.subarray(0, PAGE_SIZE), new Uint8Array(PAGE_SIZE));
});

/** Adds `pfns` with addRunFrom, closing a batch whenever it is full; returns each batch's pfns and zero flags. */
function batchesOf(
  b: PageBatchBuilder,
  memory: Uint8Array,
  pfns: Uint32Array,
): { pfns: number[]; zero: number[]; pages: Uint8Array }[] {
  const out: { pfns: number[]; zero: number[]; pages: Uint8Array }[] = [];
  const close = () => {
    out.push({
      pfns: [...b.pfns.subarray(0, b.count)],
      zero: [...b.zero.subarray(0, b.count)],
      pages: b.pages.slice(0, b.count * PAGE_SIZE),
    });
    b.reset();
  };
  for (let i = 0; i < pfns.length;) {
    const next = b.addRunFrom(memory, pfns, i, pfns.length);
    assert.ok(next > i || b.full, "addRunFrom adds a page unless full");
    i = next;
    if (b.full) close();
  }
  if (b.count > 0) close();
  return out;
}

Deno.test("PageBatchBuilder.addRunFrom makes the batches addFrom makes, page for page", () => {
  const pages = 600;
  // zero stretches of every length around ZERO_RUN_PAGES, broken by single pages
  const nonZero = new Set([0, 3, 20, 21, 40, 57, 100, 117, 118, 300, 333, 599]);
  const memory = memoryOf(pages, (p) => nonZero.has(p) ? (p % 250) + 1 : 0);
  memory[200 * PAGE_SIZE + 4095] = 9; // a zero run's last byte is not zero
  const every = Uint32Array.from({ length: pages }, (_, i) => i);
  const gaps = every.filter((p) => p % 7 !== 3); // pfns that do not all follow
  for (const pfns of [every, gaps]) {
    for (const countZeroPages of [false, true]) {
      for (const [nonZeroPages, maxPages] of [[4, 64], [256, 40], [2, 17]]) {
        const options = { pageSize: PAGE_SIZE, nonZeroPages, maxPages };
        const byRuns = new PageBatchBuilder(options);
        const byPages = new PageBatchBuilder(options);
        byRuns.countZeroPages = byPages.countZeroPages = countZeroPages;
        const expected: ReturnType<typeof batchesOf> = [];
        for (const pfn of pfns) {
          byPages.addFrom(memory, pfn);
          if (byPages.full) {
            expected.push({
              pfns: [...byPages.pfns.subarray(0, byPages.count)],
              zero: [...byPages.zero.subarray(0, byPages.count)],
              pages: byPages.pages.slice(0, byPages.count * PAGE_SIZE),
            });
            byPages.reset();
          }
        }
        if (byPages.count > 0) {
          expected.push({
            pfns: [...byPages.pfns.subarray(0, byPages.count)],
            zero: [...byPages.zero.subarray(0, byPages.count)],
            pages: byPages.pages.slice(0, byPages.count * PAGE_SIZE),
          });
        }
        const got = batchesOf(byRuns, memory, pfns);
        const what =
          `${pfns.length} pfns, countZeroPages ${countZeroPages}, limits ${nonZeroPages}/${maxPages}`;
        assert.equal(got.length, expected.length, what);
        got.forEach((batch, k) => {
          assert.deepEqual(batch.pfns, expected[k].pfns, `${what}, batch ${k}`);
          assert.deepEqual(batch.zero, expected[k].zero, `${what}, batch ${k}`);
          assert.deepEqual(
            batch.pages,
            expected[k].pages,
            `${what}, batch ${k}`,
          );
        });
      }
    }
  }
});
