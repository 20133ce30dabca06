import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeImageHeader,
  encodePageData,
  encodeRecord,
  type PagesEvent,
  parseXenStream,
  rebuildXenStream,
  RecType,
  type XenEvent,
  XenStreamError,
  XenStreamParser,
} from "./mod.ts";
import {
  buildStream,
  chunks,
  specImageHeader,
  specPageData,
  wrapLikeXl,
} from "./_test_util.ts";
import { concatBytes } from "../../bytes.ts";

/** Bytes from hex, ignoring spaces and `# comments`. */
function hex(...lines: string[]): Uint8Array {
  const digits = lines.map((l) => l.replace(/#.*/, "")).join("").replace(
    /\s+/g,
    "",
  );
  return Uint8Array.from(digits.match(/../g)!, (h) => parseInt(h, 16));
}

// Golden bytes, written by hand from libxc-migration-stream.pandoc's
// layouts: the image header is big-endian whatever the options say; the
// domain header and the records follow options bit 0.
const IHDR_V3_LE = hex(
  "ff ff ff ff ff ff ff ff", // marker
  "58 45 4e 46  00 00 00 03", // id "XENF", version 3
  "00 00  00 00 00 00 00 00", // options (bit 0 clear: little-endian), reserved
  "02 00 00 00  0c 00  00 00", // type 2 (x86 HVM), page_shift 12, reserved
  "04 00 00 00  11 00 00 00", // xen_major 4, xen_minor 17
);
const IHDR_V2_BE = hex(
  "ff ff ff ff ff ff ff ff",
  "58 45 4e 46  00 00 00 02", // version 2
  "00 01  00 00 00 00 00 00", // options bit 0: big-endian
  "00 00 00 01  00 0c  00 00", // type 1 (x86 PV), page_shift 12
  "00 00 00 04  00 00 00 0d", // Xen 4.13
);
const END = hex("00 00 00 00  00 00 00 00"); // END, length 0: the same in both byte orders
const PAGE = new Uint8Array(4096).fill(0xa5);
// PAGE_DATA with 2 pfns: pfn 0x12345 NOTAB (page follows) and pfn
// 0xa_bcde_f012_3456 XTAB (no page): body 8 + 2*8 + 4096 = 4120 = 0x1018.
const PAGE_DATA_LE = concatBytes([
  hex(
    "01 00 00 00  18 10 00 00", // type PAGE_DATA, body_length 4120
    "02 00 00 00  00 00 00 00", // count 2, reserved
    "45 23 01 00 00 00 00 00", // pfn[0]: type 0x0 (bits 63-60), pfn 0x12345
    "56 34 12 f0 de bc 0a f0", // pfn[1]: type 0xF (XTAB), pfn 0xabcdef0123456 (52 bits)
  ),
  PAGE, // page_data[0]; 4120 is a multiple of 8: no padding
]);
const PAGE_DATA_BE = concatBytes([
  hex(
    "00 00 00 01  00 00 10 18",
    "00 00 00 02  00 00 00 00",
    "00 00 00 00 00 01 23 45",
    "f0 0a bc de f0 12 34 56",
  ),
  PAGE,
]);
const TWO_PFNS = [{ pfn: 0x12345, type: 0x0 }, {
  pfn: 0xa_bcde_f012_3456,
  type: 0xf,
}];

Deno.test("golden: a v3 little-endian image header and a 2-pfn PAGE_DATA record, as the spec lays them out", () => {
  const bytes = concatBytes([IHDR_V3_LE, PAGE_DATA_LE, END]);
  const image = parseXenStream(bytes);
  assert.deepEqual(image.header, {
    version: 3,
    options: 0,
    ihdrReserved: [0, 0],
    domainType: 2,
    pageShift: 12,
    dhdrReserved: 0,
    xenMajor: 4,
    xenMinor: 17,
  });
  assert.equal(image.records.length, 2);
  const r = image.records[0];
  assert.ok(r.kind === "page_data");
  assert.deepEqual(r.entries, TWO_PFNS);
  assert.equal(r.reserved, 0);
  assert.deepEqual(r.pages, [PAGE]);
  const pages = new XenStreamParser().push(bytes).find((e) =>
    e.kind === "pages"
  ) as PagesEvent;
  assert.equal(pages.offset, 40);
  assert.equal(pages.count, 2);
  assert.equal(pages.dataPages, 1);
  assert.equal(pages.headerLength, 8 + 8 + 2 * 8);
  assert.deepEqual([...pages.pfn], [0x12345, 0xa_bcde_f012_3456]);
  assert.deepEqual([...pages.type], [0x0, 0xf]);
  // the production encoders and the spec builders both give the hand-written bytes
  assert.deepEqual(encodeImageHeader(image.header), IHDR_V3_LE);
  assert.deepEqual(encodePageData(r, true), PAGE_DATA_LE);
  assert.deepEqual(rebuildXenStream(image), bytes);
  assert.deepEqual(
    specImageHeader({ version: 3, bigEndian: false }),
    IHDR_V3_LE,
  );
  assert.deepEqual(specPageData(TWO_PFNS, [PAGE], true), PAGE_DATA_LE);
});

Deno.test("golden: the same in a v2 big-endian stream (PV, Xen 4.13)", () => {
  const bytes = concatBytes([IHDR_V2_BE, PAGE_DATA_BE, END]);
  const image = parseXenStream(bytes);
  assert.deepEqual(image.header, {
    version: 2,
    options: 1,
    ihdrReserved: [0, 0],
    domainType: 1,
    pageShift: 12,
    dhdrReserved: 0,
    xenMajor: 4,
    xenMinor: 13,
  });
  const r = image.records[0];
  assert.ok(r.kind === "page_data");
  assert.deepEqual(r.entries, TWO_PFNS);
  assert.deepEqual(r.pages, [PAGE]);
  assert.deepEqual(encodeImageHeader(image.header), IHDR_V2_BE);
  assert.deepEqual(encodePageData(r, false), PAGE_DATA_BE);
  assert.deepEqual(rebuildXenStream(image), bytes);
  assert.deepEqual(
    specImageHeader({
      version: 2,
      bigEndian: true,
      domainType: 1,
      xenMinor: 13,
    }),
    IHDR_V2_BE,
  );
  assert.deepEqual(specPageData(TWO_PFNS, [PAGE], false), PAGE_DATA_BE);
});

Deno.test("golden: reserved fields, which a restore ignores, are kept, so the rebuild is byte-identical", () => {
  const header = IHDR_V3_LE.slice();
  header.set([0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc], 18); // image header: u16, u32 (big-endian)
  header.set([0xcd, 0xef], 30); // domain header: u16
  const pages = PAGE_DATA_LE.slice();
  pages.set([1, 2, 3, 4], 12); // PAGE_DATA: the u32 after count
  const bytes = concatBytes([header, pages, END]);
  const image = parseXenStream(bytes);
  assert.deepEqual(image.header.ihdrReserved, [0x1234, 0x5678_9abc]);
  assert.equal(image.header.dhdrReserved, 0xefcd);
  const r = image.records[0];
  assert.ok(r.kind === "page_data");
  assert.equal(r.reserved, 0x0403_0201);
  assert.deepEqual(rebuildXenStream(image), bytes);
});

Deno.test("an END record with a body is refused", () => {
  const end = hex("00 00 00 00  08 00 00 00", "00 00 00 00 00 00 00 00");
  assert.throws(
    () => parseXenStream(concatBytes([IHDR_V3_LE, end])),
    (e: unknown) =>
      e instanceof XenStreamError && e.offset === 44 &&
      /END record at offset 40 has body length "8"/.test(e.message),
  );
});

Deno.test("rebuild(parse(stream)) is byte-identical (v2, v3, both endians)", () => {
  for (const version of [2, 3] as const) {
    for (const bigEndian of [false, true]) {
      const { bytes, roundPfns } = buildStream({
        seed: version * 10 + (bigEndian ? 1 : 0),
        version,
        bigEndian,
      });
      const image = parseXenStream(bytes);
      assert.equal(image.header.version, version);
      assert.equal(image.header.pageShift, 12);
      assert.deepEqual(rebuildXenStream(image), bytes);
      const pages = image.records.filter((r) => r.kind === "page_data");
      const sent = pages.flatMap((r) => r.kind === "page_data" ? r.pages : []);
      assert.equal(sent.length, roundPfns.flat().length);
      assert.equal(image.records.at(-1)!.kind, "opaque");
    }
  }
});

Deno.test("the incremental parser gives the same records for any chunking", () => {
  const { bytes } = buildStream({ seed: 5 });
  const whole = new XenStreamParser().push(bytes).map((
    e,
  ) => [e.kind, e.offset, e.bytes.length]);
  for (let seed = 1; seed < 6; seed++) {
    const p = new XenStreamParser();
    const got: unknown[] = [];
    for (const c of chunks(bytes, seed, 700)) {
      for (const e of p.push(c)) got.push([e.kind, e.offset, e.bytes.length]);
    }
    p.finish();
    assert.deepEqual(got, whole);
  }
});

Deno.test("scan mode passes xl's bytes before and after the image as opaque", () => {
  const libxc = buildStream({ seed: 9 }).bytes;
  const wire = wrapLikeXl(libxc);
  for (let seed = 1; seed < 4; seed++) {
    const p = new XenStreamParser({ scan: true });
    const out: Uint8Array[] = [];
    const kinds = new Set<string>();
    const onEvent = (e: XenEvent) => {
      out.push(e.bytes.slice());
      kinds.add(e.kind);
    };
    for (const c of chunks(wire, seed, 300)) p.push(c).forEach(onEvent);
    p.finish().forEach(onEvent);
    assert.deepEqual(concatBytes(out), wire);
    assert.ok(kinds.has("opaque") && kinds.has("pages") && kinds.has("end"));
    assert.ok(p.ended);
  }
});

Deno.test("every truncation fails with XenStreamError at or before the cut", () => {
  const { bytes } = buildStream({ seed: 3, pfns: 40, rounds: 2 });
  for (let cut = 0; cut < bytes.length; cut += 37) {
    const p = new XenStreamParser();
    assert.throws(() => {
      p.push(bytes.subarray(0, cut));
      p.finish();
    }, (e: unknown) => e instanceof XenStreamError && e.offset <= cut);
  }
});

function at(bytes: Uint8Array, off: number, v: number, le = true): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(off, v, le);
  return copy;
}

Deno.test("corruptions name the offset", () => {
  const { bytes } = buildStream({ seed: 4, pfns: 20, rounds: 1 });
  const firstRec = 40;
  const cases: [string, Uint8Array, RegExp, number][] = [
    [
      "marker",
      (() => {
        const c = bytes.slice();
        c[3] = 0;
        return c;
      })(),
      /marker/,
      3,
    ],
    ["id", at(bytes, 8, 0x41414141, false), /image id/, 8],
    ["version", at(bytes, 12, 4, false), /version "4"/, 12],
    [
      "length",
      at(bytes, firstRec + 4, 0x7fff_ffff),
      /over the limit/,
      firstRec + 4,
    ],
  ];
  // The first PAGE_DATA record.
  const image = parseXenStream(bytes);
  let off = 40;
  for (const r of image.records) {
    if (r.kind === "page_data") break;
    off += 8 + ((r.body.length + 7) & ~7);
  }
  cases.push(["count 0", at(bytes, off + 8, 0), /count "0"/, off + 8]);
  cases.push([
    "count 1025",
    at(bytes, off + 8, 1025),
    /count "1025"|over the limit|need/,
    off + 4,
  ]);
  cases.push([
    "type 6",
    at(bytes, off + 20, 0x6000_0000),
    /reserved type/,
    off + 16,
  ]);
  cases.push([
    "reserved bits",
    at(bytes, off + 20, 0x0010_0000),
    /reserved bits/,
    off + 16,
  ]);
  cases.push([
    "body length",
    at(bytes, off + 4, 8 + 8 * 20),
    /need exactly|need/,
    off + 4,
  ]);
  for (const [name, data, re, offset] of cases) {
    assert.throws(() => parseXenStream(data), (e: unknown) => {
      assert.ok(e instanceof XenStreamError, name);
      assert.match(e.message, re, name);
      assert.ok(
        e.offset <= offset + 8 && e.offset >= offset - 8,
        `${name}: ${e.offset} vs ${offset}`,
      );
      return true;
    });
  }
  // Non-zero padding of an opaque record.
  const rec = encodeRecord(RecType.X86_TSC_INFO, new Uint8Array(3));
  rec[rec.length - 1] = 1;
  const head = bytes.subarray(0, 40);
  assert.throws(
    () =>
      parseXenStream(
        concatBytes([head, rec, encodeRecord(0, new Uint8Array(0))]),
      ),
    /Non-zero padding/,
  );
  assert.throws(
    () => parseXenStream(concatBytes([bytes, new Uint8Array([1])])),
    /Trailing bytes after the END record/,
  );
});

Deno.test("fuzz: random streams round-trip; mutated streams fail only with XenStreamError", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1 << 30 }),
      fc.integer({ min: 1, max: 80 }),
      fc.integer({ min: 1, max: 4 }),
      fc.boolean(),
      (seed, pfns, rounds, bigEndian) => {
        const { bytes } = buildStream({
          seed,
          pfns,
          rounds,
          bigEndian,
          batch: 1 + (seed % 50),
        });
        assert.deepEqual(rebuildXenStream(parseXenStream(bytes)), bytes);
      },
    ),
    { numRuns: 40 },
  );
  const { bytes } = buildStream({ seed: 77, pfns: 30, rounds: 2 });
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.nat(bytes.length - 1), fc.integer({ min: 0, max: 255 })),
        { minLength: 1, maxLength: 6 },
      ),
      (flips) => {
        const copy = bytes.slice();
        for (const [i, v] of flips) copy[i] = v;
        try {
          const image = parseXenStream(copy);
          assert.deepEqual(rebuildXenStream(image), copy);
        } catch (e) {
          if (!(e instanceof XenStreamError)) throw e;
        }
      },
    ),
    { numRuns: 300 },
  );
});
