import assert from "node:assert/strict";
import { isZeroPage, isZeroSpan } from "./zero_page.ts";

Deno.test("isZeroPage finds a single non-zero byte anywhere, aligned or not", () => {
  const buf = new Uint8Array(3 * 4096 + 8);
  for (const offset of [0, 4096, 1, 4099]) {
    const page = buf.subarray(offset, offset + 4096);
    assert.equal(isZeroPage(page), true);
    for (const at of [0, 1, 31, 32, 2047, 4095]) {
      page[at] = 0x80;
      assert.equal(isZeroPage(page), false, `offset ${offset}, byte ${at}`);
      page[at] = 0;
    }
  }
  // A non-zero byte just outside the page does not count.
  buf[4096 * 2] = 1;
  assert.equal(isZeroPage(buf.subarray(4096, 8192)), true);
  assert.equal(isZeroPage(buf.subarray(8192, 12288)), false);
});

Deno.test("isZeroPage works across different backing buffers in turn", () => {
  const a = new Uint8Array(4096);
  const b = new Uint8Array(4096).fill(1);
  assert.equal(isZeroPage(a), true);
  assert.equal(isZeroPage(b), false);
  assert.equal(isZeroPage(a), true);
  assert.equal(
    isZeroPage(new Uint8Array(new SharedArrayBuffer(8192)).subarray(4096)),
    true,
  );
});

Deno.test("isZeroPage takes pages of any length, one after the other", () => {
  for (const length of [4096, 8192, 1, 0, 4096, 65536, 4095]) {
    const page = new Uint8Array(length);
    assert.equal(isZeroPage(page), true, `${length} zero bytes`);
    if (length === 0) continue;
    page[length - 1] = 1;
    assert.equal(isZeroPage(page), false, `${length} bytes, the last one set`);
  }
});

Deno.test("isZeroSpan finds a non-zero byte anywhere in a span of any length, between page tests", () => {
  for (const length of [16 * 4096, 4096, 200 * 4096, 3, 16 * 4096]) {
    const span = new Uint8Array(new SharedArrayBuffer(length + 8)).subarray(
      4,
      4 + length,
    );
    assert.equal(isZeroSpan(span), true, `${length} zero bytes`);
    assert.equal(isZeroPage(new Uint8Array(4096)), true);
    for (const at of [0, length >> 1, length - 1]) {
      span[at] = 1;
      assert.equal(isZeroSpan(span), false, `${length} bytes, byte ${at}`);
      span[at] = 0;
    }
  }
});
