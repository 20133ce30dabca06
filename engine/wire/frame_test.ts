import assert from "node:assert/strict";
import { WireError } from "../errors.ts";
import {
  decodeFrameHeader,
  encodeFrame,
  encodeFrameHeader,
  frameChecksum,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
  MAX_PAYLOAD,
  verifyFrameChecksum,
} from "./frame.ts";
import { encodeWelcome } from "./messages.ts";
import { PagesFrameBuilder } from "./pages.ts";
import { fromHex, toHex } from "./_test_util.ts";

/** Golden frames; the same hex is in docs/wire-format.md. */
const GOLDEN_PAGES = "484b0300 02000000 18000000 a0719af8" + // header: HK, PAGES, flags 0, round 2, length 24, crc
  "01000000 00000000" + // count 1, reserved
  "05000000 00000000 01 00 0000 00000000"; // pfn 5, codec 1 (zero), flags, reserved, length 0
const GOLDEN_WELCOME = "484b0200 00000000 1e000000 313ab8bd" +
  "7b2270726f746f636f6c223a312c226163636570746564223a747275657d";

Deno.test("frame: the golden PAGES frame encodes byte for byte and decodes back", () => {
  const b = new PagesFrameBuilder({ maxPages: 1, maxEntryBytes: 0 });
  b.add(5, 1, new Uint8Array(0));
  const frame = b.frame(2);
  assert.equal(toHex(frame), toHex(fromHex(GOLDEN_PAGES)));
  assert.deepEqual(
    toHex(encodeFrame(FrameType.PAGES, 2, frame.subarray(HEADER_BYTES))),
    toHex(frame),
  );
  const h = decodeFrameHeader(frame);
  assert.deepEqual(h, {
    type: FrameType.PAGES,
    flags: 0,
    round: 2,
    length: 24,
    crc: 0xf89a71a0,
  });
  verifyFrameChecksum(frame, frame.subarray(HEADER_BYTES));
});

Deno.test("frame: the golden WELCOME frame", () => {
  const f = encodeFrame(
    FrameType.WELCOME,
    0,
    encodeWelcome({ protocol: 1, accepted: true }),
  );
  assert.equal(toHex(f), toHex(fromHex(GOLDEN_WELCOME)));
});

Deno.test("frame: header round trip for every type, round and length edge", () => {
  for (const type of Object.values(FrameType)) {
    for (const round of [0, 1, 0xffff_ffff]) {
      for (const len of [0, 1, 300]) {
        const payload = new Uint8Array(len).map((_, i) => i * 31 + type);
        const f = encodeFrame(type, round, payload);
        assert.equal(f.length, HEADER_BYTES + len);
        const h = decodeFrameHeader(f);
        assert.equal(h.type, type);
        assert.equal(h.round, round);
        assert.equal(h.length, len);
        assert.equal(h.crc, frameChecksum(f, payload));
        assert.deepEqual(f.subarray(HEADER_BYTES), payload);
        verifyFrameChecksum(f, f.subarray(HEADER_BYTES));
      }
    }
  }
});

Deno.test("frame: encodeFrameHeader writes in place in front of a payload", () => {
  const buf = new Uint8Array(HEADER_BYTES + 5);
  buf.set([1, 2, 3, 4, 5], HEADER_BYTES);
  encodeFrameHeader(FrameType.END, 7, buf.subarray(HEADER_BYTES), buf);
  assert.deepEqual(
    buf,
    encodeFrame(FrameType.END, 7, new Uint8Array([1, 2, 3, 4, 5])),
  );
});

Deno.test("frame: encoders refuse unknown types, bad rounds and oversized payloads", () => {
  assert.throws(
    () => encodeFrame(0 as FrameType, 0, new Uint8Array(0)),
    RangeError,
  );
  assert.throws(
    () => encodeFrame(FrameType.END, -1, new Uint8Array(0)),
    RangeError,
  );
  assert.throws(
    () => encodeFrame(FrameType.END, 2 ** 32, new Uint8Array(0)),
    RangeError,
  );
  assert.throws(
    () =>
      encodeFrameHeader(
        FrameType.PAGES,
        0,
        { length: MAX_PAYLOAD + 1 } as Uint8Array,
        new Uint8Array(16),
      ),
    RangeError,
  );
});

function header(edit: (v: DataView) => void): Uint8Array {
  const f = encodeFrame(FrameType.READY, 3, new Uint8Array([1, 2]));
  edit(new DataView(f.buffer));
  return f;
}

Deno.test("frame: decodeFrameHeader rejects bad magic, unknown type, flags and length with offsets", () => {
  const cases: [Uint8Array, RegExp, number][] = [
    [
      header((v) => v.setUint8(0, 0x49)),
      /Bad frame magic "0x4b49" at offset 100/,
      100,
    ],
    [header((v) => v.setUint8(2, 0)), /Unknown frame type "0"/, 102],
    [header((v) => v.setUint8(2, 12)), /Unknown frame type "12"/, 102],
    [header((v) => v.setUint8(3, 1)), /Bad frame flags "1"/, 103],
    [
      header((v) => v.setUint32(8, MAX_PAYLOAD + 1, true)),
      /payload length "33554433" .* over the limit/,
      108,
    ],
    [
      header((v) => v.setUint32(8, 0xffff_ffff, true)),
      /payload length "4294967295"/,
      108,
    ],
  ];
  for (const [bytes, message, offset] of cases) {
    assert.throws(() => decodeFrameHeader(bytes, 100), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.match(e.message, message);
      assert.equal(e.offset, offset);
      return true;
    });
  }
  assert.equal(
    decodeFrameHeader(header((v) => v.setUint32(8, MAX_PAYLOAD, true))).length,
    MAX_PAYLOAD,
  );
  assert.throws(
    () => decodeFrameHeader(new Uint8Array(15)),
    /Truncated frame header/,
  );
});

Deno.test("frame: verifyFrameChecksum catches a flipped bit in header or payload", () => {
  const f = encodeFrame(
    FrameType.ROUND_END,
    9,
    new TextEncoder().encode('{"round":9}'),
  );
  for (const at of [4, 8, HEADER_BYTES, f.length - 1]) {
    const bad = f.slice();
    bad[at] ^= 0x10;
    assert.throws(
      () => verifyFrameChecksum(bad, bad.subarray(HEADER_BYTES)),
      /Bad checksum in ROUND_END frame at offset 0/,
    );
  }
});

Deno.test("frame: frameTypeName names known and unknown types", () => {
  assert.equal(frameTypeName(FrameType.ABORT), "ABORT");
  assert.equal(frameTypeName(42), "type 42");
});
