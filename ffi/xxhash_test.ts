import assert from "node:assert/strict";
import fc from "fast-check";
import { xxh3x128, Xxh3x128State } from "./xxhash.ts";

function oneShot(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  xxh3x128(bytes, out, 0);
  return out;
}

Deno.test("Xxh3x128State: bytes in any pieces hash as the one buffer they make (XXH3-128 one-shot)", () => {
  const h = new Xxh3x128State();
  try {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.array(fc.nat(5000), { maxLength: 8 }),
        (bytes, cuts) => {
          h.reset();
          const at = [
            0,
            ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b),
            bytes.length,
          ];
          for (let i = 0; i + 1 < at.length; i++) {
            h.update(bytes.subarray(at[i], at[i + 1]));
          }
          assert.deepEqual(h.digest(), oneShot(bytes));
        },
      ),
      { numRuns: 300 },
    );
  } finally {
    h.close();
  }
});

Deno.test("Xxh3x128State: views over a SharedArrayBuffer, a large stream, and digest without reset continues", () => {
  const slab = new Uint8Array(new SharedArrayBuffer(3 << 20)).map((_, i) =>
    (i * 31 + (i >> 12)) & 0xff
  );
  const h = new Xxh3x128State();
  try {
    h.update(slab.subarray(0, 100));
    h.update(slab.subarray(100, (1 << 20) + 5));
    // digest() does not end the hash: more bytes continue it
    assert.deepEqual(h.digest(), oneShot(slab.slice(0, (1 << 20) + 5)));
    h.update(slab.subarray((1 << 20) + 5));
    assert.deepEqual(h.digest(), oneShot(slab.slice()));
    // a changed byte changes the digest
    const other = slab.slice();
    other[2_000_000] ^= 1;
    assert.notDeepEqual(oneShot(other), oneShot(slab.slice()));
    h.reset();
    assert.deepEqual(h.digest(), oneShot(new Uint8Array(0)));
  } finally {
    h.close();
  }
  h.close(); // twice: nothing
  assert.throws(() => h.update(new Uint8Array(1)), /used after close/);
});

Deno.test("Xxh3x128State: a libxxhash that cannot be loaded is an error naming it, the path tried and the fix", async () => {
  const code = `
    import { Xxh3x128State } from ${
    JSON.stringify(new URL("./xxhash.ts", import.meta.url).href)
  };
    try { new Xxh3x128State(); console.log("loaded"); }
    catch (e) { console.log(e.constructor.name + ": " + e.message); }
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { HAKOBU_LIBXXHASH: "/nonexistent/libxxhash.so.0" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^FfiError: /);
  assert.match(text, /libxxhash/);
  assert.match(text, /\/nonexistent\/libxxhash\.so\.0/);
  assert.match(text, /check the path in HAKOBU_LIBXXHASH/);
});
