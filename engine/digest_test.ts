import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import {
  DIGEST_RANGE_BYTES,
  hex,
  memoryDigest,
  mismatchedRanges,
  rangeCount,
  rangeDigests,
  rootDigest,
} from "./digest.ts";

const sha256 = (b: Uint8Array): Uint8Array =>
  new Uint8Array(createHash("sha256").update(b).digest());

/** A memory image of `n` bytes with a seeded pattern. */
function image(n: number, seed = 1): Uint8Array {
  const m = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    m[i] = x >>> 24;
  }
  return m;
}

Deno.test("digest: well-known SHA-256 values: one range of 8 KiB of zeros, and the root of it", () => {
  assert.equal(DIGEST_RANGE_BYTES, 64 << 20);
  const zeros = new Uint8Array(8192);
  // sha256sum of 8192 zero bytes
  const range =
    "9f1dcbc35c350d6027f98be0f5c8b43b42ca52b7604459c0c42be3aa88913d47";
  assert.equal(hex(rangeDigests(zeros, 8192, 0, 1)), range);
  // the root is the SHA-256 of the range digests one after the other
  assert.equal(
    hex(rootDigest(rangeDigests(zeros, 8192, 0, 1))),
    hex(sha256(sha256(zeros))),
  );
  assert.equal(hex(new Uint8Array([0, 1, 0xab, 0xff])), "0001abff");
});

Deno.test("digest property: each range digest is the SHA-256 of that slice (the last may be shorter), and the parts join up", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 40_000 }),
      fc.integer({ min: 1, max: 5 }).map((k) => k * 4096),
      fc.nat(),
      async (size, rangeBytes, seed) => {
        const m = image(size, seed);
        const count = rangeCount(size, rangeBytes);
        assert.equal(count, Math.ceil(size / rangeBytes));
        const whole = rangeDigests(m, rangeBytes, 0, count);
        assert.equal(whole.length, 32 * count);
        for (let r = 0; r < count; r++) {
          const slice = m.subarray(
            r * rangeBytes,
            Math.min(size, (r + 1) * rangeBytes),
          );
          assert.deepEqual(whole.subarray(32 * r, 32 * r + 32), sha256(slice));
        }
        // ranges hashed in parts (as the channel Workers do) join up
        const cut = Math.floor(count / 2);
        const joined = new Uint8Array(32 * count);
        joined.set(rangeDigests(m, rangeBytes, 0, cut));
        joined.set(rangeDigests(m, rangeBytes, cut, count), 32 * cut);
        assert.deepEqual(joined, whole);
        // the async whole-image form gives the same
        const d = await memoryDigest(m, rangeBytes);
        assert.equal(d.rangeBytes, rangeBytes);
        assert.deepEqual(d.ranges, whole);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("digest: memoryDigest over 16 MiB chunks of a 64 MiB range equals one SHA-256 of the range", async () => {
  const m = image(40 << 20, 7);
  const d = await memoryDigest(m, 32 << 20);
  assert.equal(d.ranges.length, 64);
  assert.deepEqual(d.ranges.subarray(0, 32), sha256(m.subarray(0, 32 << 20)));
  assert.deepEqual(d.ranges.subarray(32), sha256(m.subarray(32 << 20)));
  assert.equal(rangeCount(0, 4096), 1); // an empty image still has a range
});

Deno.test("mismatchedRanges: names the ranges that differ, all of them when the shapes differ, at most `limit`", async () => {
  const a = image(10 * 4096, 3);
  const b = a.slice();
  b[4096 * 3 + 5] ^= 1; // range 1 of 8 KiB ranges
  b[4096 * 9] ^= 1; // range 4
  const da = await memoryDigest(a, 8192);
  const db = await memoryDigest(b, 8192);
  assert.deepEqual(mismatchedRanges(da, da), []);
  assert.deepEqual(mismatchedRanges(da, db), [1, 4]);
  assert.deepEqual(mismatchedRanges(da, db, 1), [1]);
  // other range size, other count: every range is suspect
  const other = await memoryDigest(a, 4096);
  assert.deepEqual(
    mismatchedRanges(da, other),
    Array.from({ length: 10 }, (_, i) => i),
  );
  const shorter = await memoryDigest(a.subarray(0, 4 * 4096), 8192);
  assert.deepEqual(mismatchedRanges(da, shorter), [0, 1, 2, 3, 4]);
  assert.equal(mismatchedRanges(da, other, 3).length, 3);
  // the default limit is 64 (RESULT's MAX_MISMATCHES)
  const big = { rangeBytes: 4096, ranges: new Uint8Array(32 * 100) };
  const bad = { rangeBytes: 4096, ranges: new Uint8Array(32 * 100).fill(1) };
  assert.equal(mismatchedRanges(big, bad).length, 64);
});

Deno.test("rangeDigests with a zero-page map: untouched ranges get the digest of zeros without being read, others are hashed", () => {
  const pageSize = 4096;
  const rangeBytes = 4 * pageSize;
  // 3 ranges, the last one page short; pages 0..10
  const memory = image(11 * pageSize, 7);
  const touched = new Uint8Array(11);
  touched[5] = 1; // range 1 holds a written page
  // Ranges 0 and 2 are untouched, yet memory holds bytes there: a digest
  // equal to zeros' proves they were not read.
  const got = rangeDigests(memory, rangeBytes, 0, 3, { touched, pageSize });
  assert.deepEqual(got.subarray(0, 32), sha256(new Uint8Array(rangeBytes)));
  assert.deepEqual(
    got.subarray(32, 64),
    sha256(memory.subarray(rangeBytes, 2 * rangeBytes)),
  );
  assert.deepEqual(
    got.subarray(64, 96),
    sha256(new Uint8Array(3 * pageSize)),
    "the short last range: zeros of its own length",
  );
  // Where memory really is zero outside touched pages, both ways agree.
  const real = new Uint8Array(11 * pageSize);
  real.set(memory.subarray(5 * pageSize, 6 * pageSize), 5 * pageSize);
  assert.deepEqual(
    rangeDigests(real, rangeBytes, 0, 3, { touched, pageSize }),
    rangeDigests(real, rangeBytes, 0, 3),
  );
});

Deno.test("digest xxh3-128: each range is XXH3-128 of its bytes; every step-th range, the zero-map shortcut and the chunked whole agree", async () => {
  const { xxh3x128 } = await import("../ffi/xxhash.ts");
  const xxh = (b: Uint8Array) => {
    const out = new Uint8Array(16);
    xxh3x128(b, out, 0);
    return out;
  };
  const rangeBytes = 8192;
  const m = image(5 * rangeBytes + 4096); // 6 ranges, the last one short
  const count = rangeCount(m.length, rangeBytes);
  const all = rangeDigests(m, rangeBytes, 0, count, undefined, {
    scheme: "xxh3-128",
  });
  assert.equal(all.length, count * 16);
  for (let r = 0; r < count; r++) {
    assert.deepEqual(
      all.subarray(r * 16, r * 16 + 16),
      xxh(m.subarray(r * rangeBytes, Math.min(m.length, (r + 1) * rangeBytes))),
    );
  }
  // channel 1 of 4 takes ranges 1 and 5
  const strided = rangeDigests(m, rangeBytes, 1, count, undefined, {
    scheme: "xxh3-128",
    step: 4,
  });
  assert.deepEqual(strided.subarray(0, 16), all.subarray(16, 32));
  assert.deepEqual(strided.subarray(16, 32), all.subarray(80, 96));
  // untouched ranges of a map are the digest of zeros, unread
  const zeros = new Uint8Array(m.length);
  const touched = new Uint8Array(m.length / 4096);
  const z = rangeDigests(
    m, // read nothing: every page is untouched
    rangeBytes,
    0,
    count,
    { touched, pageSize: 4096 },
    { scheme: "xxh3-128" },
  );
  assert.deepEqual(
    z,
    rangeDigests(zeros, rangeBytes, 0, count, undefined, {
      scheme: "xxh3-128",
    }),
  );
  const whole = await memoryDigest(m, rangeBytes, "xxh3-128");
  assert.deepEqual(whole.ranges, all);
  assert.equal(whole.scheme, "xxh3-128");
});

Deno.test("mismatchedRanges with xxh3-128: 16-byte digests, a scheme change is a mismatch of every range", async () => {
  const a = image(4 * 8192);
  const b = a.slice();
  b[2 * 8192 + 5] ^= 1;
  const da = await memoryDigest(a, 8192, "xxh3-128");
  const db = await memoryDigest(b, 8192, "xxh3-128");
  assert.deepEqual(mismatchedRanges(da, db), [2]);
  assert.deepEqual(
    mismatchedRanges(da, await memoryDigest(a, 8192, "sha256")),
    [0, 1, 2, 3],
  );
});

Deno.test("pageDigests and mismatchedPages: the pages of the ranges asked about, the short last range, a bounded list", async () => {
  const { mismatchedPages, pageDigests, rangePages } = await import(
    "./digest.ts"
  );
  const where = {
    scheme: "xxh3-128" as const,
    rangeBytes: 4 * 4096,
    pageSize: 4096,
    memoryBytes: 10 * 4096, // ranges of 4, 4 and 2 pages
  };
  assert.deepEqual(rangePages(2, where), [8, 10]);
  const a = image(where.memoryBytes);
  const b = a.slice();
  for (const p of [1, 2, 3, 9]) b[p * 4096 + 100] ^= 0xff;
  const page = (m: Uint8Array) => (p: number) =>
    m.subarray(p * 4096, (p + 1) * 4096);
  const ranges = [0, 2];
  const da = pageDigests(page(a), ranges, where);
  const db = pageDigests(page(b), ranges, where);
  assert.equal(da.length, (4 + 2) * 16);
  assert.deepEqual(mismatchedPages(da, db, ranges, where), {
    pages: [1, 2, 3, 9],
    count: 4,
  });
  assert.deepEqual(mismatchedPages(da, db, ranges, { ...where, limit: 2 }), {
    pages: [1, 2],
    count: 4,
  });
  assert.deepEqual(mismatchedPages(da, da, ranges, where), {
    pages: [],
    count: 0,
  });
});
