import assert from "node:assert/strict";
import { isZeroPage } from "../zero_page.ts";
import { bytesFrom, gpu, hasAdapter } from "./_testing.ts";
import { ZeroScanKernel } from "./zero_scan.ts";
import { FingerprintKernel } from "./fingerprint.ts";
import { fingerprint128 } from "../codecs/_fingerprint.ts";
import { encodedPage } from "./compact.ts";
import { RleEncodeKernel } from "./rle_encode.ts";
import { dispatchGrid } from "./_runtime.ts";

function pageSet(n: number): Uint8Array[] {
  const pages: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const p = new Uint8Array(4096);
    if (i % 3 === 1) p[(i * 97) % 4096] = 1 + (i & 0x7f);
    if (i % 3 === 2) p.set(bytesFrom(i + 1, 4096));
    if (i % 7 === 6) p[4095] = 0x80;
    pages.push(p);
  }
  return pages;
}

Deno.test({
  name: "zero_scan flags exactly the all-zero pages (1, 3, 257 pages)",
  ignore: !hasAdapter,
  async fn() {
    const k = new ZeroScanKernel(gpu!.device);
    for (const n of [1, 3, 257]) {
      const pages = pageSet(n);
      const flags = await k.run(pages, 4096);
      assert.deepEqual(
        Array.from(flags),
        pages.map((p) => (isZeroPage(p) ? 1 : 0)),
      );
    }
  },
});

Deno.test({
  name:
    "fingerprint equals fingerprint128 per chunk (4096 and 512 byte chunks)",
  ignore: !hasAdapter,
  async fn() {
    const k = new FingerprintKernel(gpu!.device);
    const pages = pageSet(67);
    for (const chunkBytes of [4096, 512, 16]) {
      const got = await k.run(pages, { pageSize: 4096, chunkBytes });
      const want = new Uint32Array(got.length);
      const cw = chunkBytes >>> 2;
      const tmp = new Uint32Array(4);
      let c = 0;
      for (const p of pages) {
        const w = new Uint32Array(p.buffer, p.byteOffset, 1024);
        for (let s = 0; s < 1024; s += cw) {
          fingerprint128(w, s, cw, tmp);
          want.set(tmp, 4 * c++);
        }
      }
      assert.deepEqual(got, want, `chunkBytes ${chunkBytes}`);
    }
  },
});

Deno.test({
  name:
    "kernels cover more than 65535 workgroups with a 2D dispatch (zero_scan; rle_encode with HAKOBU_GPU_SLOW=1)",
  ignore: !hasAdapter,
  async fn() {
    const n = 70001;
    const ps = 16;
    const pages = Array.from({ length: n }, (_, i) => {
      const p = new Uint8Array(ps);
      if (i % 1000 === 999 || i === n - 1) p[i % ps] = 7;
      return p;
    });
    const flags = await new ZeroScanKernel(gpu!.device).run(pages, ps);
    pages.forEach((p, i) =>
      assert.equal(flags[i], isZeroPage(p) ? 1 : 0, `page ${i}`)
    );
    // rle_encode, scan and compact index pages the same way; on lavapipe a
    // 70001-workgroup rle dispatch takes ~23 s, so it runs only with HAKOBU_GPU_SLOW=1.
    if (Deno.env.get("HAKOBU_GPU_SLOW") === "1") {
      const tiny = pages.map((p) => p.subarray(0, 4));
      const r = await new RleEncodeKernel(gpu!.device).run(tiny, 4);
      // A one-word page always costs 2 words or more: every page declined.
      assert.equal(r.offsets[n], 0);
      assert.ok(r.sizes.every((s) => s === 0xffffffff));
      assert.equal(encodedPage(r, n - 1), null);
    }
  },
});

Deno.test("dispatchGrid splits workgroups into a 2D grid no wider than the limit", () => {
  assert.deepEqual(dispatchGrid(0, 65535), [0, 0]);
  assert.deepEqual(dispatchGrid(5, 65535), [5, 1]);
  assert.deepEqual(dispatchGrid(65535, 65535), [65535, 1]);
  assert.deepEqual(dispatchGrid(65536, 65535), [65535, 2]);
  assert.deepEqual(dispatchGrid(70001, 65535), [65535, 2]);
});
