import assert from "node:assert/strict";
import { FfiError } from "./_library.ts";
import { libzstd, openZstd, zstdErrorName, zstdVersion } from "./zstd.ts";

Deno.test("libzstd loads and reports a 1.x version", () => {
  assert.match(zstdVersion(), /^1\.\d+\.\d+$/);
});

Deno.test("libzstd round trips a page with reused contexts", () => {
  const z = libzstd();
  const cctx = z.ZSTD_createCCtx();
  const dctx = z.ZSTD_createDCtx();
  try {
    const src = new Uint8Array(4096);
    for (let i = 0; i < src.length; i++) src[i] = (i * 13) & 63;
    const dst = new Uint8Array(Number(z.ZSTD_compressBound(4096n)));
    const back = new Uint8Array(4096);
    for (let k = 0; k < 3; k++) {
      const n = z.ZSTD_compressCCtx(
        cctx,
        dst,
        BigInt(dst.length),
        src,
        4096n,
        1,
      );
      assert.equal(zstdErrorName(n), undefined);
      const r = z.ZSTD_decompressDCtx(dctx, back, 4096n, dst, n);
      assert.equal(r, 4096n);
      assert.deepEqual(back, src);
    }
  } finally {
    z.ZSTD_freeCCtx(cctx);
    z.ZSTD_freeDCtx(dctx);
  }
});

Deno.test("libzstd reports a too-small destination as an error code with text", () => {
  const z = libzstd();
  const dctx = z.ZSTD_createDCtx();
  try {
    const src = new Uint8Array(4096).fill(9);
    const dst = new Uint8Array(64);
    const cctx = z.ZSTD_createCCtx();
    const n = z.ZSTD_compressCCtx(cctx, dst, 64n, src, 4096n, 1);
    z.ZSTD_freeCCtx(cctx);
    const small = new Uint8Array(10);
    const r = z.ZSTD_decompressDCtx(dctx, small, 10n, dst, n);
    assert.match(zstdErrorName(r) ?? "", /too small/i);
  } finally {
    z.ZSTD_freeDCtx(dctx);
  }
});

Deno.test("openZstd with a missing path names the library, the path and the fix", () => {
  try {
    openZstd("/nonexistent");
    assert.fail("expected FfiError");
  } catch (e) {
    assert.ok(e instanceof FfiError);
    assert.equal(e.library, "libzstd");
    assert.match(e.message, /Cannot load libzstd: tried "\/nonexistent"/);
    assert.match(e.message, /HAKOBU_LIBZSTD/);
  }
});
