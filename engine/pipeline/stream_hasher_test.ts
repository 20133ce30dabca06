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
      [...await h.digest()].map((x) => x.toString(16).padStart(2, "0")).join(""),
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
