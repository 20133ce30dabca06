import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import { EncoderChain } from "./chain.ts";
import { zstd } from "./zstd.ts";
import { codecById, codecByName } from "./registry.ts";

const PAGE = 4096;
const ctx = { pageSize: PAGE, pageCount: 16, options: {} };

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

/** The golden page of docs/codecs/zstd.md: "hakobu!\n" x 128, then 3072 zero bytes. */
function goldenPage(): Uint8Array {
  const page = new Uint8Array(PAGE);
  const text = new TextEncoder().encode("hakobu!\n");
  for (let i = 0; i < 1024; i++) page[i] = text[i % 8];
  return page;
}
/** As libzstd 1.5 writes it at level 1 (with the frame content size). */
const GOLDEN = hex(
  "28b52ffd60000fa500004868616b6f6275210a000200fcc3f9a2feaac205",
);
/** As node:zlib writes it at level 1 (no frame content size). */
const GOLDEN_NODE = hex(
  "28b52ffd0048a500004868616b6f6275210a000200fcc3f9a2feaac205",
);
/** As the `zstd -1` CLI writes it (with a content checksum). */
const GOLDEN_CLI = hex(
  "28b52ffd64000fa500004868616b6f6275210a000200fcc3f9a2feaac205efdda28a",
);
const BACKENDS = ["ffi", "node"] as const;

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

/** Pages that compress (runs of a few byte values, as guest memory often holds). */
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

const encoders = BACKENDS.map((backend) =>
  zstd.createEncoder({ ...ctx, options: { backend } })
);
const decoders = BACKENDS.map((backend) =>
  zstd.createDecoder({ ...ctx, options: { backend } })
);

/** Encodes with each backend and decodes with each; returns the ffi backend's length. */
function roundTrip(page: Uint8Array): number {
  const out = new Uint8Array(PAGE);
  const lengths = encoders.map((enc) => {
    const n = enc.encode(3, page, out);
    if (n >= 0) {
      assert.ok(n < PAGE);
      for (const dec of decoders) {
        const g = guarded();
        dec.decode(3, out.slice(0, n), g.page);
        assert.deepEqual(g.page, page);
        assert.ok(g.intact());
      }
    }
    return n;
  });
  return lengths[0];
}

Deno.test("zstd is registered as wire id 6", () => {
  assert.equal(codecByName("zstd"), zstd);
  assert.equal(codecById(6), zstd);
  assert.equal(zstd.maxEncodedBytes(PAGE), PAGE - 1);
});

Deno.test("zstd golden vector decodes byte for byte", () => {
  const g = guarded();
  zstd.createDecoder(ctx).decode(0, GOLDEN, g.page);
  assert.deepEqual(g.page, goldenPage());
  assert.ok(g.intact());
});

Deno.test("zstd encodes the golden page with both backends and round trips it", () => {
  const n = roundTrip(goldenPage());
  assert.ok(n > 0 && n < 64, `encoded length ${n}`);
});

Deno.test("zstd encodes the zero page in a few bytes", () => {
  const n = roundTrip(new Uint8Array(PAGE));
  assert.ok(n > 0 && n < 32);
});

Deno.test("zstd round trips compressible pages (property)", () => {
  fc.assert(
    fc.property(compressiblePage, (page) => {
      assert.ok(roundTrip(page) > 0);
    }),
    { numRuns: 200 },
  );
});

Deno.test("zstd round trips or declines random pages (property)", () => {
  fc.assert(fc.property(randomPage, (page) => void roundTrip(page)), {
    numRuns: 100,
  });
});

Deno.test("zstd declines an incompressible page and the chain sends it raw", () => {
  const page = new Uint8Array(PAGE);
  crypto.getRandomValues(page);
  assert.equal(
    zstd.createEncoder(ctx).encode(0, page, new Uint8Array(PAGE)),
    -1,
  );
  const chain = new EncoderChain({ pageSize: PAGE, pageCount: 1 });
  chain.select([{ name: "zstd" }, { name: "raw" }]);
  assert.equal(chain.encode(0, page).codecId, 0);
  assert.equal(chain.encode(0, goldenPage()).codecId, 6);
});

Deno.test("zstd level and backend are honoured and validated", () => {
  const page = goldenPage();
  for (const backend of BACKENDS) {
    for (const level of [-5, 1, 3, 19]) {
      const out = new Uint8Array(PAGE);
      const enc = zstd.createEncoder({ ...ctx, options: { level, backend } });
      const n = enc.encode(0, page, out);
      assert.ok(n > 0);
      for (const other of BACKENDS) {
        const back = new Uint8Array(PAGE);
        zstd.createDecoder({ ...ctx, options: { backend: other } }).decode(
          0,
          out.subarray(0, n),
          back,
        );
        assert.deepEqual(back, page);
      }
    }
  }
  for (const level of [23, 1.5, "1", -200000]) {
    assert.throws(
      () => zstd.createEncoder({ ...ctx, options: { level } }),
      (e: unknown) => e instanceof CodecError && /level/.test(e.message),
    );
  }
  assert.throws(
    () => zstd.createEncoder({ ...ctx, options: { backend: "gpu" } }),
    (e: unknown) => e instanceof CodecError && /backend/.test(e.message),
  );
});

Deno.test("zstd golden vectors of both backends and the CLI decode with both backends", () => {
  for (const vector of [GOLDEN, GOLDEN_NODE, GOLDEN_CLI]) {
    for (const backend of BACKENDS) {
      const g = guarded();
      zstd.createDecoder({ ...ctx, options: { backend } }).decode(
        0,
        vector,
        g.page,
      );
      assert.deepEqual(g.page, goldenPage());
      assert.ok(g.intact());
    }
  }
});

Deno.test("zstd node backend encodes the golden page as the golden vector", () => {
  const out = new Uint8Array(PAGE);
  const n = zstd.createEncoder({ ...ctx, options: { backend: "node" } }).encode(
    0,
    goldenPage(),
    out,
  );
  // Pinned to the zstd inside Deno 2.9.6 (package.json pins the binary).
  assert.deepEqual(out.subarray(0, n), GOLDEN_NODE);
  const back = new Uint8Array(PAGE);
  zstd.createDecoder(ctx).decode(0, out.subarray(0, n), back);
  assert.deepEqual(back, goldenPage());
});

Deno.test("zstd decoder rejects a frame of the wrong size and a frame that inflates past the page", () => {
  for (const backend of BACKENDS) {
    const dec = zstd.createDecoder({ ...ctx, options: { backend } });
    // A frame of 8192 zero bytes (more than a page) and one of 100 bytes.
    for (const size of [8192, 100]) {
      const src = new Uint8Array(size);
      const small = new Uint8Array(PAGE);
      const n = zstd.createEncoder({
        pageSize: size,
        pageCount: 1,
        options: { backend: "ffi" },
      })
        .encode(0, src, small);
      assert.ok(n > 0);
      const g = guarded();
      assert.throws(
        () => dec.decode(0, small.subarray(0, n), g.page),
        (e: unknown) =>
          e instanceof CodecError && /zstd page 0/.test(e.message),
      );
      assert.ok(g.intact());
    }
  }
});

Deno.test("zstd decoder rejects bad lengths and short frames", () => {
  const dec = zstd.createDecoder(ctx);
  const page = new Uint8Array(PAGE);
  assert.throws(() => dec.decode(0, new Uint8Array(0), page), CodecError);
  assert.throws(() => dec.decode(0, new Uint8Array(PAGE), page), CodecError);
  // A valid block of fewer bytes than a page.
  const small = new Uint8Array(PAGE);
  const n = zstd.createEncoder(ctx).encode(0, new Uint8Array(PAGE), small);
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

Deno.test("zstd decoder: mutated and random input gives a page or a CodecError, never a write out of bounds", () => {
  const valid: Uint8Array[] = [GOLDEN, GOLDEN_NODE, GOLDEN_CLI];
  fc.assert(
    fc.property(compressiblePage, (page) => {
      const out = new Uint8Array(PAGE);
      const n = zstd.createEncoder(ctx).encode(0, page, out);
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
      for (const dec of decoders) {
        const g = guarded();
        try {
          dec.decode(0, input.subarray(0, Math.min(cutTo, PAGE - 1)), g.page);
        } catch (e) {
          assert.ok(e instanceof CodecError, String(e));
        }
        assert.ok(g.intact(), "guard bytes overwritten");
      }
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: PAGE - 1 }),
      (input) => {
        for (const dec of decoders) {
          const g = guarded();
          try {
            dec.decode(0, input, g.page);
          } catch (e) {
            assert.ok(e instanceof CodecError, String(e));
          }
          assert.ok(g.intact());
        }
      },
    ),
    { numRuns: 500 },
  );
});
