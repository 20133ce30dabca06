import assert from "node:assert/strict";
import { WireError } from "../errors.ts";
import { MAX_JSON_PAYLOAD } from "./frame.ts";
import {
  decodeAbort,
  decodeAck,
  decodeCodec,
  decodeCommit,
  decodeCommitted,
  decodeEnd,
  decodeError,
  decodeFinal,
  decodeHello,
  decodeReady,
  decodeResult,
  decodeResume,
  decodeResumed,
  decodeRoundEnd,
  decodeWelcome,
  encodeAbort,
  encodeAck,
  encodeCodec,
  encodeCommit,
  encodeCommitted,
  encodeEnd,
  encodeError,
  encodeFinal,
  encodeHello,
  encodeReady,
  encodeResult,
  encodeResume,
  encodeResumed,
  encodeRoundEnd,
  encodeWelcome,
  type Hello,
  MAX_DIGEST_RANGES,
  MAX_MISMATCHES,
  MAX_TEXT,
  PROTOCOL_VERSION,
} from "./messages.ts";
import { MAX_CHANNELS } from "../plan.ts";

const json = (v: unknown): Uint8Array =>
  new TextEncoder().encode(JSON.stringify(v));

const hello: Hello = {
  protocol: 2,
  memoryBytes: 64 * 4096,
  pageSize: 4096,
  codecs: [{ id: 0, name: "raw" }, { id: 1, name: "zero" }],
  vm: "sim:idle 256 KiB",
  policy: "plain",
  channels: 4,
};

Deno.test("messages: every message survives a round trip", () => {
  assert.equal(PROTOCOL_VERSION, 2);
  assert.deepEqual(decodeHello(encodeHello(hello)), hello);
  const stream = { ...hello, stream: "qemu", channels: 1 };
  assert.deepEqual(decodeHello(encodeHello(stream)), stream);
  assert.deepEqual(
    decodeWelcome(encodeWelcome({ protocol: 2, accepted: true })),
    {
      protocol: 2,
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
  const end = {
    rangeBytes: 2 ** 33, // over 32 bits: both halves of the u64 are used
    ranges: new Uint8Array(96).map((_, i) => i),
  };
  assert.deepEqual(decodeEnd(encodeEnd(end)), end);
  const result = {
    verified: false,
    digest: "0f".repeat(32),
    pagesApplied: 64,
    mismatched: [0, 7],
  };
  assert.deepEqual(decodeResult(encodeResult(result)), result);
  // a stream tunnel's RESULT carries the stream's XXH3-128: 32 digits
  const streamResult = { ...result, verified: true, digest: "3c".repeat(16) };
  assert.deepEqual(decodeResult(encodeResult(streamResult)), streamResult);
  assert.deepEqual(decodeError(encodeError({ message: "Disk full: \u00e9" })), {
    message: "Disk full: \u00e9",
  });
  assert.deepEqual(decodeAbort(encodeAbort({ reason: "operator" })), {
    reason: "operator",
  });
  const codec = { id: 4, name: "dedup", options: { chunkBytes: 1024 } };
  assert.deepEqual(decodeCodec(encodeCodec(codec)), codec);
});

Deno.test("messages: HELLO without channels is one channel; RESULT without mismatched names none", () => {
  const { channels: _, ...old } = hello;
  assert.equal(decodeHello(json(old)).channels, 1);
  assert.equal(decodeHello(json(old)).stream, undefined);
  assert.deepEqual(
    decodeResult(
      json({ verified: true, digest: "ab".repeat(32), pagesApplied: 1 }),
    ).mismatched,
    [],
  );
  // a sender never names more than MAX_MISMATCHES ranges
  const many = Array.from({ length: 100 }, (_, i) => i);
  assert.equal(
    decodeResult(
      encodeResult({
        verified: false,
        digest: "ab".repeat(32),
        pagesApplied: 1,
        mismatched: many,
      }),
    ).mismatched!.length,
    MAX_MISMATCHES,
  );
});

Deno.test("messages: decoders ignore unknown extra fields", () => {
  assert.deepEqual(decodeReady(json({ pagesApplied: 1, later: "x" })), {
    pagesApplied: 1,
  });
});

Deno.test("messages: END is a 16-byte header and whole range digests; decodeEnd copies them", () => {
  // rangeBytes 4096 (lo, hi), count 2, reserved 0, then two digests
  const golden = new Uint8Array(16 + 64);
  golden.set([0x00, 0x10, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
  golden.fill(0xaa, 16, 48);
  golden.fill(0xbb, 48);
  const end = {
    rangeBytes: 4096,
    ranges: golden.slice(16),
  };
  assert.deepEqual(encodeEnd(end), golden);
  const d = decodeEnd(golden);
  assert.deepEqual(d, end);
  golden.fill(2, 16);
  assert.equal(d.ranges[0], 0xaa, "decodeEnd copies the digests");
  const bad = (
    edit: (v: DataView, b: Uint8Array) => Uint8Array,
    match: RegExp,
  ) => {
    const b = encodeEnd(end);
    assert.throws(
      () => decodeEnd(edit(new DataView(b.buffer), b)),
      (e: unknown) => e instanceof WireError && match.test(e.message),
      String(match),
    );
  };
  bad(
    (_, b) => b.subarray(0, 47),
    /Cannot decode END: 47 bytes is shorter than its header and one digest/,
  );
  bad(
    (_, b) => b.subarray(0, 79),
    /count "2" does not match its 79-byte payload/,
  );
  bad((v, b) => (v.setUint32(8, 3, true), b), /count "3" does not match/);
  bad((v, b) => (v.setUint32(8, 0, true), b), /count "0"/);
  bad((v, b) => (v.setUint32(12, 1, true), b), /reserved field must be 0/);
  bad(
    (v, b) => (v.setUint32(0, 4097, true), b),
    /rangeBytes "4097" must be a positive multiple of 4096/,
  );
  bad((v, b) => (v.setUint32(0, 0, true), b), /rangeBytes "0"/);
  assert.throws(
    () => encodeEnd({ rangeBytes: 4096, ranges: new Uint8Array(16) }),
    RangeError,
  );
  assert.throws(
    () => encodeEnd({ rangeBytes: 4096, ranges: new Uint8Array(0) }),
    RangeError,
  );
  assert.throws(
    () => encodeEnd({ rangeBytes: 0, ranges: new Uint8Array(32) }),
    RangeError,
  );
  assert.equal(MAX_DIGEST_RANGES, 1 << 20);
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
      () => decodeWelcome(json({ protocol: 2, accepted: "yes" })),
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
      /RESULT: field "digest" must be 64 \(or, from a stream tunnel, 32\) lower-case hex digits/,
    ],
    [
      () =>
        decodeResult(json({ verified: true, digest: "ab", pagesApplied: 0 })),
      /RESULT: field "digest"/,
    ],
    [
      // between a stream's 32 digits and a memory digest's 64
      () =>
        decodeResult(
          json({ verified: true, digest: "ab".repeat(24), pagesApplied: 0 }),
        ),
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
    [
      () => decodeHello(json({ ...hello, channels: MAX_CHANNELS + 1 })),
      /HELLO: field "channels" must be an integer in 0..64, got "65"/,
    ],
    [
      () => decodeHello(json({ ...hello, channels: "2" })),
      /HELLO: field "channels"/,
    ],
    [
      () => decodeHello(json({ ...hello, stream: 7 })),
      /HELLO: field "stream" must be a string/,
    ],
    [
      () =>
        decodeResult(
          json({
            verified: false,
            digest: "ab".repeat(32),
            pagesApplied: 0,
            mismatched: [-1],
          }),
        ),
      /RESULT: field "mismatched" must be at most 64 range indexes/,
    ],
    [
      () =>
        decodeResult(
          json({
            verified: false,
            digest: "ab".repeat(32),
            pagesApplied: 0,
            mismatched: new Array(65).fill(0),
          }),
        ),
      /RESULT: field "mismatched"/,
    ],
    [
      () => decodeCodec(json({ id: 1, name: "zero", options: [] })),
      /CODEC: field "options" must be a JSON object/,
    ],
    [
      () => decodeCodec(json({ id: 256, name: "zero", options: {} })),
      /CODEC: field "id" must be an integer in 0..255/,
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

Deno.test("verification messages: HELLO verify, WELCOME verify, RESULT pages round-trip; bad ones are refused naming the field", async () => {
  const m = await import("./messages.ts");
  const h = m.decodeHello(m.encodeHello({
    protocol: PROTOCOL_VERSION,
    memoryBytes: 4096,
    pageSize: 4096,
    codecs: [],
    vm: "v",
    policy: "p",
    channels: 1,
    verify: ["xxh3-128", "sha256"],
  }));
  assert.deepEqual(h.verify, ["xxh3-128", "sha256"]);
  assert.equal(
    decodeWelcome(
      encodeWelcome({ protocol: 2, accepted: true, verify: "xxh3-128" }),
    ).verify,
    "xxh3-128",
  );
  assert.equal(
    decodeWelcome(encodeWelcome({ protocol: 2, accepted: true })).verify,
    undefined,
  );
  const r = decodeResult(encodeResult({
    verified: false,
    digest: "ab".repeat(32),
    pagesApplied: 1,
    mismatched: [0, 3],
    differingRanges: 90,
    mismatchedPages: Array.from({ length: 300 }, (_, i) => i),
    differingPages: 300,
  }));
  assert.equal(r.differingRanges, 90);
  assert.equal(r.mismatchedPages?.length, m.MAX_MISMATCHED_PAGES);
  assert.equal(r.differingPages, 300);
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  assert.throws(
    () =>
      decodeResult(json({
        verified: false,
        digest: "ab".repeat(32),
        pagesApplied: 0,
        mismatchedPages: Array.from({ length: 257 }, (_, i) => i),
      })),
    (e) => e instanceof WireError && /"mismatchedPages"/.test(e.message),
  );
  assert.throws(
    () =>
      decodeHello(json({
        protocol: 2,
        memoryBytes: 4096,
        pageSize: 4096,
        codecs: [],
        vm: "v",
        policy: "p",
        verify: ["x".repeat(33)],
      })),
    (e) => e instanceof WireError && /"verify"/.test(e.message),
  );
});

Deno.test("DIGEST_ASK and PAGE_DIGESTS: round trips; empty, unordered, too many, oversized, odd-sized are refused", async () => {
  const m = await import("./messages.ts");
  assert.deepEqual(
    m.decodeDigestAsk(m.encodeDigestAsk({ ranges: [0, 7, 64] })).ranges,
    [0, 7, 64],
  );
  const json = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  for (
    const ranges of [
      [],
      [2, 1],
      [1, 1],
      [-1],
      [1.5],
      [MAX_DIGEST_RANGES],
      Array.from({ length: MAX_MISMATCHES + 1 }, (_, i) => i),
    ]
  ) {
    assert.throws(
      () => m.decodeDigestAsk(json({ ranges })),
      (e) =>
        e instanceof WireError && /DIGEST_ASK: field "ranges"/.test(e.message),
      JSON.stringify(ranges),
    );
  }
  const p = { ranges: [3, 9], digestBytes: 16, digests: new Uint8Array(96) };
  p.digests[5] = 7;
  const back = m.decodePageDigests(m.encodePageDigests(p));
  assert.deepEqual(back, p);
  const bad = (payload: Uint8Array, re: RegExp) =>
    assert.throws(
      () => m.decodePageDigests(payload),
      (e) => e instanceof WireError && re.test(e.message),
    );
  bad(new Uint8Array(m.MAX_PAGE_DIGESTS_PAYLOAD + 1), /over its limit/);
  bad(new Uint8Array(4), /shorter than its 8-byte header/);
  const enc = m.encodePageDigests(p);
  new DataView(enc.buffer).setUint32(4, 20, true);
  bad(enc, /digestBytes "20" must be 16 or 32/);
  bad(
    m.encodePageDigests({ ...p, digests: new Uint8Array(95) }),
    /whole 16-byte digests/,
  );
  const none = m.encodePageDigests(p);
  new DataView(none.buffer).setUint32(0, 0, true);
  bad(none, /count "0" must be 1\.\.64/);
  const many = m.encodePageDigests(p);
  new DataView(many.buffer).setUint32(0, 1000, true);
  bad(many, /count "1000" must be 1\.\.64/);
});

Deno.test("commit messages: HELLO and WELCOME commit, COMMIT, COMMITTED, RESUMED's result and ERROR's discarded round-trip; bad ones are refused naming the field", () => {
  assert.equal(
    decodeHello(encodeHello({ ...hello, commit: true })).commit,
    true,
  );
  assert.equal(decodeHello(encodeHello(hello)).commit, undefined);
  assert.throws(
    () => decodeHello(json({ ...hello, commit: "yes" })),
    /Cannot decode HELLO: field "commit" must be a boolean/,
  );
  const welcome = { protocol: PROTOCOL_VERSION, accepted: true, commit: true };
  assert.deepEqual(decodeWelcome(encodeWelcome(welcome)), welcome);
  // Old peers: a WELCOME without it says nothing.
  assert.equal(
    decodeWelcome(encodeWelcome({ protocol: 2, accepted: true })).commit,
    undefined,
  );
  const digest = "0f".repeat(32);
  assert.deepEqual(decodeCommit(encodeCommit({ digest })), { digest });
  assert.deepEqual(decodeCommitted(encodeCommitted({ digest })), {
    digest,
  });
  for (const bad of [{}, { digest: "0F".repeat(32) }, { digest: "ab" }]) {
    assert.throws(
      () => decodeCommit(json(bad)),
      /Cannot decode COMMIT: field "digest" must be 64 lower-case hex digits/,
    );
  }
  const result = {
    verified: true,
    digest,
    pagesApplied: 12,
    mismatched: [],
    differingRanges: 0,
  };
  const resumed = { channelPages: [5, 7], result };
  assert.deepEqual(decodeResumed(encodeResumed(resumed)), resumed);
  assert.equal(
    decodeResumed(encodeResumed({ channelPages: [1] })).result,
    undefined,
  );
  assert.throws(
    () => decodeResumed(json({ channelPages: [1], result: 3 })),
    /Cannot decode RESUMED: field "result" must be a RESULT object/,
  );
  assert.throws(
    () =>
      decodeResumed(
        json({ channelPages: [1], result: { ...result, digest: "x" } }),
      ),
    /Cannot decode RESULT: field "digest"/,
  );
  assert.deepEqual(
    decodeError(encodeError({ message: "gone", discarded: true })),
    { message: "gone", discarded: true },
  );
  assert.deepEqual(decodeError(encodeError({ message: "gone" })), {
    message: "gone",
  });
  assert.throws(
    () => decodeError(json({ message: "x", discarded: 1 })),
    /field "discarded" must be a boolean/,
  );
});

Deno.test("messages: RESUMED of a session with channel connections carries a channelJoin (fresh token, new ports), checked as WELCOME's and named as RESUMED's", () => {
  const channelJoin = {
    session: "0123456789abcdef0123456789abcdef",
    token: "fedcba9876543210fedcba9876543210",
    ports: [40001, 40002],
  };
  const resumed = { channelPages: [5, 7], channelJoin };
  assert.deepEqual(
    decodeResumed(encodeResumed(resumed)),
    resumed,
    "RESUMED's channelJoin does not round-trip",
  );
  assert.throws(
    () =>
      decodeResumed(
        json({ channelPages: [1], channelJoin: { ...channelJoin, ports: [] } }),
      ),
    /Cannot decode RESUMED: field "channelJoin.ports" must be 1 to 64 TCP ports/,
  );
  assert.throws(
    () =>
      decodeResumed(
        json({
          channelPages: [1],
          channelJoin: { ...channelJoin, token: "x" },
        }),
      ),
    /RESUMED channelJoin.*token/,
  );
  assert.throws(
    () => decodeResumed(json({ channelPages: [], received: 3, channelJoin })),
    /field "received" \(a stream tunnel's\) goes without pages, a result or channelJoin/,
  );
});

Deno.test("messages: a stream tunnel's RESUME and RESUMED say the bytes held, ACK round-trips, and bad counts are refused naming the field", () => {
  const session = "0123456789abcdef0123456789abcdef";
  assert.deepEqual(
    decodeResume(encodeResume({ session, received: 4096 })),
    { session, received: 4096 },
  );
  assert.deepEqual(
    decodeResumed(encodeResumed({ channelPages: [], received: 1 << 20 })),
    { channelPages: [], received: 1 << 20 },
  );
  // A native RESUMED still needs one count per channel.
  assert.throws(
    () => decodeResumed(encodeResumed({ channelPages: [] })),
    /field "channelPages" must be an array of 1 to/,
  );
  // Bytes and pages together mean nothing.
  assert.throws(
    () =>
      decodeResumed(
        new TextEncoder().encode(
          JSON.stringify({ channelPages: [3], received: 5 }),
        ),
      ),
    /field "received" \(a stream tunnel's\) goes without pages/,
  );
  const bad = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  assert.throws(
    () => decodeResume(bad({ session, received: -1 })),
    /Cannot decode RESUME: field "received"/,
  );
  assert.throws(
    () => decodeAck(bad({ received: 1.5 })),
    /Cannot decode ACK: field "received"/,
  );
  assert.throws(
    () => decodeAck(bad({ received: 0, session: "x", resumeMs: 1 })),
    /Cannot decode ACK: field "session"/,
  );
  assert.deepEqual(
    decodeAck(encodeAck({ received: 7, session, resumeMs: 500 })),
    { received: 7, session, resumeMs: 500 },
  );
});

Deno.test("messages: HELLO progressBytes (stream mode) round-trips; 0, negative and past 1 GiB are refused naming the field", () => {
  const hello = {
    protocol: 2,
    memoryBytes: 8192,
    pageSize: 4096,
    codecs: [{ id: 1, name: "zero" }],
    vm: "vm",
    policy: "p",
    channels: 1,
    stream: "qemu",
    progressBytes: 2 << 20,
  };
  assert.equal(decodeHello(encodeHello(hello)).progressBytes, 2 << 20);
  assert.equal(
    decodeHello(encodeHello({ ...hello, progressBytes: undefined }))
      .progressBytes,
    undefined,
    "absent stays absent: the receiver sends no PROGRESS",
  );
  for (const bad of [0, -1, 2 ** 30 + 1, 1.5]) {
    const payload = new TextEncoder().encode(
      JSON.stringify({ ...hello, progressBytes: bad }),
    );
    assert.throws(
      () => decodeHello(payload),
      (e: unknown) =>
        e instanceof WireError && /field "progressBytes"/.test(e.message),
      `progressBytes ${bad}`,
    );
  }
});
