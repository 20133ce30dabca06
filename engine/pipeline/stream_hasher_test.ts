import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { StreamHasher } from "./stream_hasher.ts";

Deno.test("StreamHasher gives the SHA-256 of the bytes given in order, and starts over after each digest", async () => {
  const h = new StreamHasher();
  try {
    const a = new Uint8Array(300_000).map((_, i) => i * 13);
    const b = new TextEncoder().encode("the end");
    h.update(a.subarray(0, 1000));
    h.update(a.subarray(1000));
    a.fill(0); // the hasher took copies
    h.update(b);
    const expected = createHash("sha256")
      .update(new Uint8Array(300_000).map((_, i) => i * 13)).update(b)
      .digest("hex");
    assert.equal(
      [...await h.digest()].map((x) => x.toString(16).padStart(2, "0")).join(
        "",
      ),
      expected,
    );
    h.update(b);
    assert.deepEqual(
      await h.digest(),
      new Uint8Array(createHash("sha256").update(b).digest()),
    );
  } finally {
    h.close();
  }
});

Deno.test("StreamHasher shares bytes over a SharedArrayBuffer, joins consecutive views, and keeps their order among copied bytes", async () => {
  const h = new StreamHasher();
  try {
    const slab1 = new Uint8Array(new SharedArrayBuffer(3 << 20)).map((_, i) =>
      i * 31 + 1
    );
    const slab2 = new Uint8Array(new SharedArrayBuffer(5000)).map((_, i) =>
      i ^ 0x5a
    );
    const plain = new Uint8Array(777).fill(9);
    const pieces = [
      slab1.subarray(0, 100), // joined with the next two
      slab1.subarray(100, 70_000),
      slab1.subarray(70_000, (1 << 20) + 5), // past the join limit
      slab1.subarray((1 << 20) + 5, 2 << 20),
      plain, // a copy between shared views
      slab1.subarray(2 << 20, 3 << 20),
      slab2.subarray(4000), // another buffer
      slab2.subarray(0, 4000), // same buffer, not consecutive
      slab1.subarray(10, 20), // back in the first
    ];
    const expected = createHash("sha256");
    for (const p of pieces) {
      h.update(p);
      expected.update(p);
    }
    assert.deepEqual(await h.digest(), new Uint8Array(expected.digest()));
    // the last shared view went with the digest, not after it
    h.update(slab2.subarray(0, 10));
    assert.deepEqual(
      await h.digest(),
      new Uint8Array(
        createHash("sha256").update(slab2.subarray(0, 10)).digest(),
      ),
    );
  } finally {
    h.close();
  }
});
