import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import { EncoderChain } from "./chain.ts";
import { lz4 } from "./lz4.ts";
import { codecById, codecByName } from "./registry.ts";

const PAGE = 4096;
const ctx = { pageSize: PAGE, pageCount: 16, options: {} };

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

/** The golden page of docs/codecs/lz4.md: "hakobu!\n" x 128, then 3072 zero bytes. */
function goldenPage(): Uint8Array {
  const page = new Uint8Array(PAGE);
  const text = new TextEncoder().encode("hakobu!\n");
  for (let i = 0; i < 1024; i++) page[i] = text[i % 8];
  return page;
}
const GOLDEN = hex(
  "8f68616b6f6275210a0800ffffffe81f000100fffffffffffffffffffffff2500000000000",
);

/** A page buffer with 16 guard bytes (0xa5) either side, to catch writes out of bounds. */
function guarded(): { page: Uint8Array; intact: () => boolean } {
  const buf = new Uint8Array(PAGE + 32).fill(0xa5);
  return {
    page: buf.subarray(16, 16 + PAGE),
    intact: () =>
      buf.subarray(0, 16).every((b) => b === 0xa5) &&
      buf.subarray(16 + PAGE).every((b) => b === 0xa5),
  };
}

/** Pages that compress: runs of a few byte values, as guest memory often holds. */
const compressiblePage = fc.array(
  fc.record({
    value: fc.integer({ min: 0, max: 255 }),
    run: fc.integer({ min: 1, max: 600 }),
  }),
  { minLength: 1, maxLength: 40 },
).map((runs) => {
  const page = new Uint8Array(PAGE);
  let at = 0;
  for (let i = 0; at < PAGE; i = (i + 1) % runs.length) {
    const { value, run } = runs[i];
    page.fill(value, at, Math.min(PAGE, at + run));
    at += run;
  }
  return page;
});
const randomPage = fc.uint8Array({ minLength: PAGE, maxLength: PAGE });

function roundTrip(page: Uint8Array): number {
  const out = new Uint8Array(PAGE);
  const n = lz4.createEncoder(ctx).encode(3, page, out);
  if (n >= 0) {
    assert.ok(n < PAGE);
    const g = guarded();
    lz4.createDecoder(ctx).decode(3, out.slice(0, n), g.page);
    assert.deepEqual(g.page, page);
    assert.ok(g.intact());
  }
  return n;
}

Deno.test("lz4 is registered as wire id 5", () => {
  assert.equal(codecByName("lz4"), lz4);
  assert.equal(codecById(5), lz4);
  assert.equal(lz4.maxEncodedBytes(PAGE), PAGE - 1);
});

Deno.test("lz4 golden vector decodes byte for byte", () => {
  const g = guarded();
  lz4.createDecoder(ctx).decode(0, GOLDEN, g.page);
  assert.deepEqual(g.page, goldenPage());
  assert.ok(g.intact());
});

Deno.test("lz4 encodes the golden page and round trips it", () => {
  const n = roundTrip(goldenPage());
  assert.ok(n > 0 && n < 64, `encoded length ${n}`);
});

Deno.test("lz4 encodes the zero page in a few bytes", () => {
  const n = roundTrip(new Uint8Array(PAGE));
  assert.ok(n > 0 && n < 32);
});

Deno.test("lz4 round trips compressible pages (property)", () => {
  fc.assert(
    fc.property(compressiblePage, (page) => {
      assert.ok(roundTrip(page) > 0);
    }),
    { numRuns: 200 },
  );
});

Deno.test("lz4 round trips or declines random pages (property)", () => {
  fc.assert(fc.property(randomPage, (page) => void roundTrip(page)), {
    numRuns: 100,
  });
});

Deno.test("lz4 declines an incompressible page and the chain sends it raw", () => {
  const page = new Uint8Array(PAGE);
  crypto.getRandomValues(page);
  assert.equal(
    lz4.createEncoder(ctx).encode(0, page, new Uint8Array(PAGE)),
    -1,
  );
  const chain = new EncoderChain({ pageSize: PAGE, pageCount: 1 });
  chain.select([{ name: "lz4" }, { name: "raw" }]);
  assert.equal(chain.encode(0, page).codecId, 0);
  assert.equal(chain.encode(0, goldenPage()).codecId, 5);
});

Deno.test("lz4 acceleration is honoured and validated", () => {
  const page = goldenPage();
  for (const acceleration of [1, 8, 65537]) {
    const out = new Uint8Array(PAGE);
    const enc = lz4.createEncoder({ ...ctx, options: { acceleration } });
    const n = enc.encode(0, page, out);
    if (acceleration === 1) assert.ok(n > 0);
    if (n < 0) continue; // declined: fine, raw sends it
    const back = new Uint8Array(PAGE);
    lz4.createDecoder(ctx).decode(0, out.subarray(0, n), back);
    assert.deepEqual(back, page);
  }
  for (const acceleration of [0, -1, 1.5, "fast", 70000]) {
    assert.throws(
      () => lz4.createEncoder({ ...ctx, options: { acceleration } }),
      (e: unknown) => e instanceof CodecError && /acceleration/.test(e.message),
    );
  }
});

Deno.test("lz4 decoder rejects bad lengths and short blocks", () => {
  const dec = lz4.createDecoder(ctx);
  const page = new Uint8Array(PAGE);
  assert.throws(() => dec.decode(0, new Uint8Array(0), page), CodecError);
  assert.throws(() => dec.decode(0, new Uint8Array(PAGE), page), CodecError);
  // A valid block of fewer bytes than a page.
  const small = new Uint8Array(PAGE);
  const n = lz4.createEncoder(ctx).encode(0, new Uint8Array(PAGE), small);
  assert.ok(n > 0);
  const half = new Uint8Array(64);
  assert.throws(
    () => dec.decode(0, half.subarray(0, 20).fill(0x10), page),
    CodecError,
  );
  assert.throws(
    () => dec.decode(0, small.subarray(0, n), new Uint8Array(100)),
    CodecError,
  );
});

Deno.test("lz4 decoder: mutated and random input gives a page or a CodecError, never a write out of bounds", () => {
  const dec = lz4.createDecoder(ctx);
  const valid: Uint8Array[] = [GOLDEN];
  fc.assert(
    fc.property(compressiblePage, (page) => {
      const out = new Uint8Array(PAGE);
      const n = lz4.createEncoder(ctx).encode(0, page, out);
      if (n > 0) valid.push(out.slice(0, n));
    }),
    { numRuns: 30 },
  );
  const mutation = fc.record({
    which: fc.nat(),
    flips: fc.array(
      fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      {
        minLength: 1,
        maxLength: 6,
      },
    ),
    cut: fc.nat(),
    grow: fc.uint8Array({ maxLength: 16 }),
  });
  fc.assert(
    fc.property(mutation, ({ which, flips, cut, grow }) => {
      const base = valid[which % valid.length];
      const input = new Uint8Array(base.length + grow.length);
      input.set(base);
      input.set(grow, base.length);
      for (const { at, value } of flips) input[at % input.length] = value;
      const cutTo = cut % 3 === 0 ? 1 + (cut % input.length) : input.length;
      const g = guarded();
      try {
        dec.decode(0, input.subarray(0, Math.min(cutTo, PAGE - 1)), g.page);
      } catch (e) {
        assert.ok(e instanceof CodecError, String(e));
      }
      assert.ok(g.intact(), "guard bytes overwritten");
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: PAGE - 1 }),
      (input) => {
        const g = guarded();
        try {
          dec.decode(0, input, g.page);
        } catch (e) {
          assert.ok(e instanceof CodecError, String(e));
        }
        assert.ok(g.intact());
      },
    ),
    { numRuns: 500 },
  );
});
