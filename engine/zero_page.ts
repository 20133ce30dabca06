import { Buffer } from "node:buffer";

/** Zero bytes pages are compared with, as long as the last page asked about (pages are 4 KiB). */
let zeros = new Uint8Array(4096);

/**
 * Whether every byte of a page is zero, the test behind the `zero` codec and
 * behind skipping zero pages over fresh destination memory. A `memcmp` with
 * zero bytes in native code (`Buffer.compare`): a word loop in JavaScript
 * ran at 0.6x its speed once compiled, and at a quarter of it in a fresh
 * channel Worker's first round, before the JIT had caught up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isZeroPage } from "@hakobu/hakobu";
 *
 * assert.equal(isZeroPage(new Uint8Array(4096)), true);
 * assert.equal(isZeroPage(new Uint8Array(4096).fill(1, 4095)), false);
 * ```
 */
export function isZeroPage(page: Uint8Array): boolean {
  if (page.length !== zeros.length) zeros = new Uint8Array(page.length);
  return Buffer.compare(page, zeros) === 0;
}

/** Zero bytes that spans of pages are compared with (grown on demand). */
let spanZeros = new Uint8Array(64 << 10);
/** A view of `spanZeros` as long as the last span asked about: no view per call. */
let spanView = spanZeros.subarray(0, 0);

/**
 * Whether every byte of `bytes` is zero, for spans of several pages at
 * once (a channel tests a run of pages that follow a zero page in one call).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isZeroSpan } from "@hakobu/hakobu";
 *
 * assert.equal(isZeroSpan(new Uint8Array(16 * 4096)), true);
 * ```
 */
export function isZeroSpan(bytes: Uint8Array): boolean {
  if (bytes.length !== spanView.length) {
    if (bytes.length > spanZeros.length) {
      spanZeros = new Uint8Array(bytes.length);
    }
    spanView = spanZeros.subarray(0, bytes.length);
  }
  return Buffer.compare(bytes, spanView) === 0;
}
