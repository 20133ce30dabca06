import assert from "node:assert/strict";
import type { Codec } from "../codecs/codec.ts";
import { raw } from "../codecs/raw.ts";
import { zero } from "../codecs/zero.ts";
import { WireError } from "../errors.ts";
import {
  decodeFrameHeader,
  FrameType,
  HEADER_BYTES,
  MAX_PAYLOAD,
  verifyFrameChecksum,
} from "./frame.ts";
import {
  ENTRY_HEADER_BYTES,
  MAX_PAGES_PER_FRAME,
  PageEntries,
  PAGES_HEADER_BYTES,
  PagesFrameBuilder,
  parsePagesPayload,
} from "./pages.ts";
import { concat } from "./_test_util.ts";

const PAGE = 4096;
const codecs = new Map<number, Codec>([[raw.id, raw], [zero.id, zero]]);
const opts = { pageCount: 64, pageSize: PAGE, codecs };

function page(fill: number): Uint8Array {
  return new Uint8Array(PAGE).map((_, i) => (i + fill) & 255);
}

Deno.test("pages: builder + parser round trip with raw and zero entries, both add styles", () => {
  const b = new PagesFrameBuilder({ maxPages: 8, maxEntryBytes: PAGE });
  const enc = raw.createEncoder({ pageSize: PAGE, pageCount: 64, options: {} });
  b.add(3, raw.id, page(3));
  b.add(0, zero.id, new Uint8Array(0));
  const n = enc.encode(63, page(63), b.entrySpace());
  b.commitEntry(63, raw.id, n);
  b.add(9, zero.id, new Uint8Array(PAGE), 0);
  assert.equal(b.count, 4);
  assert.equal(
    b.byteLength,
    PAGES_HEADER_BYTES + 4 * ENTRY_HEADER_BYTES + 2 * PAGE,
  );
  const payload = b.payload();
  assert.equal(payload.length, b.byteLength);

  const e = parsePagesPayload(payload, opts);
  assert.equal(e.count, 4);
  assert.deepEqual(Array.from(e.pfn.subarray(0, 4)), [3, 0, 63, 9]);
  assert.deepEqual(Array.from(e.codecId.subarray(0, 4)), [0, 1, 0, 1]);
  assert.deepEqual(Array.from(e.length.subarray(0, 4)), [PAGE, 0, PAGE, 0]);
  assert.deepEqual(payload.subarray(e.offset[0], e.offset[0] + PAGE), page(3));
  assert.deepEqual(payload.subarray(e.offset[2], e.offset[2] + PAGE), page(63));

  const frame = b.frame(5);
  const h = decodeFrameHeader(frame);
  assert.equal(h.type, FrameType.PAGES);
  assert.equal(h.round, 5);
  assert.equal(h.length, payload.length);
  verifyFrameChecksum(frame, frame.subarray(HEADER_BYTES));

  b.reset();
  assert.equal(b.count, 0);
  assert.equal(parsePagesPayload(b.payload(), opts).count, 0);
});

Deno.test("pages: pfns above 2^32 use the high word", () => {
  const b = new PagesFrameBuilder({ maxPages: 1, maxEntryBytes: 0 });
  const pfn = 2 ** 32 + 5;
  b.add(pfn, zero.id, new Uint8Array(0));
  const p = b.payload();
  const v = new DataView(p.buffer, p.byteOffset);
  assert.equal(v.getUint32(8, true), 5);
  assert.equal(v.getUint32(12, true), 1);
  assert.equal(
    parsePagesPayload(p, { ...opts, pageCount: 2 ** 33 }).pfn[0],
    pfn,
  );
  assert.throws(
    () => parsePagesPayload(p, opts),
    /pfn "4294967301" is out of range, memory has 64 pages/,
  );
});

Deno.test("pages: builder bounds: full frame, bad arguments, frame size limit", () => {
  const b = new PagesFrameBuilder({ maxPages: 2, maxEntryBytes: 10 });
  b.add(1, 0, new Uint8Array(10));
  assert.throws(
    () => b.add(2, 0, new Uint8Array(11)),
    /encoded length "11" must be in 0..10/,
  );
  assert.throws(() => b.commitEntry(-1, 0, 0), /pfn must be a non-negative/);
  assert.throws(() => b.commitEntry(1, 256, 0), /codec id "256"/);
  b.add(2, 1, new Uint8Array(0));
  assert.ok(b.full);
  assert.throws(
    () => b.add(3, 1, new Uint8Array(0)),
    /the frame is full \(2 entries\)/,
  );
  assert.throws(
    () => new PagesFrameBuilder({ maxPages: 0, maxEntryBytes: 1 }),
    RangeError,
  );
  assert.throws(
    () =>
      new PagesFrameBuilder({
        maxPages: MAX_PAGES_PER_FRAME + 1,
        maxEntryBytes: 0,
      }),
    RangeError,
  );
  assert.throws(
    () => new PagesFrameBuilder({ maxPages: 8192, maxEntryBytes: PAGE }),
    /over the 33554432-byte frame limit; at most 8160 fit/,
  );
  const big = new PagesFrameBuilder({ maxPages: 8160, maxEntryBytes: PAGE });
  assert.ok(
    PAGES_HEADER_BYTES + 8160 * (ENTRY_HEADER_BYTES + PAGE) <= MAX_PAYLOAD,
  );
  assert.equal(big.maxPages, 8160);
});

/** A payload with one valid raw entry (pfn 3) then `second` as the second entry. */
function withSecond(
  second: { pfn: number; codecId: number; body: Uint8Array },
): Uint8Array {
  const b = new PagesFrameBuilder({ maxPages: 2, maxEntryBytes: PAGE + 1 });
  b.add(3, raw.id, page(3));
  b.add(second.pfn, second.codecId, second.body);
  return b.payload().slice();
}

function rejects(
  payload: Uint8Array,
  message: RegExp,
  offset?: number,
  o = opts,
): void {
  assert.throws(() => parsePagesPayload(payload, o), (e: unknown) => {
    assert.ok(e instanceof WireError, String(e));
    assert.match(e.message, message);
    if (offset !== undefined) assert.equal(e.offset, offset);
    return true;
  });
}

Deno.test("pages: parser rejects pfn out of range, unknown and un-negotiated codecs, long entries", () => {
  const second = PAGES_HEADER_BYTES + ENTRY_HEADER_BYTES + PAGE;
  rejects(
    withSecond({ pfn: 64, codecId: 0, body: page(1) }),
    /entry 1 at offset 4120: pfn "64" is out of range/,
    second,
  );
  rejects(
    withSecond({ pfn: 4, codecId: 7, body: page(1) }),
    /codec id "7" was not negotiated/,
    second + 8,
  );
  rejects(
    withSecond({ pfn: 4, codecId: zero.id, body: new Uint8Array(0) }),
    /codec id "1" was not negotiated/,
    second + 8,
    { ...opts, codecs: new Map([[raw.id, raw]]) },
  );
  rejects(
    withSecond({ pfn: 4, codecId: 0, body: new Uint8Array(PAGE + 1) }),
    /length "4097" is over the 4096-byte maximum of codec "raw"/,
  );
  rejects(
    withSecond({ pfn: 4, codecId: 1, body: new Uint8Array(1) }),
    /length "1" is over the 0-byte maximum of codec "zero"/,
  );
});

Deno.test("pages: parser rejects trailing bytes, short bodies, bad counts and reserved fields", () => {
  const good = withSecond({ pfn: 4, codecId: 1, body: new Uint8Array(0) });
  assert.equal(parsePagesPayload(good, opts).count, 2);
  rejects(
    concat([good, new Uint8Array([0])]),
    /1 trailing bytes after 2 entries/,
    good.length,
  );
  rejects(
    good.subarray(0, good.length - 1),
    /entry 1 at offset 4120: its header runs past the 4135-byte payload/,
  );
  rejects(
    good.subarray(0, 100),
    /count "2" needs at least 40 bytes, the payload has 100|data run past/,
  );
  const cut = good.slice(0, PAGES_HEADER_BYTES + ENTRY_HEADER_BYTES + 100);
  rejects(cut, /needs at least|4096 bytes of data run past/);
  const oneShort = good.slice(
    0,
    PAGES_HEADER_BYTES + 2 * ENTRY_HEADER_BYTES + 100,
  );
  rejects(
    oneShort,
    /entry 0 at offset 8: 4096 bytes of data run past the 140-byte payload/,
    24,
  );
  rejects(new Uint8Array(7), /shorter than its 8-byte header/);

  const over = new Uint8Array(
    PAGES_HEADER_BYTES + (MAX_PAGES_PER_FRAME + 1) * ENTRY_HEADER_BYTES,
  );
  new DataView(over.buffer).setUint32(0, MAX_PAGES_PER_FRAME + 1, true);
  rejects(over, /count "65537" is over the limit of 65536 entries/, 0);
  const huge = new Uint8Array(8);
  new DataView(huge.buffer).setUint32(0, 60000, true);
  rejects(huge, /count "60000" needs at least 960008 bytes/);

  const reserved = good.slice();
  reserved[4] = 1;
  rejects(reserved, /reserved field at offset 4 must be 0/, 4);
  const flags = good.slice();
  flags[PAGES_HEADER_BYTES + 9] = 1;
  rejects(flags, /entry 0 at offset 8: flags "1" and reserved "0" must be 0/);
});

Deno.test("pages: a reused PageEntries grows and reports only the last payload", () => {
  const entries = new PageEntries(1);
  const b = new PagesFrameBuilder({ maxPages: 100, maxEntryBytes: 0 });
  for (let i = 0; i < 100; i++) b.add(i % 64, zero.id, new Uint8Array(0));
  assert.equal(parsePagesPayload(b.payload(), opts, entries), entries);
  assert.equal(entries.count, 100);
  assert.equal(entries.pfn[99], 99 % 64);
  b.reset();
  b.add(7, zero.id, new Uint8Array(0));
  parsePagesPayload(b.payload(), opts, entries);
  assert.equal(entries.count, 1);
  b.add(99, zero.id, new Uint8Array(0));
  assert.throws(() => parsePagesPayload(b.payload(), opts, entries));
  assert.equal(entries.count, 0);
});
