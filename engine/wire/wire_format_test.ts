/**
 * The worked examples of `docs/wire-format.md`, read out of the document:
 * every ```` ```hex NAME ```` and ```` ```json NAME ```` block there is checked
 * here (a block this file does not know fails, and so does one that is
 * missing), so the specification and the code cannot drift apart. Hex blocks are hex digits and spaces, with a
 * `#` comment to the end of each line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { hex, memoryDigest, rootDigest } from "../digest.ts";
import {
  RecordKind,
  RecordsBuilder,
  RecordsParser,
} from "../stream/records.ts";
import { decodeStreamEnd, encodeStreamEnd } from "../stream/stream_end.ts";
import { xxh3x128 } from "../../ffi/xxhash.ts";
import { parseBatchPayload } from "./batch.ts";
import { encodeFrame, FrameType, HEADER_BYTES } from "./frame.ts";
import {
  decodeEnd,
  decodeHello,
  decodeResult,
  decodeWelcome,
  encodeEnd,
  encodeHello,
  encodeResult,
  encodeWelcome,
  PROTOCOL_VERSION,
} from "./messages.ts";
import {
  GOLDEN_BATCH_FRAME,
  GOLDEN_BATCH_HIGH_PAYLOAD,
  GOLDEN_WELCOME_FRAME,
} from "./_golden.ts";
import { encodeGoldenHighBatch, fromHex, toHex } from "./_test_util.ts";

/** The named code blocks of the specification. */
const DOC = await Deno.readTextFile(
  new URL("../../docs/wire-format.md", import.meta.url),
);
const BLOCKS = new Map<string, { lang: string; text: string }>();
for (const m of DOC.matchAll(/^```(hex|json) ([\w-]+)\n([\s\S]*?)^```$/gm)) {
  assert.ok(!BLOCKS.has(m[2]), `block "${m[2]}" appears twice`);
  BLOCKS.set(m[2], { lang: m[1], text: m[3] });
}
/** The blocks this file checks, one test each. */
const NAMES = [
  "batch-frame",
  "batch-high-payload",
  "welcome-frame",
  "hello",
  "end-payload",
  "result",
  "records-payload",
  "stream-end-payload",
];

/** The bytes of hex block `name` (comments after `#` dropped). */
function docHex(name: string): Uint8Array {
  const b = BLOCKS.get(name);
  assert.ok(
    b && b.lang === "hex",
    `docs/wire-format.md has no hex block "${name}"`,
  );
  const digits = b.text.split("\n").map((l) => l.replace(/#.*/, "")).join(" ");
  assert.match(digits, /^[0-9a-f\s]*$/, `block "${name}": only hex digits`);
  return fromHex(digits);
}

/** The JSON text of block `name`, as bytes. */
function docJson(name: string): Uint8Array {
  const b = BLOCKS.get(name);
  assert.ok(
    b && b.lang === "json",
    `docs/wire-format.md has no json block "${name}"`,
  );
  return new TextEncoder().encode(b.text);
}

Deno.test("wire-format.md: the BATCH frame is the golden frame, and means what the text says", () => {
  const frame = docHex("batch-frame");
  // the golden frame byte for byte: frame_test.ts checks its header, CRC and
  // encoding, and that a zero → rle chain writes its payload
  assert.equal(toHex(frame), toHex(fromHex(GOLDEN_BATCH_FRAME)));
  const payload = frame.subarray(HEADER_BYTES);
  const p = parseBatchPayload(payload, {
    pageCount: 16,
    knows: (id) => id === 1 || id === 2,
  });
  assert.deepEqual([...p.pfns.subarray(0, 4)], [5, 6, 9, 10]);
  assert.deepEqual([...p.sectionOf.subarray(0, 4)], [0, 0, 1, 0]);
  assert.deepEqual(p.sections.map((s) => [s.codecId, s.offset, s.length]), [
    [1, 24, 0],
    [2, 32, 12],
  ]);
});

Deno.test("wire-format.md: the second BATCH payload is the golden one (pfns above 2^32, a two-byte ULEB128)", () => {
  const payload = docHex("batch-high-payload");
  assert.equal(toHex(payload), toHex(fromHex(GOLDEN_BATCH_HIGH_PAYLOAD)));
  const base = 2 ** 32 + 3;
  const p = parseBatchPayload(payload, {
    pageCount: base + 200,
    knows: (id) => id === 1,
  });
  assert.equal(p.count, 200);
  assert.equal(p.pfns[199], base + 199);
  assert.equal(toHex(encodeGoldenHighBatch()), toHex(payload));
});

Deno.test("wire-format.md: the WELCOME frame is the golden one", () => {
  const frame = docHex("welcome-frame");
  assert.equal(toHex(frame), toHex(fromHex(GOLDEN_WELCOME_FRAME)));
  const welcome = encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true });
  assert.equal(toHex(encodeFrame(FrameType.WELCOME, 0, welcome)), toHex(frame));
  assert.deepEqual(decodeWelcome(frame.subarray(HEADER_BYTES)), {
    protocol: 2,
    accepted: true,
  });
});

Deno.test("wire-format.md: the HELLO example decodes and is a protocol 2 HELLO", () => {
  const hello = decodeHello(docJson("hello"));
  assert.deepEqual(hello, {
    protocol: 2,
    memoryBytes: 2 ** 30,
    pageSize: 4096,
    codecs: [
      { id: 0, name: "raw" },
      { id: 1, name: "zero" },
      { id: 6, name: "zstd" },
    ],
    vm: "sim memcached 1 GiB",
    policy: "zstd-after-round-0",
    channels: 4,
  });
  assert.deepEqual(decodeHello(encodeHello(hello)), hello);
});

Deno.test("wire-format.md: the END example is the range digests of 8 KiB of zeros; RESULT names its whole digest", async () => {
  const payload = docHex("end-payload");
  const digest = await memoryDigest(new Uint8Array(8192), 4096);
  assert.equal(toHex(payload), toHex(encodeEnd(digest)));
  const end = decodeEnd(payload);
  assert.equal(end.rangeBytes, 4096);
  const zeroPage = createHash("sha256").update(new Uint8Array(4096)).digest(
    "hex",
  );
  assert.equal(toHex(end.ranges), zeroPage + zeroPage);
  const whole = hex(rootDigest(end.ranges));
  assert.ok(DOC.includes(`\`${whole}\``), "the whole digest is in the text");
  const result = decodeResult(docJson("result"));
  assert.deepEqual(result, {
    verified: true,
    digest: whole,
    pagesApplied: 2,
    mismatched: [],
  });
  assert.deepEqual(decodeResult(encodeResult(result)), result);
});

Deno.test("wire-format.md: the RECORDS example is what RecordsBuilder writes, and parses as described", () => {
  const payload = docHex("records-payload");
  const b = new RecordsBuilder({ compress: false });
  b.opaque(new TextEncoder().encode("QEVM"));
  b.zero(fromHex("0000000000001022 00"), 1);
  b.pages(fromHex("0000000000007028"), [7, 8, 12]);
  assert.equal(toHex(b.take()), toHex(payload));
  const entries = new RecordsParser({ pageCount: 16 }).parse(payload);
  assert.equal(entries.length, 2);
  const [zero, pages] = entries;
  assert.ok(zero.kind === RecordKind.ZERO && pages.kind === RecordKind.PAGES);
  assert.equal(
    toHex(zero.bytes),
    toHex(fromHex("5145564d 0000000000001022 00")),
  );
  assert.equal(zero.pages, 1);
  assert.equal(toHex(pages.head), "0000000000007028");
  assert.deepEqual([...pages.pfns], [7, 8, 12]);
});

Deno.test("wire-format.md: the STREAM_END example is a 3-byte stream `abc`", () => {
  const payload = docHex("stream-end-payload");
  const digest = new Uint8Array(16);
  xxh3x128(new TextEncoder().encode("abc"), digest, 0);
  assert.equal(
    toHex(payload),
    toHex(encodeStreamEnd({ streamBytes: 3, pages: 0, digest })),
  );
  assert.equal(decodeStreamEnd(payload).streamBytes, 3);
});

Deno.test("wire-format.md: its hex and json blocks are exactly the ones checked here", () => {
  assert.deepEqual([...BLOCKS.keys()].sort(), [...NAMES].sort());
});
