/**
 * The real capture (`testdata/pvh-mini-live.xl.zst`, a live `xl migrate`
 * on Xen 4.17): read by the spec walkers of `_test_util.ts` and by Xen's
 * own `verify-stream-v2`, parsed and rebuilt by the production parser,
 * and carried through the tunnel in memory, byte for byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { CodecSpec } from "../../plan.ts";
import { RoundCounter } from "../rounds.ts";
import { tunnelInMemory } from "../_tunnel_testing.ts";
import {
  parseXenStream,
  rebuildXenStream,
  type XenEvent,
  XenStreamParser,
} from "./mod.ts";
import { XL_CAPTURE, xlCapture } from "./_fixture.ts";
import {
  buildStream,
  chunks,
  specPasses,
  type SpecWalk,
  walkXl,
  wrapLikeXl,
  type XlWalk,
} from "./_test_util.ts";
import { verifyStreamV2 } from "./_verify_stream.ts";
import { concatBytes } from "../../bytes.ts";

const capture = xlCapture();
const xl: XlWalk = walkXl(capture);
const walk: SpecWalk = xl.image;
const image = capture.subarray(xl.imageOffset, xl.imageOffset + walk.length);
const pageRecords = walk.records.filter((r) => r.type === 0x01);
const passes = specPasses(walk);
const dataPages = passes.flat().length;

/**
 * Byte equality of big arrays without node:assert's diff (a diff of two
 * 30 MB arrays runs out of memory): names the first difference.
 */
function assertSameBytes(
  got: Uint8Array,
  want: Uint8Array,
  what: string,
): void {
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  assert.ok(
    i === n && got.length === want.length,
    `${what}: differs from byte ${i} on (${got.length} bytes, expected ${want.length})`,
  );
}

// What the spec walkers and verify-stream-v2 -v read in this capture.
const PAGE_DATA_RECORDS = 1025;
/** Data pages per pass: round 0, four more live rounds, the stop-and-copy pass. */
const PASS_PAGES = [4113, 261, 261, 261, 261, 261];
/** Entries of round 0: libxc sends every pfn up to p2m_size, holes as XTAB. */
const P2M_SIZE = 1_044_480;
/** The non-PAGE_DATA libxc records, in order, as verify-stream-v2 names them. */
const OTHER_RECORDS = [
  "x86 CPUID policy",
  "x86 MSR policy",
  "Static data end",
  "TSC info",
  "HVM context",
  "HVM params",
  "End",
];

Deno.test("real capture: xl's stream walks by the specs, a live migration of a PVH guest on Xen 4.17", () => {
  assert.equal(capture.length, XL_CAPTURE.bytes);
  assert.equal(
    createHash("sha256").update(capture).digest("hex"),
    XL_CAPTURE.sha256,
  );
  assert.equal(xl.mandatoryFlags, 3); // JSON | STREAMv2
  const config = JSON.parse(xl.config.replace(/\0$/, ""));
  assert.equal(config.c_info.type, "pvh");
  assert.equal(config.c_info.name, "hakobu-mini");
  // libxl: LIBXC_CONTEXT (the image follows), END; then xl's protocol
  assert.deepEqual(xl.libxlRecords.map((r) => [r.type, r.length]), [
    [1, 0],
    [0, 0],
  ]);
  assert.equal(
    new TextDecoder().decode(capture.subarray(xl.libxlEnd)),
    "domain is yours, you are cleared to unpause\0",
  );
  assert.deepEqual(
    [walk.version, walk.bigEndian, walk.domainType, walk.pageShift],
    [3, false, 2, 12], // v3, little-endian, x86 HVM (libxc's type for PVH)
  );
  assert.deepEqual([walk.xenMajor, walk.xenMinor], [4, 17]);
  assert.deepEqual(
    walk.records.filter((r) => r.type !== 0x01).map((r) => r.type),
    [0x11, 0x12, 0x10, 0x08, 0x09, 0x0a, 0x00],
  );
  assert.equal(pageRecords.length, PAGE_DATA_RECORDS);
  assert.deepEqual(passes.map((p) => p.length), PASS_PAGES);
  // round 0 walks every pfn from 0 up, in order, in records of 1024; the
  // pfns nothing backs (most of the space below the special pages near
  // 4 GiB) are XTAB, the rest normal pages
  const round0 = pageRecords.slice(0, P2M_SIZE / 1024);
  const pfns = round0.flatMap((r) => r.pfns!);
  assert.equal(pfns.length, P2M_SIZE);
  assert.ok(pfns.every((pfn, i) => pfn === i));
  assert.deepEqual(
    new Set(round0.flatMap((r) => r.types!)),
    new Set([0x0, 0xf]),
  );
  assert.ok(pageRecords[P2M_SIZE / 1024].pfns![0] < P2M_SIZE - 1); // round 1
});

Deno.test("real capture: the production parser reads the same records and rebuilds the image byte for byte", () => {
  const parsed = parseXenStream(image);
  assert.deepEqual(
    [parsed.header.version, parsed.header.domainType, parsed.header.pageShift],
    [walk.version, walk.domainType, walk.pageShift],
  );
  assert.equal(parsed.records.length, walk.records.length);
  parsed.records.forEach((r, i) => {
    const w = walk.records[i];
    if (r.kind === "page_data") {
      assert.equal(w.type, 0x01, `record ${i}`);
      assert.deepEqual(r.entries.map((e) => e.pfn), w.pfns, `record ${i}`);
      assert.deepEqual(r.entries.map((e) => e.type), w.types, `record ${i}`);
      assert.equal(r.pages.length, w.dataPages, `record ${i}`);
    } else {
      assert.deepEqual([r.type, r.body.length], [w.type, w.length]);
    }
  });
  assertSameBytes(rebuildXenStream(parsed), image, "rebuilt image");

  // scan mode over xl's whole stream, in chunks: the same bytes come out,
  // and rounds.ts counts the passes the walker counted
  const p = new XenStreamParser({ scan: true });
  const out: Uint8Array[] = [];
  const rounds = new RoundCounter();
  let pages = 0;
  let records = 0;
  const onEvent = (e: XenEvent) => {
    out.push(e.bytes.slice());
    if (e.kind === "pages") {
      records++;
      pages += e.dataPages;
      rounds.record(e.pfn);
    }
    if (e.kind === "header") assert.equal(e.offset, xl.imageOffset);
  };
  for (const c of chunks(capture, 7, 200_000)) p.push(c).forEach(onEvent);
  p.finish().forEach(onEvent);
  assertSameBytes(concatBytes(out), capture, "scan-mode events");
  assert.equal(records, PAGE_DATA_RECORDS);
  assert.equal(pages, dataPages);
  assert.equal(rounds.round + 1, passes.length);
});

const CHAINS: CodecSpec[][] = [
  [{ name: "zero" }, { name: "raw" }],
  [{ name: "zero" }, { name: "dedup" }, { name: "lz4" }],
];

for (const codecs of CHAINS) {
  Deno.test(`real capture through the tunnel, rebuilt byte for byte: ${codecs.map((c) => c.name).join(",")}`, async () => {
    const { s, r, out } = await tunnelInMemory(capture, codecs);
    assertSameBytes(out, capture, "tunnel output");
    assert.ok(s.verified && r.verified);
    assert.ok(s.sawImage);
    assert.equal(s.pageRecords, PAGE_DATA_RECORDS);
    assert.equal(s.pages, dataPages);
    assert.equal(r.pages, dataPages);
    assert.equal(s.rounds, passes.length);
    assert.ok((s.codecPages.zero ?? 0) > 0);
  });
}

Deno.test("Xen's verify-stream-v2 accepts the capture, the tunnel's rebuild of it, and the rebuilt libxc image", async () => {
  const checks: [string, Uint8Array, "xl" | "libxc"][] = [
    ["capture", capture, "xl"],
    [
      "tunnel",
      (await tunnelInMemory(capture, [{ name: "zero" }, { name: "lz4" }])).out,
      "xl",
    ],
    ["rebuilt image", rebuildXenStream(parseXenStream(image)), "libxc"],
  ];
  for (const [name, bytes, format] of checks) {
    const v = await verifyStreamV2(bytes, format);
    assert.ok(v.ok, `${name}: verify-stream-v2 -f ${format}:\n${v.stderr}`);
    assert.match(v.stdout, /Domain Header: x86 HVM from Xen 4\.17/, name);
    assert.equal(v.pageDataRecords, PAGE_DATA_RECORDS, name);
    assert.deepEqual(v.libxcRecords, OTHER_RECORDS, name);
  }
});

Deno.test("Xen's verify-stream-v2 accepts the spec builders' streams (little-endian, v2 and v3, bare and wrapped like xl)", async () => {
  for (const version of [2, 3] as const) {
    const { bytes } = buildStream({ seed: version, version, rounds: 3 });
    for (
      const [data, format] of [[bytes, "libxc"], [
        wrapLikeXl(bytes),
        "xl",
      ]] as const
    ) {
      const v = await verifyStreamV2(data, format);
      assert.ok(v.ok, `v${version} -f ${format}:\n${v.stderr}`);
      assert.ok(v.pageDataRecords > 0);
    }
  }
});
