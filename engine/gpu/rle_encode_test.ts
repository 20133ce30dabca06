import assert from "node:assert/strict";
import fc from "fast-check";
import { rle } from "../codecs/rle.ts";
import { encodedPage } from "./compact.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { RleEncodeKernel } from "./rle_encode.ts";

function cpuRle(page: Uint8Array): Uint8Array | null {
  const enc = rle.createEncoder!({
    pageSize: page.length,
    pageCount: 1,
    options: {},
  });
  const out = new Uint8Array(rle.maxEncodedBytes!(page.length));
  const n = enc.encode(0, page, out);
  return n < 0 ? null : out.slice(0, n);
}

async function checkBatch(
  k: RleEncodeKernel,
  pages: Uint8Array[],
  pageSize: number,
): Promise<void> {
  const r = await k.run(pages, pageSize);
  pages.forEach((p, i) => {
    const want = cpuRle(p);
    const got = encodedPage(r, i);
    assert.deepEqual(
      got && Array.from(got),
      want && Array.from(want),
      `page ${i}`,
    );
  });
}

const A = [0xa1, 0xa2, 0xa3, 0xa4];
const B = [0xb1, 0xb2, 0xb3, 0xb4];
const C = [0xc1, 0xc2, 0xc3, 0xc4];
const Z = [0, 0, 0, 0];
const words = (...ws: number[][]) => new Uint8Array(ws.flat());

/** Every branch on 4 KiB pages: zero, colour, random (declined), pairs (declined), mixed. */
function branchPages(n: number): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 6;
    let p: Uint8Array = new Uint8Array(4096);
    if (kind === 1) p.fill(0x11 + i);
    if (kind === 2) p = bytesFrom(i + 7, 4096);
    if (kind === 3) {
      for (let w = 0; w < 1024; w++) p[w * 4] = w >> 1; // A A B B ...: exactly the page size
    }
    if (kind === 4) {
      p.set(bytesFrom(i, 2000), 1000); // literal in the middle of zero runs
    }
    if (kind === 5) {
      for (let w = 0; w < 1024; w++) p[w * 4] = (w * 7) % 3; // short runs and literals
    }
    pages.push(p);
  }
  return pages;
}

Deno.test({
  name: "rle_encode: golden vectors of docs/codecs/rle.md",
  ignore: !hasAdapter,
  async fn() {
    const k = new RleEncodeKernel(gpu!.device);
    const r4k = await k.run([
      new Uint8Array(4096),
      new Uint8Array(4096).map((_, i) => [0x11, 0x22, 0x33, 0x44][i & 3]),
    ], 4096);
    assert.deepEqual(Array.from(encodedPage(r4k, 0)!), [
      0,
      4,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
    assert.deepEqual(
      Array.from(encodedPage(r4k, 1)!),
      [0, 4, 0, 0, 0x11, 0x22, 0x33, 0x44],
    );
    const p64 = words(A, Z, Z, Z, Z, Z, Z, Z, Z, B, C, Z, Z, Z, Z, Z);
    const r64 = await k.run([p64], 64);
    assert.deepEqual(
      Array.from(encodedPage(r64, 0)!),
      [
        1,
        0,
        0,
        0x80,
        ...A,
        8,
        0,
        0,
        0,
        ...Z,
        2,
        0,
        0,
        0x80,
        ...B,
        ...C,
        5,
        0,
        0,
        0,
        ...Z,
      ],
    );
    const r24 = await k.run(
      [words(A, A, A, A, B, C), words(A, A, A, B, C, A)],
      24,
    );
    assert.deepEqual(
      Array.from(encodedPage(r24, 0)!),
      [4, 0, 0, 0, ...A, 2, 0, 0, 0x80, ...B, ...C],
    );
    assert.equal(encodedPage(r24, 1), null);
    assert.equal(encodedPage(await k.run([words(A, A, B, B)], 16), 0), null);
    assert.equal(
      encodedPage(await k.run([words(A, B, A, B, A, B, A, B)], 32), 0),
      null,
    );
  },
});

Deno.test({
  name:
    "rle_encode: byte-identical to rle.ts on 1, 3 and 257 pages hitting every branch",
  ignore: !hasAdapter,
  async fn() {
    const k = new RleEncodeKernel(gpu!.device);
    for (const n of [1, 3, 257]) await checkBatch(k, branchPages(n), 4096);
  },
});

Deno.test({
  name:
    "rle_encode: byte-identical to rle.ts on random pages from a small alphabet (property)",
  ignore: !hasAdapter,
  async fn() {
    const k = new RleEncodeKernel(gpu!.device);
    // Words from a 3-value alphabet make runs, literals and boundaries everywhere.
    const page = fc.array(fc.integer({ min: 0, max: 2 }), {
      minLength: 1024,
      maxLength: 1024,
    }).map((ws) => {
      const p = new Uint8Array(4096);
      ws.forEach((w, i) => (p[i * 4 + 3] = w));
      return p;
    });
    const smallPage = fc.array(fc.integer({ min: 0, max: 1 }), {
      minLength: 1,
      maxLength: 40,
    }).map((ws) => new Uint8Array(ws.flatMap((w) => [w, 0, 0, 9])));
    await fc.assert(
      fc.asyncProperty(
        fc.array(page, { minLength: 1, maxLength: 5 }),
        async (pages) => await checkBatch(k, pages, 4096),
      ),
      { numRuns: 15 },
    );
    await fc.assert(
      fc.asyncProperty(
        smallPage,
        async (p) => await checkBatch(k, [p], p.length),
      ),
      { numRuns: 30 },
    );
  },
});
