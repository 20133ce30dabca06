import assert from "node:assert/strict";
import { deriveSeed, mix32, Prng } from "./prng.ts";

Deno.test("Prng: equal seeds give equal streams, different seeds differ", () => {
  const a = new Prng(7), b = new Prng(7), c = new Prng(8);
  const xs = Array.from({ length: 100 }, () => a.next());
  assert.deepEqual(xs, Array.from({ length: 100 }, () => b.next()));
  assert.notDeepEqual(xs, Array.from({ length: 100 }, () => c.next()));
  for (const x of xs) assert.ok(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
});

Deno.test("Prng: fill matches next() and honours mask and add", () => {
  const words = new Int32Array(64);
  new Prng(3).fill(words, 8, 64);
  const r = new Prng(3);
  assert.equal(words[0], 0);
  for (let i = 8; i < 64; i++) assert.equal(words[i] >>> 0, r.next());
  const text = new Int32Array(256);
  new Prng(3).fill(text, 0, 256, { mask: 0x3f3f3f3f, add: 0x20202020 });
  for (const b of new Uint8Array(text.buffer)) assert.ok(b >= 0x20 && b < 0x60);
});

Deno.test("Prng: below and float stay in range and spread out", () => {
  const r = new Prng(11);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10000; i++) counts[r.below(10)]++;
  for (const c of counts) assert.ok(c > 800 && c < 1200, `bucket ${c}`);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    assert.ok(f >= 0 && f < 1);
  }
});

Deno.test("deriveSeed and mix32: order-sensitive and well mixed", () => {
  assert.notEqual(deriveSeed(1, 2), deriveSeed(2, 1));
  assert.equal(deriveSeed(1, 2, 3), deriveSeed(1, 2, 3));
  assert.notEqual(mix32(0), mix32(1));
  const seen = new Set<number>();
  for (let i = 0; i < 10000; i++) seen.add(deriveSeed(42, i, 0));
  assert.equal(seen.size, 10000);
});
