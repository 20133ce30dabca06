import assert from "node:assert/strict";
import { largeReads } from "./read_stream.ts";

Deno.test("largeReads yields every byte in order, in chunks no larger than asked, each its own buffer", async () => {
  const data = new Uint8Array(100_000).map((_, i) => i * 7);
  let at = 0;
  // a reader that returns odd sizes, as a pipe does
  const reader = {
    read(p: Uint8Array): Promise<number | null> {
      if (at >= data.length) return Promise.resolve(null);
      const n = Math.min(p.length, 3001 + (at % 5000), data.length - at);
      p.set(data.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
  const chunks: Uint8Array[] = [];
  for await (const c of largeReads(reader, 4096)) chunks.push(c);
  assert.ok(chunks.every((c) => c.length > 0 && c.length <= 4096));
  assert.equal(new Set(chunks.map((c) => c.buffer)).size, chunks.length);
  const joined = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    joined.set(c, o);
    o += c.length;
  }
  assert.deepEqual(joined, data);
});
