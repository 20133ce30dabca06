import assert from "node:assert/strict";
import fc from "fast-check";
import { WireError } from "../errors.ts";
import {
  BATCH_FIXED_BYTES,
  type BatchParts,
  batchPayloadBytes,
  encodeBatchPayload,
  MAX_BATCH_SECTIONS,
  MAX_PAGES_PER_BATCH,
  parseBatchPayload,
  ParsedBatch,
  RUN_BYTES,
  SECTION_HEADER_BYTES,
} from "./batch.ts";
import {
  assertParsesOrWireError,
  encodeGoldenHighBatch,
  fromHex,
  toHex,
} from "./_test_util.ts";
import { GOLDEN_BATCH_HIGH_PAYLOAD, GOLDEN_BATCH_PAYLOAD } from "./_golden.ts";

const knows = (id: number): boolean => id === 1 || id === 2;
const opts = { pageCount: 16, knows };

/** The golden payload with `edit` applied to its bytes (through a DataView). */
function edited(edit: (v: DataView, b: Uint8Array) => Uint8Array | void) {
  const b = fromHex(GOLDEN_BATCH_PAYLOAD);
  return edit(new DataView(b.buffer), b) ?? b;
}

/** The golden payload with other claims (claimBytes adjusted). */
function withClaims(hex: string): Uint8Array {
  const head = fromHex(GOLDEN_BATCH_PAYLOAD).subarray(0, 68);
  const claims = fromHex(hex);
  const b = new Uint8Array(68 + claims.length);
  b.set(head);
  b.set(claims, 68);
  new DataView(b.buffer).setUint32(12, claims.length, true);
  return b;
}

Deno.test("BATCH: the hand-written golden payload parses as the spec says and re-encodes byte for byte", () => {
  const payload = fromHex(GOLDEN_BATCH_PAYLOAD);
  assert.equal(payload.length, 74);
  const p = parseBatchPayload(payload, opts);
  assert.equal(p.count, 4);
  assert.deepEqual([...p.pfns.subarray(0, 4)], [5, 6, 9, 10]);
  assert.deepEqual([...p.sectionOf.subarray(0, 4)], [0, 0, 1, 0]);
  assert.deepEqual(
    p.sections.map((s) => [s.codecId, s.offset, s.length, [...s.pages]]),
    [[1, 24, 0, [0, 1, 3]], [2, 32, 12, [2]]],
  );
  assert.equal(
    toHex(payload.subarray(32, 44)),
    toHex(fromHex("08000000 00040000 11223344")),
  );
  const parts: BatchParts = {
    count: 4,
    pfns: [5, 6, 9, 10],
    sectionOf: [0, 0, 1, 0],
    sections: [
      { codecId: 1, bytes: new Uint8Array(0) },
      { codecId: 2, bytes: payload.subarray(32, 44) },
    ],
  };
  assert.equal(batchPayloadBytes(parts), 74);
  const out = new Uint8Array(80).fill(0xee);
  assert.equal(encodeBatchPayload(parts, out), 74);
  assert.equal(toHex(out.subarray(0, 74)), toHex(payload));
  assert.ok(out.subarray(74).every((b) => b === 0xee));
});

Deno.test("BATCH: pfns above 2^32 and claim runs over 127 (the second golden payload)", () => {
  const payload = fromHex(GOLDEN_BATCH_HIGH_PAYLOAD);
  const base = 2 ** 32 + 3;
  const p = parseBatchPayload(payload, { pageCount: base + 200, knows });
  assert.equal(p.count, 200);
  assert.equal(p.pfns[0], base);
  assert.equal(p.pfns[199], base + 199);
  assert.equal(p.sections[0].pageCount, 200);
  assert.equal(toHex(encodeGoldenHighBatch()), toHex(payload));
  assert.throws(
    () => parseBatchPayload(payload, { pageCount: base + 199, knows }),
    /\(4294967299\+200\) is out of range: memory has 4294967498 pages/,
  );
});

Deno.test("BATCH: each validation rule names the field and its offset", () => {
  const short = new Uint8Array(16);
  new DataView(short.buffer).setUint32(0, 1, true);
  new DataView(short.buffer).setUint16(4, 1, true);
  new DataView(short.buffer).setUint32(8, 1, true);
  const cases: [string, Uint8Array, RegExp, number][] = [
    [
      "shorter than the header",
      fromHex(GOLDEN_BATCH_PAYLOAD).subarray(0, 15),
      /15 bytes is shorter than its 16-byte header/,
      0,
    ],
    [
      "count 0",
      edited((v) => v.setUint32(0, 0, true)),
      /count "0" is outside 1..16384/,
      0,
    ],
    [
      "count over the maximum",
      edited((v) => v.setUint32(0, MAX_PAGES_PER_BATCH + 1, true)),
      /count "16385"/,
      0,
    ],
    [
      "no section",
      edited((v) => v.setUint16(4, 0, true)),
      /sectionCount "0" is outside 1..16/,
      4,
    ],
    [
      "too many sections",
      edited((v) => v.setUint16(4, MAX_BATCH_SECTIONS + 1, true)),
      /sectionCount "17"/,
      4,
    ],
    [
      "reserved u16",
      edited((v) => v.setUint16(6, 1, true)),
      /reserved field at offset 6 must be 0/,
      6,
    ],
    [
      "no run",
      edited((v) => v.setUint32(8, 0, true)),
      /runCount "0" is outside 1..4/,
      8,
    ],
    [
      "more runs than pages",
      edited((v) => v.setUint32(8, 5, true)),
      /runCount "5" is outside 1..4/,
      8,
    ],
    [
      "section header past the end",
      short,
      /section 0 header at offset 16 runs past the 16-byte payload/,
      16,
    ],
    [
      "section reserved byte",
      edited((_, b) => void (b[17] = 1)),
      /section 0 reserved fields at offset 17 must be 0/,
      17,
    ],
    [
      "section reserved u16",
      edited((v) => v.setUint16(26, 1, true)),
      /section 1 reserved fields at offset 25 must be 0/,
      25,
    ],
    [
      "codec not announced",
      edited((_, b) => void (b[16] = 3)),
      /section 0 uses codec id "3", which is not negotiated and announced/,
      16,
    ],
    [
      "codec twice",
      edited((_, b) => void (b[24] = 1)),
      /codec id "1" has two sections/,
      24,
    ],
    [
      "section past the end",
      edited((v) => v.setUint32(28, 1000, true)),
      /section 1 of 1000 bytes at offset 24 runs past the 74-byte payload/,
      28,
    ],
    [
      "runs past the end",
      fromHex(GOLDEN_BATCH_PAYLOAD).subarray(0, 50),
      /2 pfn runs at offset 44 run past the 50-byte payload/,
      44,
    ],
    [
      "empty run",
      edited((v) => v.setUint32(52, 0, true)),
      /pfn run 0 at offset 44 is empty/,
      52,
    ],
    [
      "overlapping runs",
      edited((v) => v.setUint32(56, 6, true)),
      /pfn run 1 at offset 56 starts at 6, not above the previous run's end: pfns must be strictly ascending/,
      56,
    ],
    [
      "descending runs",
      edited((v) => v.setUint32(56, 1, true)),
      /pfn run 1 at offset 56 starts at 1/,
      56,
    ],
    [
      "runs cover more than count",
      edited((v) => v.setUint32(64, 3, true)),
      /pfn runs at offset 56 cover more than the 4 pages of the batch/,
      64,
    ],
    [
      "run out of memory",
      edited((v) => v.setUint32(56, 15, true)),
      /pfn run 1 at offset 56 \(15\+2\) is out of range: memory has 16 pages/,
      56,
    ],
    [
      "run start's high word",
      edited((v) => v.setUint32(60, 1, true)),
      /\(4294967305\+2\) is out of range/,
      56,
    ],
    [
      "runs cover fewer than count",
      edited((v) => v.setUint32(64, 1, true)),
      /pfn runs cover 3 pages, the batch has 4/,
      68,
    ],
    [
      "claimBytes",
      edited((v) => v.setUint32(12, 7, true)),
      /claimBytes "7" does not match the 6 bytes left at offset 68/,
      12,
    ],
    [
      "trailing bytes",
      (() => {
        const b = new Uint8Array(75);
        b.set(fromHex(GOLDEN_BATCH_PAYLOAD));
        return b;
      })(),
      /claimBytes "6" does not match the 7 bytes left at offset 68/,
      12,
    ],
    [
      "claim of an unknown section",
      withClaims("02 02 01 01 00 01"),
      /claim at offset 68 names section 2 of 2/,
      68,
    ],
    [
      "truncated claim run length",
      withClaims("00 02 01 01 00 81"),
      /claim run length at offset 74 is truncated or too long/,
      74,
    ],
    [
      "claim run length over five bytes",
      withClaims("00 82 80 80 80 80 00"),
      /claim run length at offset 74 is truncated or too long/,
      74,
    ],
    [
      "empty claim run",
      withClaims("00 02 01 01 00 00 00 01"),
      /claim run of "0" pages at offset 74 is empty or past the 4 pages/,
      74,
    ],
    [
      "claim run past the pages",
      withClaims("00 02 01 01 00 02"),
      /claim run of "2" pages at offset 74 is empty or past the 4 pages/,
      74,
    ],
    [
      "claims cover fewer than count",
      withClaims("00 02 01 01"),
      /the claim map covers 3 pages, the batch has 4/,
      68,
    ],
    [
      "a section no page belongs to",
      withClaims("00 04"),
      /section 1 \(codec id "2"\) holds no page/,
      24,
    ],
  ];
  for (const [what, payload, match, offset] of cases) {
    assert.throws(() => parseBatchPayload(payload, opts), (e: unknown) => {
      assert.ok(e instanceof WireError, what);
      assert.match(e.message, /^Bad BATCH payload: /, what);
      assert.match(e.message, match, what);
      assert.equal(e.offset, offset, what);
      return true;
    });
  }
  // Adjacent runs and split claim runs are not canonical, but valid.
  const adjacent = edited((v) => v.setUint32(56, 7, true));
  assert.deepEqual(
    [...parseBatchPayload(adjacent, opts).pfns.subarray(0, 4)],
    [5, 6, 7, 8],
  );
  const split = withClaims("00 01 00 01 01 01 00 01");
  assert.deepEqual(
    [...parseBatchPayload(split, opts).sectionOf.subarray(0, 4)],
    [0, 0, 1, 0],
  );
});

/** Random valid parts: ascending pfns with gaps (some above 2^32), 1..16 sections. */
const partsArb: fc.Arbitrary<BatchParts> = fc.record({
  gaps: fc.array(
    fc.oneof(fc.constant(1), fc.integer({ min: 2, max: 3 }), fc.nat(2 ** 33)),
    { minLength: 1, maxLength: 300 },
  ),
  sections: fc.array(fc.uint8Array({ maxLength: 40 }), {
    minLength: 1,
    maxLength: MAX_BATCH_SECTIONS,
  }),
  ids: fc.uniqueArray(fc.nat(255), {
    minLength: MAX_BATCH_SECTIONS,
    maxLength: MAX_BATCH_SECTIONS,
  }),
  claims: fc.array(fc.nat(), { minLength: 300, maxLength: 300 }),
  runs: fc.array(fc.integer({ min: 1, max: 200 }), {
    minLength: 300,
    maxLength: 300,
  }),
}).map(({ gaps, sections, ids, claims, runs }) => {
  let pfn = -1;
  const pfns = gaps.map((g) => (pfn += Math.max(1, g)));
  const count = pfns.length;
  // sections in runs of pages; every section gets one page when it can
  const sectionOf: number[] = [];
  for (let r = 0; sectionOf.length < count; r++) {
    const s = r < sections.length ? r : claims[r % 300] % sections.length;
    for (let k = 0; k < runs[r % 300] && sectionOf.length < count; k++) {
      sectionOf.push(s);
    }
  }
  const used = new Set(sectionOf);
  const kept = sections.map((_, s) => s).filter((s) => used.has(s));
  const index = new Map(kept.map((s, i) => [s, i]));
  return {
    count,
    pfns,
    sectionOf: sectionOf.map((s) => index.get(s)!),
    sections: kept.map((s) => ({ codecId: ids[s], bytes: sections[s] })),
  };
});

Deno.test("BATCH property: whatever the encoder writes, the parser gives back", () => {
  const reused = new ParsedBatch();
  fc.assert(
    fc.property(partsArb, (parts) => {
      const out = new Uint8Array(batchPayloadBytes(parts));
      assert.equal(encodeBatchPayload(parts, out), out.length);
      const ids = new Set(parts.sections.map((s) => s.codecId));
      const p = parseBatchPayload(out, {
        pageCount: parts.pfns[parts.count - 1] + 1,
        knows: (id) => ids.has(id),
      }, reused);
      assert.equal(p, reused);
      assert.equal(p.count, parts.count);
      assert.deepEqual(
        [...p.pfns.subarray(0, p.count)],
        [...Array.from(parts.pfns)],
      );
      assert.deepEqual(
        [...p.sectionOf.subarray(0, p.count)],
        [...Array.from(parts.sectionOf)],
      );
      p.sections.forEach((s, i) => {
        assert.equal(s.codecId, parts.sections[i].codecId);
        assert.deepEqual(
          out.subarray(s.offset, s.offset + s.length),
          parts.sections[i].bytes,
        );
        for (let k = 0; k < s.pageCount; k++) {
          assert.equal(parts.sectionOf[s.pages[k]], i);
        }
      });
      assert.equal(
        p.sections.reduce((n, s) => n + s.pageCount, 0),
        parts.count,
      );
    }),
    { numRuns: 200 },
  );
});

Deno.test("BATCH fuzz: mutated, cut and random payloads give a batch or a WireError, nothing else", () => {
  const valid = [
    fromHex(GOLDEN_BATCH_PAYLOAD),
    fromHex(GOLDEN_BATCH_HIGH_PAYLOAD),
  ];
  assertParsesOrWireError(
    valid,
    (input) => {
      const p = parseBatchPayload(input, {
        pageCount: 2 ** 33,
        knows: () => true,
      });
      // what parses is self-consistent
      assert.equal(p.sections.reduce((n, s) => n + s.pageCount, 0), p.count);
      for (const s of p.sections) {
        assert.ok(s.offset + s.length <= input.length);
      }
    },
    { cutEvery: 4, runs: 3000, randomRuns: 1000, randomBytes: 200 },
  );
});

Deno.test("BATCH: the encoder refuses what it cannot write with a RangeError", () => {
  const ok: BatchParts = {
    count: 2,
    pfns: [3, 4],
    sectionOf: [0, 0],
    sections: [{ codecId: 1, bytes: new Uint8Array(0) }],
  };
  const refuse = (parts: Partial<BatchParts>, match: RegExp, size = 64) =>
    assert.throws(
      () => encodeBatchPayload({ ...ok, ...parts }, new Uint8Array(size)),
      (e: unknown) => e instanceof RangeError && match.test(e.message),
      String(match),
    );
  refuse({ count: 0, pfns: [], sectionOf: [] }, /batch of "0" pages/);
  refuse({ count: MAX_PAGES_PER_BATCH + 1 }, /batch of "16385" pages/);
  refuse({ sections: [] }, /batch with "0" sections/);
  refuse(
    {
      sections: Array.from({ length: 17 }, (_, i) => ({
        codecId: i,
        bytes: new Uint8Array(0),
      })),
    },
    /batch with "17" sections/,
  );
  refuse({}, /Cannot encode a 38-byte batch into 37 bytes/, 37);
  refuse(
    { sections: [{ codecId: 256, bytes: new Uint8Array(0) }] },
    /codec id "256"/,
  );
  refuse({ pfns: [4, 3] }, /not strictly ascending: 3 after 4/);
  refuse({ pfns: [4, 4] }, /not strictly ascending/);
  refuse({ pfns: [-1, 0] }, /Cannot encode pfn "-1" of page 0/);
  refuse({ pfns: [0.5, 1] }, /pfn "0.5"/);
  refuse(
    { sectionOf: [0, 1] },
    /page 1: section "1" is not one of the 1 sections/,
  );
  assert.equal(BATCH_FIXED_BYTES, 16);
  assert.equal(SECTION_HEADER_BYTES, 8);
  assert.equal(RUN_BYTES, 12);
});
