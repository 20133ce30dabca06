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
const GOLDEN = "05000000 01000000 07000000 00000000" + " 11".repeat(16);

Deno.test("STREAM_END: the hand-written golden payload decodes, and encodes back", () => {
  const end = {
    streamBytes: 2 ** 32 + 5,
    pages: 7,
    digest: new Uint8Array(16).fill(0x11),
  };
  assert.equal(STREAM_END_BYTES, 32);
  assert.deepEqual(decodeStreamEnd(fromHex(GOLDEN)), end);
  assert.equal(toHex(encodeStreamEnd(end)), toHex(fromHex(GOLDEN)));
});

Deno.test("STREAM_END property: round trips any sizes below 2^53; the digest is copied", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (streamBytes, pages, digest) => {
        const payload = encodeStreamEnd({ streamBytes, pages, digest });
        const got = decodeStreamEnd(payload);
        assert.deepEqual(got, { streamBytes, pages, digest });
        payload.fill(0);
        assert.deepEqual(got.digest, digest);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("STREAM_END: a payload of any other size is a WireError; a digest of another size a RangeError", () => {
  // 48: a STREAM_END of the SHA-256 tunnels before the XXH3-128 digest
  for (const n of [0, 31, 33, 48]) {
    assert.throws(() => decodeStreamEnd(new Uint8Array(n)), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.match(
        e.message,
        new RegExp(
          `Cannot decode STREAM_END: payload of ${n} bytes, expected 32`,
        ),
      );
      assert.equal(e.offset, 0);
      return true;
    });
  }
  for (const n of [0, 15, 17, 32]) {
    assert.throws(
      () =>
        encodeStreamEnd({
          streamBytes: 1,
          pages: 0,
          digest: new Uint8Array(n),
        }),
      new RegExp(`STREAM_END digest must be 16 bytes, got ${n}`),
    );
  }
});
