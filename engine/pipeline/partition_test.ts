import assert from "node:assert/strict";
import fc from "fast-check";
import { BLOCK_PAGES, channelOf, splitByChannel } from "./partition.ts";

Deno.test("partition: blocks of 256 pages are dealt to channels round robin", () => {
  assert.equal(BLOCK_PAGES, 256);
  assert.deepEqual(
    [0, 255, 256, 511, 512, 767, 768, 1024].map((p) => channelOf(p, 3)),
    [0, 0, 1, 1, 2, 2, 0, 1],
  );
  // one channel takes everything
  for (const pfn of [0, 1, 2 ** 40]) assert.equal(channelOf(pfn, 1), 0);
  // pfns above 2^32 (memory over 16 TiB) keep the rule
  assert.equal(channelOf(2 ** 32, 3), (2 ** 32 / 256) % 3);
  assert.equal(channelOf(2 ** 32 + 256, 2), 1);
});

Deno.test("partition property: channelOf is a channel, constant within a block, and every channel gets one block of any run of `channels` blocks", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 64 }),
      fc.nat(2 ** 45),
      (channels, pfn) => {
        const c = channelOf(pfn, channels);
        assert.ok(Number.isInteger(c) && c >= 0 && c < channels);
        const start = pfn - (pfn % BLOCK_PAGES);
        assert.equal(channelOf(start, channels), c);
        assert.equal(channelOf(start + BLOCK_PAGES - 1, channels), c);
        const seen = new Set<number>();
        for (let b = 0; b < channels; b++) {
          seen.add(channelOf(start + b * BLOCK_PAGES, channels));
        }
        assert.equal(seen.size, channels);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("partition property: splitByChannel keeps every pfn once, in its channel, ascending, and reads only the first `count`", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.uniqueArray(fc.nat(20_000), { maxLength: 300 }),
      fc.nat(5),
      (channels, drawn, extra) => {
        const sorted = drawn.sort((a, b) => a - b);
        const pfns = new Uint32Array(sorted.length + extra);
        pfns.set(sorted);
        pfns.fill(7, sorted.length); // past `count`: ignored
        const parts = splitByChannel(pfns, sorted.length, channels);
        assert.equal(parts.length, channels);
        const all: number[] = [];
        parts.forEach((part, c) => {
          for (let i = 0; i < part.length; i++) {
            assert.equal(channelOf(part[i], channels), c);
            if (i > 0) assert.ok(part[i] > part[i - 1]);
            all.push(part[i]);
          }
        });
        assert.deepEqual(all.sort((a, b) => a - b), sorted);
        // the parts are copies: the caller may reuse its list
        pfns.fill(0);
        assert.equal(parts.reduce((n, p) => n + p.length, 0), sorted.length);
        assert.deepEqual(
          parts.flatMap((p) => [...p]).sort((a, b) => a - b),
          sorted,
        );
      },
    ),
    { numRuns: 300 },
  );
});
