import assert from "node:assert/strict";
import { largeReads } from "./read_stream.ts";

/** A reader that returns odd sizes, as a pipe does, and counts its reads. */
function oddReader(data: Uint8Array) {
  let at = 0;
  const reader = {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      if (at >= data.length) return Promise.resolve(null);
      reader.reads++;
      const n = Math.min(p.length, 3001 + (at % 5000), data.length - at);
      p.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  return reader;
}

Deno.test("largeReads yields every byte in order, in chunks no larger than a slab, as views no later read overwrites", async () => {
  const data = new Uint8Array(100_000).map((_, i) => i * 7);
  const reader = oddReader(data);
  const chunks: Uint8Array[] = [];
  for await (const c of largeReads(reader, 16384)) chunks.push(c);
  assert.equal(chunks.length, reader.reads);
  assert.ok(chunks.every((c) => c.length > 0 && c.length <= 16384));
  assert.ok(chunks.every((c) => c.buffer instanceof SharedArrayBuffer));
  // chunks share slabs (several reads per slab), each slab filled in order
  const slabs = new Set(chunks.map((c) => c.buffer));
  assert.ok(slabs.size < chunks.length && slabs.size >= 100_000 / 16384);
  // read only after every chunk arrived: no later read overwrote an earlier chunk
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    joined.set(c, o);
    o += c.length;
  }
  assert.deepEqual(joined, data);
});

Deno.test("largeReads gives each read at least a sixteenth of a slab, and ends on the reader's end", async () => {
  const sizes: number[] = [];
  let left = 50_000;
  const reader = {
    read(p: Uint8Array): Promise<number | null> {
      sizes.push(p.length);
      if (left === 0) return Promise.resolve(null);
      const n = Math.min(p.length, 700, left);
      left -= n;
      return Promise.resolve(n);
    },
  };
  let total = 0;
  for await (const c of largeReads(reader, 8192)) total += c.length;
  assert.equal(total, 50_000);
  assert.ok(sizes.every((s) => s >= 8192 / 16), `read sizes ${sizes}`);
});

Deno.test("largeReads with a ring reuses its slabs in turn, reads only when asked, and keeps a chunk until ring - 1 more were read", async () => {
  const data = new Uint8Array(200_000).map((_, i) => i * 13 + (i >> 8));
  const reader = oddReader(data);
  const stream = largeReads(reader, 16384, { ring: 3 });
  const r = stream.getReader();
  const slabs = new Set<ArrayBufferLike>();
  const kept: { view: Uint8Array; copy: Uint8Array }[] = [];
  let total = 0;
  let overwritten = 0;
  for (;;) {
    const { value, done } = await r.read();
    if (done) break;
    // no read ahead of the consumer's own
    assert.equal(reader.reads, kept.length + 1);
    assert.deepEqual(value, data.subarray(total, total + value.length));
    total += value.length;
    slabs.add(value.buffer);
    kept.push({ view: value, copy: value.slice() });
    // the last ring - 1 = 2 chunks before this one are intact
    for (const k of kept.slice(-3)) assert.deepEqual(k.view, k.copy);
    if (kept.some((k) => !k.view.every((b, i) => b === k.copy[i]))) {
      overwritten++;
    }
  }
  assert.equal(total, data.length);
  assert.equal(slabs.size, 3);
  // older chunks were overwritten: the slabs were reused
  assert.ok(overwritten > 0);
});

Deno.test("largeReads refuses a ring of fewer than 2 slabs", () => {
  const reader = oddReader(new Uint8Array(1));
  assert.throws(() => largeReads(reader, 4096, { ring: 1 }), /ring must be/);
  assert.throws(() => largeReads(reader, 4096, { ring: 2.5 }), /ring must be/);
});
