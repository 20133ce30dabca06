import assert from "node:assert/strict";
import fc from "fast-check";
import { WireError } from "../errors.ts";
import {
  decodeStreamEnd,
  encodeStreamEnd,
  STREAM_END_BYTES,
} from "./stream_end.ts";
import { fromHex, toHex } from "../wire/_test_util.ts";

/** Written by hand from the module doc: 2^32 + 5 stream bytes, 7 pages, a digest of 0x11 bytes. */
const GOLDEN = "05000000 01000000 07000000 00000000" + " 11".repeat(32);

Deno.test("STREAM_END: the hand-written golden payload decodes, and encodes back", () => {
  const end = {
    streamBytes: 2 ** 32 + 5,
    pages: 7,
    sha256: new Uint8Array(32).fill(0x11),
  };
  assert.equal(STREAM_END_BYTES, 48);
  assert.deepEqual(decodeStreamEnd(fromHex(GOLDEN)), end);
  assert.equal(toHex(encodeStreamEnd(end)), toHex(fromHex(GOLDEN)));
});

Deno.test("STREAM_END property: round trips any sizes below 2^53; the digest is copied", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (streamBytes, pages, sha256) => {
        const payload = encodeStreamEnd({ streamBytes, pages, sha256 });
        const got = decodeStreamEnd(payload);
        assert.deepEqual(got, { streamBytes, pages, sha256 });
        payload.fill(0);
        assert.deepEqual(got.sha256, sha256);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("STREAM_END: a payload of any other size is a WireError; a digest of another size a RangeError", () => {
  for (const n of [0, 47, 49, 80]) {
    assert.throws(() => decodeStreamEnd(new Uint8Array(n)), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.match(
        e.message,
        new RegExp(
          `Cannot decode STREAM_END: payload of ${n} bytes, expected 48`,
        ),
      );
      assert.equal(e.offset, 0);
      return true;
    });
  }
  for (const n of [0, 31, 33]) {
    assert.throws(
      () =>
        encodeStreamEnd({
          streamBytes: 1,
          pages: 0,
          sha256: new Uint8Array(n),
        }),
      new RegExp(`STREAM_END digest must be 32 bytes, got ${n}`),
    );
  }
});
