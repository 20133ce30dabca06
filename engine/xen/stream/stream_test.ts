import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeRecord,
  parseXenStream,
  rebuildXenStream,
  RecType,
  type XenEvent,
  XenStreamError,
  XenStreamParser,
} from "./mod.ts";
import { buildStream, chunks, concat, wrapLikeXl } from "./_test_util.ts";

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
    assert.deepEqual(concat(out), wire);
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
      parseXenStream(concat([head, rec, encodeRecord(0, new Uint8Array(0))])),
    /Non-zero padding/,
  );
  assert.throws(
    () => parseXenStream(concat([bytes, new Uint8Array([1])])),
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
