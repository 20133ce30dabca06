import assert from "node:assert/strict";
import fc from "fast-check";
import { delta } from "../codecs/delta.ts";
import { encodedPage } from "./compact.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { DeltaEncodeKernel } from "./delta_encode.ts";

function cpuDelta(old: Uint8Array | null, cur: Uint8Array): Uint8Array | null {
  const enc = delta.createEncoder!({
    pageSize: cur.length,
    pageCount: 1,
    options: {},
  });
  if (old) {
    enc.sent?.(0, old, 0); // bulk pass: not cached
    enc.sent?.(0, old, 0); // re-sent: cached
  }
  const out = new Uint8Array(delta.maxEncodedBytes!(cur.length));
  const n = enc.encode(0, cur, out);
  return n < 0 ? null : out.slice(0, n);
}

async function checkBatch(
  k: DeltaEncodeKernel,
  pairs: [Uint8Array | null, Uint8Array][],
): Promise<void> {
  const ps = pairs[0][1].length;
  const r = await k.run(pairs.map((p) => p[1]), pairs.map((p) => p[0]), ps);
  pairs.forEach(([old, cur], i) => {
    const want = cpuDelta(old, cur);
    const got = encodedPage(r, i);
    assert.deepEqual(
      got && Array.from(got),
      want && Array.from(want),
      `page ${i}`,
    );
  });
}

function hex(b: Uint8Array | null): string {
  return b
    ? Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ")
    : "declined";
}

/** Every branch: unchanged, one byte, edges, all changed, alternating, random, not cached. */
function branchPairs(n: number): [Uint8Array | null, Uint8Array][] {
  const out: [Uint8Array | null, Uint8Array][] = [];
  for (let i = 0; i < n; i++) {
    const old = bytesFrom(i + 1, 4096);
    const cur = old.slice();
    switch (i % 8) {
      case 0:
        break; // unchanged
      case 1:
        cur[(i * 131) % 4096] ^= 0x5a;
        break;
      case 2:
        cur[0] ^= 1;
        cur[4095] ^= 1;
        break;
      case 3:
        for (let b = 0; b < 4096; b++) cur[b] ^= 0xff; // all changed: declined
        break;
      case 4:
        for (let b = 0; b < 4096; b += 2) cur[b] ^= 1; // alternating: declined
        break;
      case 5:
        cur.set(bytesFrom(i + 99, 300), 1000 + i % 4);
        break;
      case 6:
        for (let b = 5; b < 4000; b += 9) cur[b] ^= 0x10;
        break;
      case 7:
        out.push([null, cur]); // not in the cache
        continue;
    }
    out.push([old, cur]);
  }
  return out;
}

Deno.test({
  name: "delta_encode: golden vectors of docs/codecs/delta.md",
  ignore: !hasAdapter,
  async fn() {
    const k = new DeltaEncodeKernel(gpu!.device);
    const zero = new Uint8Array(4096);
    const cases: [Uint8Array, (p: Uint8Array) => void, string][] = [
      [zero, () => {}, ""],
      [zero, (p) => (p[1001] = 1), "e9 07 01 01"],
      [zero, (p) => (p[2048] = 0x5a), "80 10 01 5a"],
      [zero, (p) => (p[0] = 0xff), "00 01 ff"],
      [zero, (p) => (p[4095] = 0x42), "ff 1f 01 42"],
      [zero, (p) => p.set([1, 1, 0, 1], 5), "05 02 01 01 01 01 01"],
      [
        zero,
        (p) => {
          p.set([0xa, 0xb, 0xc, 0xd]);
          p.fill(0x77, 100, 228);
        },
        "00 04 0a 0b 0c 0d 60 80 01" + " 77".repeat(128),
      ],
      [new Uint8Array(4096).fill(0x11), (p) => {
        p[3] = 0x22;
        p[4095] = 0x33;
      }, "03 01 22 fb 1f 01 33"],
      [zero, (p) => p.fill(0xff), "declined"],
    ];
    const pairs = cases.map(([old, f]) => {
      const cur = old.slice();
      f(cur);
      return [old, cur] as [Uint8Array, Uint8Array];
    });
    const r = await k.run(pairs.map((p) => p[1]), pairs.map((p) => p[0]), 4096);
    cases.forEach(([, , want], i) => {
      const got = encodedPage(r, i);
      assert.equal(got && got.length === 0 ? "" : hex(got), want, `case ${i}`);
    });
  },
});

Deno.test({
  name:
    "delta_encode: byte-identical to delta.ts on 1, 3 and 257 pages hitting every branch",
  ignore: !hasAdapter,
  async fn() {
    const k = new DeltaEncodeKernel(gpu!.device);
    for (const n of [1, 3, 257]) await checkBatch(k, branchPairs(n));
  },
});

Deno.test({
  name: "delta_encode: byte-identical to delta.ts on random edits (property)",
  ignore: !hasAdapter,
  async fn() {
    const k = new DeltaEncodeKernel(gpu!.device);
    const edit = fc.record({
      at: fc.integer({ min: 0, max: 4095 }),
      len: fc.integer({ min: 1, max: 300 }),
      value: fc.integer({ min: 0, max: 255 }),
    });
    const pair = fc.record({
      seed: fc.integer({ min: 1, max: 1 << 30 }),
      edits: fc.array(edit, { maxLength: 40 }),
      sparse: fc.boolean(),
    }).map(({ seed, edits, sparse }) => {
      const old = sparse ? new Uint8Array(4096) : bytesFrom(seed, 4096);
      const cur = old.slice();
      for (const e of edits) {
        cur.fill(e.value, e.at, Math.min(4096, e.at + e.len));
      }
      return [old, cur] as [Uint8Array, Uint8Array];
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(pair, { minLength: 1, maxLength: 6 }),
        async (pairs) => await checkBatch(k, pairs),
      ),
      { numRuns: 20 },
    );
  },
});
