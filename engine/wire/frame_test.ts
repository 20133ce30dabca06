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
import { encodeBatchPayload } from "./batch.ts";
import { encodeGoldenBatchPages, fromHex, toHex } from "./_test_util.ts";
import { GOLDEN_BATCH_FRAME, GOLDEN_WELCOME_FRAME } from "./_golden.ts";

Deno.test("frame: the golden BATCH frame encodes byte for byte and decodes back", () => {
  const frame = fromHex(GOLDEN_BATCH_FRAME);
  const payload = frame.subarray(HEADER_BYTES);
  assert.equal(
    toHex(encodeFrame(FrameType.BATCH, 2, payload, 1)),
    toHex(frame),
  );
  assert.deepEqual(decodeFrameHeader(frame), {
    type: FrameType.BATCH,
    channel: 1,
    round: 2,
    length: 74,
    crc: 0x1c80a17a,
  });
  verifyFrameChecksum(frame, payload);
  // The payload as the encoder writes it...
  const rle = fromHex("08000000 00040000 11223344");
  const parts = {
    count: 4,
    pfns: [5, 6, 9, 10],
    sectionOf: [0, 0, 1, 0],
    sections: [
      { codecId: 1, bytes: new Uint8Array(0) },
      { codecId: 2, bytes: rle },
    ],
  };
  const out = new Uint8Array(74);
  assert.equal(encodeBatchPayload(parts, out), 74);
  assert.equal(toHex(out), toHex(payload));
  // ...and as a zero → rle chain encodes those pages.
  assert.equal(toHex(encodeGoldenBatchPages()), toHex(payload));
});

Deno.test("frame: the golden WELCOME frame", () => {
  const f = encodeFrame(
    FrameType.WELCOME,
    0,
    encodeWelcome({ protocol: 2, accepted: true }),
  );
  assert.equal(toHex(f), toHex(fromHex(GOLDEN_WELCOME_FRAME)));
});

Deno.test("frame: header round trip for every type, channel, round and length edge", () => {
  for (const type of Object.values(FrameType)) {
    for (const round of [0, 1, 0xffff_ffff]) {
      for (const len of [0, 1, 300]) {
        const channel = (round + len) % 256;
        const payload = new Uint8Array(len).map((_, i) => i * 31 + type);
        const f = encodeFrame(type, round, payload, channel);
        assert.equal(f.length, HEADER_BYTES + len);
        const h = decodeFrameHeader(f);
        assert.equal(h.type, type);
        assert.equal(h.channel, channel);
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

Deno.test("frame: encoders refuse unknown types, bad rounds and channels, and oversized payloads", () => {
  for (const channel of [-1, 256, 1.5]) {
    assert.throws(
      () => encodeFrame(FrameType.BATCH, 0, new Uint8Array(0), channel),
      /Cannot encode frame channel/,
    );
  }
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
        FrameType.BATCH,
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

Deno.test("frame: decodeFrameHeader rejects bad magic, unknown type and length with offsets; any channel passes", () => {
  const cases: [Uint8Array, RegExp, number][] = [
    [
      header((v) => v.setUint8(0, 0x49)),
      /Bad frame magic "0x4b49" at offset 100/,
      100,
    ],
    [header((v) => v.setUint8(2, 0)), /Unknown frame type "0"/, 102],
    // protocol 1's PAGES frame is gone: type 3 is as unknown as any other
    [
      header((v) => v.setUint8(2, 3)),
      /^Unknown frame type "3" at offset 102: known types are 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 32, 33, 51, 52, 53$/,
      102,
    ],
    [header((v) => v.setUint8(2, 13)), /Unknown frame type "13"/, 102],
    [header((v) => v.setUint8(2, 255)), /Unknown frame type "255"/, 102],
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
  // byte 3 is the channel: the session checks it, not the header decoder
  assert.equal(
    decodeFrameHeader(header((v) => v.setUint8(3, 200))).channel,
    200,
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
  assert.equal(frameTypeName(12), "BATCH");
  assert.equal(frameTypeName(33), "STREAM_END");
  assert.equal(frameTypeName(42), "type 42");
  assert.equal(frameTypeName(3), "type 3");
  assert.throws(
    () => encodeFrame(3 as FrameType, 0, new Uint8Array(0)),
    /Cannot encode frame of unknown type "3"/,
  );
});
