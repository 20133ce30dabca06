import assert from "node:assert/strict";
import { WireError } from "../errors.ts";
import { MAX_JSON_PAYLOAD } from "./frame.ts";
import {
  decodeAbort,
  decodeEnd,
  decodeError,
  decodeFinal,
  decodeHello,
  decodeReady,
  decodeResult,
  decodeRoundEnd,
  decodeWelcome,
  encodeAbort,
  encodeEnd,
  encodeError,
  encodeFinal,
  encodeHello,
  encodeReady,
  encodeResult,
  encodeRoundEnd,
  encodeWelcome,
  type Hello,
  MAX_TEXT,
} from "./messages.ts";

const json = (v: unknown): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(v));

const hello: Hello = {
  protocol: 1,
  memoryBytes: 64 * 4096,
  pageSize: 4096,
  codecs: [{ id: 0, name: "raw" }, { id: 1, name: "zero" }],
  vm: "sim:idle 256 KiB",
  policy: "plain",
};

Deno.test("messages: every message survives a round trip", () => {
  assert.deepEqual(decodeHello(encodeHello(hello)), hello);
  assert.deepEqual(
    decodeWelcome(encodeWelcome({ protocol: 1, accepted: true })),
    {
      protocol: 1,
      accepted: true,
    },
  );
  const roundEnd = { round: 3, pages: 10, rawBytes: 40960, wireBytes: 2 ** 40 };
  assert.deepEqual(decodeRoundEnd(encodeRoundEnd(roundEnd)), roundEnd);
  assert.deepEqual(decodeFinal(encodeFinal({ round: 9, pagesTotal: 1234 })), {
    round: 9,
    pagesTotal: 1234,
  });
  assert.deepEqual(decodeReady(encodeReady({ pagesApplied: 77 })), {
    pagesApplied: 77,
  });
  const digest = new Uint8Array(32).map((_, i) => i);
  assert.deepEqual(decodeEnd(encodeEnd(digest)), digest);
  const result = { verified: true, digest: "0f".repeat(32), pagesApplied: 64 };
  assert.deepEqual(decodeResult(encodeResult(result)), result);
  assert.deepEqual(decodeError(encodeError({ message: "Disk full: \u00e9" })), {
    message: "Disk full: \u00e9",
  });
  assert.deepEqual(decodeAbort(encodeAbort({ reason: "operator" })), {
    reason: "operator",
  });
});

Deno.test("messages: decoders ignore unknown extra fields", () => {
  assert.deepEqual(decodeReady(json({ pagesApplied: 1, later: "x" })), {
    pagesApplied: 1,
  });
});

Deno.test("messages: END must be exactly 32 bytes; decodeEnd copies", () => {
  assert.throws(
    () => decodeEnd(new Uint8Array(31)),
    /Cannot decode END: digest must be exactly 32 bytes, got 31/,
  );
  assert.throws(() => decodeEnd(new Uint8Array(33)), WireError);
  assert.throws(() => encodeEnd(new Uint8Array(16)), RangeError);
  const payload = new Uint8Array(32).fill(1);
  const d = decodeEnd(payload);
  payload.fill(2);
  assert.equal(d[0], 1);
});

Deno.test("messages: decoders reject non-JSON, non-objects and oversized payloads", () => {
  assert.throws(
    () => decodeReady(new Uint8Array([0xff, 0xfe])),
    /Cannot decode READY: payload is not UTF-8 JSON/,
  );
  assert.throws(
    () => decodeReady(json("{")),
    /Cannot decode READY: payload must be a JSON object/,
  );
  assert.throws(
    () => decodeReady(new TextEncoder().encode("{")),
    /not UTF-8 JSON/,
  );
  assert.throws(() => decodeReady(json([1])), /must be a JSON object/);
  assert.throws(() => decodeReady(json(null)), /must be a JSON object/);
  const big = new Uint8Array(MAX_JSON_PAYLOAD + 1).fill(0x20);
  assert.throws(() => decodeAbort(big), /over the 65536-byte JSON limit/);
  assert.throws(
    () => encodeHello({ ...hello, vm: "x".repeat(MAX_JSON_PAYLOAD) }),
    RangeError,
  );
});

Deno.test("messages: decoders name the bad field", () => {
  const cases: [() => unknown, RegExp][] = [
    [
      () => decodeHello(json({ ...hello, protocol: "1" })),
      /HELLO: field "protocol" must be an integer/,
    ],
    [
      () => decodeHello(json({ ...hello, memoryBytes: -4096 })),
      /HELLO: field "memoryBytes"/,
    ],
    [
      () => decodeHello(json({ ...hello, memoryBytes: 1.5 })),
      /HELLO: field "memoryBytes"/,
    ],
    [
      () => decodeHello(json({ ...hello, pageSize: undefined })),
      /HELLO: field "pageSize" .* got nothing/,
    ],
    [
      () => decodeHello(json({ ...hello, codecs: "raw" })),
      /HELLO: field "codecs" must be an array/,
    ],
    [
      () => decodeHello(json({ ...hello, codecs: [{ id: 256, name: "x" }] })),
      /HELLO codecs\[0\]: field "id" must be an integer in 0..255/,
    ],
    [
      () => decodeHello(json({ ...hello, codecs: [{ id: 1 }] })),
      /HELLO codecs\[0\]: field "name" must be a string/,
    ],
    [
      () => decodeHello(json({ ...hello, codecs: [7] })),
      /HELLO codecs\[0\]: must be an object/,
    ],
    [
      () =>
        decodeHello(
          json({
            ...hello,
            codecs: new Array(257).fill({ id: 0, name: "raw" }),
          }),
        ),
      /at most 256 codecs/,
    ],
    [
      () => decodeHello(json({ ...hello, vm: 5 })),
      /HELLO: field "vm" must be a string/,
    ],
    [
      () => decodeHello(json({ ...hello, policy: "p".repeat(MAX_TEXT + 1) })),
      /HELLO: field "policy"/,
    ],
    [
      () => decodeWelcome(json({ protocol: 1, accepted: "yes" })),
      /WELCOME: field "accepted" must be a boolean/,
    ],
    [
      () =>
        decodeRoundEnd(
          json({ round: 2 ** 32, pages: 0, rawBytes: 0, wireBytes: 0 }),
        ),
      /ROUND_END: field "round" must be an integer in 0..4294967295/,
    ],
    [
      () => decodeRoundEnd(json({ round: 1, pages: 0, rawBytes: 0 })),
      /ROUND_END: field "wireBytes"/,
    ],
    [
      () => decodeFinal(json({ round: 1, pagesTotal: -1 })),
      /FINAL: field "pagesTotal"/,
    ],
    [
      () => decodeReady(json({ pagesApplied: "3" })),
      /READY: field "pagesApplied"/,
    ],
    [
      () =>
        decodeResult(
          json({ verified: 1, digest: "00".repeat(32), pagesApplied: 0 }),
        ),
      /RESULT: field "verified" must be a boolean/,
    ],
    [
      () =>
        decodeResult(
          json({ verified: true, digest: "AB".repeat(32), pagesApplied: 0 }),
        ),
      /RESULT: field "digest" must be 64 lower-case hex digits/,
    ],
    [
      () =>
        decodeResult(json({ verified: true, digest: "ab", pagesApplied: 0 })),
      /RESULT: field "digest"/,
    ],
    [
      () => decodeError(json({ msg: "x" })),
      /ERROR: field "message" must be a string/,
    ],
    [
      () => decodeAbort(json({ reason: false })),
      /ABORT: field "reason" must be a string/,
    ],
  ];
  for (const [fn, message] of cases) {
    assert.throws(
      fn,
      (e: unknown) => e instanceof WireError && message.test(e.message),
      String(message),
    );
  }
});

Deno.test("messages: long ERROR and ABORT texts are cut to fit", () => {
  assert.equal(
    decodeError(encodeError({ message: "m".repeat(MAX_TEXT * 2) })).message
      .length,
    MAX_TEXT,
  );
  assert.equal(
    decodeAbort(encodeAbort({ reason: "r".repeat(MAX_TEXT + 1) })).reason
      .length,
    MAX_TEXT,
  );
});
