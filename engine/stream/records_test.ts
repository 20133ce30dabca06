import assert from "node:assert/strict";
import fc from "fast-check";
import { WireError } from "../errors.ts";
import {
  MAX_ENTRY_PAGES,
  MAX_HEAD_BYTES,
  MAX_RECORDS_BYTES,
  type RecordEntry,
  RecordKind,
  RecordsBuilder,
  RecordsParser,
} from "./records.ts";
import { assertParsesOrWireError, fromHex, toHex } from "../wire/_test_util.ts";

type Drawn =
  | { kind: 0; bytes: Uint8Array }
  | { kind: 1; bytes: Uint8Array; pages: number }
  | { kind: 2; head: Uint8Array; pfns: number[] };

function build(b: RecordsBuilder, entries: readonly Drawn[]): void {
  for (const e of entries) {
    if (e.kind === 0) b.opaque(e.bytes);
    else if (e.kind === 1) b.zero(e.bytes, e.pages);
    else b.pages(e.head, e.pfns);
  }
}

/**
 * What the parser must give back for `entries`: the builder joins
 * consecutive OPAQUE and ZERO entries into one (their bytes one after the
 * other, their pages summed; OPAQUE when no page).
 */
function expected(entries: readonly Drawn[]): RecordEntry[] {
  const out: RecordEntry[] = [];
  let bytes: number[] | null = null;
  let pages = 0;
  const close = () => {
    if (bytes === null) return;
    const b = Uint8Array.from(bytes);
    out.push(
      pages === 0 ? { kind: 0, bytes: b } : { kind: 1, bytes: b, pages },
    );
    bytes = null;
    pages = 0;
  };
  for (const e of entries) {
    if (e.kind === 2) {
      close();
      out.push({ kind: 2, head: e.head, pfns: Float64Array.from(e.pfns) });
      continue;
    }
    bytes ??= [];
    bytes.push(...e.bytes);
    if (e.kind === 1) pages += e.pages;
  }
  close();
  return out;
}

/**
 * A RECORDS payload written by hand from the module doc of records.ts:
 * plain, an OPAQUE entry of 2 bytes, a ZERO entry of 1 byte standing for 3
 * pages, and a PAGES entry with a 1-byte head and pfns 7, 8 and 2^32 + 1.
 */
const GOLDEN = [
  "00 00 0000 33000000", // encoding 0 (plain), reserved, plainBytes 51
  "00 02000000 aabb", // OPAQUE, 2 bytes
  "01 01000000 cc 03000000", // ZERO, 1 byte, 3 pages
  "02 01000000 dd 02000000", // PAGES, head of 1 byte, 2 runs:
  "07000000 00000000 02000000", //   7, 8
  "01000000 01000000 01000000", //   2^32 + 1
].join(" ");

Deno.test("RECORDS: the hand-written golden payload parses", () => {
  const entries = new RecordsParser({ pageCount: 2 ** 32 + 2 }).parse(
    fromHex(GOLDEN),
  );
  assert.deepEqual(entries, [
    { kind: 0, bytes: fromHex("aabb") },
    { kind: 1, bytes: fromHex("cc"), pages: 3 },
    {
      kind: 2,
      head: fromHex("dd"),
      pfns: Float64Array.from([7, 8, 2 ** 32 + 1]),
    },
  ]);
});

/**
 * The same records as the builder writes them: the OPAQUE and ZERO bytes
 * joined into one ZERO entry.
 */
const GOLDEN_BUILT = [
  "00 00 0000 2e000000", // plain, plainBytes 46
  "01 03000000 aabbcc 03000000", // ZERO, 3 bytes, 3 pages
  "02 01000000 dd 02000000", // PAGES as above
  "07000000 00000000 02000000",
  "01000000 01000000 01000000",
].join(" ");

Deno.test("RECORDS: the builder joins consecutive OPAQUE and ZERO bytes into one entry", () => {
  const b = new RecordsBuilder({ compress: false });
  b.opaque(fromHex("aabb"));
  b.zero(fromHex("cc"), 3);
  b.pages(fromHex("dd"), [7, 8, 2 ** 32 + 1]);
  assert.equal(b.count, 2);
  assert.equal(b.pageCount, 3);
  assert.equal(toHex(b.take()), toHex(fromHex(GOLDEN_BUILT)));
  // take() empties the builder
  assert.equal(b.count, 0);
  assert.equal(b.byteLength, 0);
  assert.equal(toHex(b.take()), toHex(fromHex("00 00 0000 00000000")));
  // opaque bytes alone stay OPAQUE, across a PAGES entry too
  b.opaque(fromHex("01"));
  b.opaque(fromHex("02"));
  b.pages(fromHex(""), []);
  b.zero(fromHex("03"), 0);
  assert.deepEqual(new RecordsParser({ pageCount: 1 }).parse(b.take()), [
    { kind: 0, bytes: fromHex("0102") },
    { kind: 2, head: fromHex(""), pfns: new Float64Array(0) },
    { kind: 0, bytes: fromHex("03") },
  ]);
});

const entryArb: fc.Arbitrary<Drawn> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({
    kind: 0 as const,
    bytes,
  })),
  fc.record({
    kind: fc.constant(1 as const),
    bytes: fc.uint8Array({ maxLength: 40 }),
    pages: fc.nat(1 << 20), // a u32 summed over a run: keep it realistic
  }),
  fc.record({
    kind: fc.constant(2 as const),
    head: fc.uint8Array({ maxLength: 64 }),
    // ascending or not: the entry keeps the stream's order
    pfns: fc.array(
      fc.oneof(fc.nat(1000), fc.integer({ min: 2 ** 32, max: 2 ** 32 + 9 })),
      { maxLength: 50 },
    ).map((p) => p.sort((a, b) => a - b).concat(p.slice(0, 3))),
  }),
);

Deno.test("RECORDS property: plain and compressed payloads round trip; a compressed session is one stream across payloads", () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.array(entryArb, { maxLength: 8 }), {
        minLength: 1,
        maxLength: 4,
      }),
      (compress, payloads) => {
        const b = new RecordsBuilder({ compress });
        const p = new RecordsParser({ pageCount: 2 ** 32 + 10 });
        for (const entries of payloads) {
          build(b, entries);
          const payload = b.take();
          assert.equal(payload[0], compress ? 1 : 0);
          assert.deepEqual(p.parse(payload), expected(entries));
        }
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("RECORDS: compression shrinks repeated records, and the stream spans payloads", () => {
  const b = new RecordsBuilder({ compress: true });
  const text = new TextEncoder().encode(
    "QEMU_VM_SECTION_PART ram ".repeat(200),
  );
  b.opaque(text);
  const first = b.take();
  b.opaque(text);
  const second = b.take();
  assert.ok(first.length < text.length / 10, `${first.length}`);
  assert.ok(second.length < first.length, `${second.length} ${first.length}`);
  const p = new RecordsParser({ pageCount: 1 });
  assert.deepEqual(p.parse(first), [{ kind: 0, bytes: text }]);
  assert.deepEqual(p.parse(second), [{ kind: 0, bytes: text }]);
  // The second piece alone (a fresh session) or twice is refused.
  assert.throws(
    () => new RecordsParser({ pageCount: 1 }).parse(second),
    (e: unknown) =>
      e instanceof WireError &&
      /Bad RECORDS payload: Cannot decode \d+ bytes of records/.test(e.message),
  );
  // An empty builder's payload is valid in either encoding.
  assert.deepEqual(p.parse(b.take()), []);
});

Deno.test("RECORDS: parsed entries own their bytes (the payload may be reused)", () => {
  const b = new RecordsBuilder({ compress: false });
  b.opaque(fromHex("0102"));
  b.pages(fromHex("03"), [1]);
  const payload = b.take();
  const entries = new RecordsParser({ pageCount: 4 }).parse(payload);
  payload.fill(0xff);
  assert.deepEqual(entries, [
    { kind: 0, bytes: fromHex("0102") },
    { kind: 2, head: fromHex("03"), pfns: Float64Array.from([1]) },
  ]);
});

Deno.test("RECORDS: every bound and malformed field is a WireError naming it", () => {
  const plain = (hex: string, plainBytes?: number): Uint8Array => {
    const body = fromHex(hex);
    const out = new Uint8Array(8 + body.length);
    out.set(body, 8);
    new DataView(out.buffer).setUint32(4, plainBytes ?? body.length, true);
    return out;
  };
  const golden = fromHex(GOLDEN);
  const cases: [string, Uint8Array, RegExp, number][] = [
    [
      "short header",
      golden.subarray(0, 7),
      /7 bytes is shorter than its 8-byte header/,
      0,
    ],
    [
      "reserved",
      (() => {
        const g = golden.slice();
        g[2] = 1;
        return g;
      })(),
      /reserved fields must be 0/,
      1,
    ],
    [
      "unknown encoding",
      (() => {
        const g = golden.slice();
        g[0] = 2;
        return g;
      })(),
      /unknown encoding "2"/,
      0,
    ],
    [
      "plainBytes over the limit",
      plain("", MAX_RECORDS_BYTES + 1),
      /plainBytes "16777217" is over the 16777216-byte limit/,
      4,
    ],
    [
      "plainBytes mismatch",
      plain("00 00000000", 6),
      /plainBytes "6" does not match its 5 bytes/,
      4,
    ],
    ["unknown kind", plain("07"), /unknown entry kind "7"/, 0],
    [
      "truncated OPAQUE header",
      plain("00 0100"),
      /an entry header at offset 0 runs past the 3 bytes of records/,
      0,
    ],
    [
      "truncated OPAQUE",
      plain("00 05000000 aabb"),
      /an entry at offset 0 runs past/,
      0,
    ],
    [
      "ZERO without its page count",
      plain("01 01000000 cc 0300"),
      /an entry at offset 0 runs past/,
      0,
    ],
    [
      "truncated PAGES header",
      plain("02 00"),
      /a PAGES header at offset 0 runs past/,
      0,
    ],
    [
      "head over the limit",
      plain(`02 ${hex32(MAX_HEAD_BYTES + 1)}`),
      /head of 65537 bytes is over 65536/,
      1,
    ],
    [
      "truncated head",
      plain("02 04000000 dd"),
      /a PAGES head at offset 0 runs past/,
      0,
    ],
    [
      "runs past the records",
      plain("02 00000000 02000000 07000000 00000000 02000000"),
      /2 pfn runs at offset 9 run past the records/,
      9,
    ],
    [
      "too many pages",
      plain(
        `02 00000000 01000000 00000000 00000000 ${hex32(MAX_ENTRY_PAGES + 1)}`,
      ),
      /a PAGES entry of 65537 pages is over 65536/,
      9,
    ],
    [
      "empty run",
      plain("02 00000000 01000000 07000000 00000000 00000000"),
      /empty pfn run at offset 9/,
      9,
    ],
    [
      "pfn out of memory",
      plain("02 00000000 01000000 0f000000 00000000 02000000"),
      /pfn run at offset 9 \(15\+2\) is out of range: memory has 16 pages/,
      9,
    ],
    [
      "pfn's high word",
      plain("02 00000000 01000000 00000000 01000000 01000000"),
      /\(4294967296\+1\) is out of range/,
      9,
    ],
  ];
  for (const [what, payload, match, offset] of cases) {
    assert.throws(
      () => new RecordsParser({ pageCount: 16 }).parse(payload),
      (e: unknown) => {
        assert.ok(e instanceof WireError, what);
        assert.match(e.message, /^Bad RECORDS payload: /, what);
        assert.match(e.message, match, what);
        assert.equal(e.offset, offset, what);
        return true;
      },
    );
  }
});

function hex32(n: number): string {
  return toHex(new Uint8Array(new Uint32Array([n]).buffer));
}

Deno.test("RECORDS fuzz: corrupted plain and compressed payloads give entries or a WireError, nothing else", () => {
  const samples = [false, true].map((compress) => {
    const b = new RecordsBuilder({ compress });
    build(b, [
      { kind: 0, bytes: fromHex("aabbccdd") },
      { kind: 1, bytes: fromHex("00"), pages: 9 },
      { kind: 2, head: fromHex("0102"), pfns: [1, 2, 3, 9] },
    ]);
    return b.take();
  });
  assertParsesOrWireError(
    samples,
    (input) => new RecordsParser({ pageCount: 16 }).parse(input),
    { cutEvery: 3, runs: 1500, randomRuns: 500, randomBytes: 100 },
  );
  assert.equal(RecordKind.PAGES, 2);
});
