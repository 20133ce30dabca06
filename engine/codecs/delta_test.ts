import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError } from "../errors.ts";
import {
  assertDecodesOrRejects,
  assertGoldenVector,
  assertMatchesReference,
  assertSurvivesCutAndFlips,
  assertThrowsCodecError,
  cutsAndFlips,
  decodeSection,
  encodeSection,
  fromHex,
  pageBatch,
  type ReferenceCheck,
  toHex,
} from "./_codec_testing.ts";
import { EncoderChain } from "./chain.ts";
import type { CodecContext, PageDecoder } from "./codec.ts";
import { delta } from "./delta.ts";
import { codecById } from "./registry.ts";
import { PAGE_SIZE } from "../plan.ts";

function ctx(
  pageSize = PAGE_SIZE,
  pageCount = 1,
  options: Record<string, unknown> = {},
  current?: (pfn: number) => Uint8Array,
): CodecContext {
  return { pageSize, pageCount, options, current };
}

/** The XBZRLE grammar written the slow, obvious way: no length limit. */
function refEncode(old: Uint8Array, cur: Uint8Array): number[] {
  const out: number[] = [];
  const uleb = (n: number) => {
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
  };
  const n = old.length;
  let i = 0;
  for (;;) {
    const zs = i;
    while (i < n && old[i] === cur[i]) i++;
    if (i === n) return out;
    uleb(i - zs);
    const ns = i;
    while (i < n && old[i] !== cur[i]) i++;
    uleb(i - ns);
    for (let k = ns; k < i; k++) out.push(cur[k]);
  }
}

/** Encodes `cur` with an encoder whose cache holds `old` for pfn 0. */
function encodeAgainst(old: Uint8Array, cur: Uint8Array): Uint8Array | null {
  const enc = delta.createEncoder!(ctx(old.length));
  enc.sent?.(0, old, 0); // the bulk pass: not cached
  enc.sent?.(0, old, 0); // sent again: cached
  const out = new Uint8Array(delta.maxEncodedBytes!(old.length));
  const n = enc.encode(0, cur, out);
  return n < 0 ? null : out.slice(0, n);
}

/** Decodes `input` against `old` as the receiver's current page. */
function decodeAgainst(old: Uint8Array, input: Uint8Array): Uint8Array {
  const dec = delta.createDecoder!(ctx(old.length, 1, {}, () => old));
  const page = new Uint8Array(old.length);
  dec.decode(0, input, page);
  return page;
}

/** `cur` through the codec against `old`, beside the reference encoding of it. */
function againstReference(old: Uint8Array, cur: Uint8Array): ReferenceCheck {
  return {
    got: encodeAgainst(old, cur),
    want: refEncode(old, cur),
    decode: (bytes) => decodeAgainst(old, bytes),
  };
}

/** Checks the encoder against the reference, and the decoder against the new page. */
function checkRoundTrip(old: Uint8Array, cur: Uint8Array): void {
  assertMatchesReference(cur, againstReference(old, cur));
}

// Golden vectors, from docs/codecs/delta.md (old page: all zero unless stated).
const GOLDEN: { name: string; edit: (p: Uint8Array) => void; hex: string }[] = [
  { name: "unchanged page", edit: () => {}, hex: "" },
  {
    name: "QEMU's example: 1001 equal bytes, then one changed",
    edit: (p) => p[1001] = 0x01,
    hex: "e9 07 01 01",
  },
  {
    name: "one byte changed in the middle",
    edit: (p) => p[2048] = 0x5a,
    hex: "80 10 01 5a",
  },
  { name: "first byte changed", edit: (p) => p[0] = 0xff, hex: "00 01 ff" },
  {
    name: "last byte changed",
    edit: (p) => p[4095] = 0x42,
    hex: "ff 1f 01 42",
  },
  {
    name: "nzrun ends at an equal byte inside a word",
    edit: (p) => p.set([1, 1, 0, 1], 5),
    hex: "05 02 01 01 01 01 01",
  },
  {
    name: "two runs, a 128-byte nzrun",
    edit: (p) => {
      p.set([0xa, 0xb, 0xc, 0xd], 0);
      p.fill(0x77, 100, 228);
    },
    hex: "00 04 0a 0b 0c 0d 60 80 01 " + "77 ".repeat(128),
  },
];

for (const g of GOLDEN) {
  Deno.test(`delta golden: ${g.name}`, () => {
    const old = new Uint8Array(PAGE_SIZE);
    const cur = new Uint8Array(PAGE_SIZE);
    g.edit(cur);
    assertGoldenVector(cur, g.hex, againstReference(old, cur));
  });
}

Deno.test("delta golden: decodes against a non-zero current page", () => {
  const old = new Uint8Array(PAGE_SIZE).fill(0x11);
  const cur = old.slice();
  cur[3] = 0x22;
  cur[4095] = 0x33;
  const got = encodeAgainst(old, cur);
  assert.ok(got);
  assert.equal(toHex(got), "03 01 22 fb 1f 01 33");
  assert.deepEqual(decodeAgainst(old, got), cur);
  // Empty: the page stays as the receiver holds it.
  assert.deepEqual(decodeAgainst(old, new Uint8Array(0)), old);
});

Deno.test("delta golden: an all-changed page is declined (QEMU's overflow)", () => {
  const old = new Uint8Array(PAGE_SIZE);
  const cur = new Uint8Array(PAGE_SIZE).fill(0xff);
  assert.equal(refEncode(old, cur).length, PAGE_SIZE + 3); // 00 80 20, then 4096 bytes
  assert.equal(encodeAgainst(old, cur), null);
});

Deno.test("delta declines exactly at the page size, not before", () => {
  // Page of 64 bytes: one nzrun of k changed bytes at offset 0 costs 2 + k.
  for (let k = 58; k <= 64; k++) {
    const old = new Uint8Array(64);
    const cur = old.slice();
    cur.fill(9, 0, k);
    const want = refEncode(old, cur);
    assert.equal(want.length, 2 + k);
    const got = encodeAgainst(old, cur);
    if (want.length >= 64) assert.equal(got, null, `k=${k}`);
    else assert.equal(got?.length, want.length, `k=${k}`);
  }
});

Deno.test("delta property: random sparse changes round-trip and match the reference", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: PAGE_SIZE, maxLength: PAGE_SIZE }),
      fc.array(
        fc.record({
          at: fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
          len: fc.integer({ min: 1, max: 300 }),
          value: fc.integer({ min: 0, max: 255 }),
        }),
        { maxLength: 40 },
      ),
      (old, edits) => {
        const cur = old.slice();
        for (const e of edits) {
          cur.fill(e.value, e.at, Math.min(PAGE_SIZE, e.at + e.len));
        }
        checkRoundTrip(old, cur);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("delta property: random small pages round-trip; -1 exactly when not smaller", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(4, 8, 64),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
      (ps, a, b, mask) => {
        const old = a.subarray(0, ps);
        // Each byte kept or replaced, by the mask: many run shapes.
        const cur = old.map((v, i) => (mask[i] & 1) ? b[i] : v);
        checkRoundTrip(old, cur);
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("delta property: adversarial pages", () => {
  const patterns: [string, (i: number) => number][] = [
    ["zero", () => 0],
    ["ff", () => 0xff],
    ["word", (i) => [0xde, 0xad, 0xbe, 0xef][i & 3]],
    ["ramp", (i) => i & 0xff],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...patterns),
      fc.constantFrom(...patterns),
      fc.integer({ min: 1, max: 7 }),
      fc.integer({ min: 0, max: 7 }),
      ([, pa], [, pb], period, phase) => {
        const old = new Uint8Array(PAGE_SIZE).map((_, i) => pa(i));
        const alt = new Uint8Array(PAGE_SIZE).map((_, i) => pb(i));
        // Bytes differ every `period` bytes: alternating equal/different at period 2.
        const cur = old.map((v, i) =>
          ((i + phase) % (period + 1) === 0) ? v ^ 0x5a : v
        );
        checkRoundTrip(old, cur);
        checkRoundTrip(old, alt);
        checkRoundTrip(alt, old);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("delta: byte-by-byte alternation (XBZRLE's worst case) is declined", () => {
  const old = new Uint8Array(PAGE_SIZE);
  const cur = old.map((_, i) => i & 1);
  assert.ok(refEncode(old, cur).length > PAGE_SIZE);
  assert.equal(encodeAgainst(old, cur), null);
});

Deno.test("delta: runs at the ULEB128 boundaries 127/128 and 16383/16384", () => {
  for (const ps of [4096, 32768]) {
    const lens = [1, 126, 127, 128, 129, 255, 256, 16383, 16384, 16385]
      .filter((l) => l < ps);
    for (const zlen of lens) {
      for (const nlen of lens) {
        if (zlen + nlen > ps) continue;
        const old = new Uint8Array(ps);
        const cur = old.slice();
        cur.fill(0xee, zlen, zlen + nlen);
        checkRoundTrip(old, cur);
        const got = encodeAgainst(old, cur);
        if (got && zlen === 16384) {
          assert.equal(toHex(got.subarray(0, 3)), "80 80 01");
        }
        if (got && zlen === 127) assert.equal(got[0], 0x7f);
        if (got && zlen === 128) {
          assert.equal(toHex(got.subarray(0, 2)), "80 01");
        }
      }
    }
  }
});

Deno.test("delta: unaligned page views encode like aligned ones", () => {
  const old = new Uint8Array(PAGE_SIZE).map((_, i) => (i * 7) & 0xff);
  const backing = new Uint8Array(PAGE_SIZE + 3);
  const cur = backing.subarray(3, 3 + PAGE_SIZE);
  cur.set(old);
  cur[17] ^= 1;
  cur[4000] ^= 0x80;
  checkRoundTrip(old, cur);
});

// Malformed input, each with the part of the message that says why.
const MALFORMED: [string, string][] = [
  ["00", "ends the input"],
  ["05", "ends the input"],
  ["00 00", "empty non-zero run"],
  ["01 01 ab 00 01 cd", "empty zero run"],
  ["ff ff ff ff ff 01", "longer than 5 bytes"],
  ["80", "cut off"],
  ["00 81", "cut off"],
  ["80 00 01 aa", "shortest form"],
  ["81 20 01 aa", "larger than the page"],
  ["ff 1f 02 aa bb", "past the page"],
  ["80 20 01 aa", "past the page"],
  ["00 05 aa", "only 1 left"],
  ["10 01 aa 10", "ends the input"],
];

for (const [input, why] of MALFORMED) {
  Deno.test(`delta rejects malformed input: ${input}`, () => {
    const old = new Uint8Array(PAGE_SIZE);
    assertThrowsCodecError(() => decodeAgainst(old, fromHex(input)), why);
  });
}

Deno.test("delta rejects input as long as the page, a missing current and a bad output buffer", () => {
  const old = new Uint8Array(PAGE_SIZE);
  assertThrowsCodecError(
    () => decodeAgainst(old, new Uint8Array(PAGE_SIZE)),
    /not smaller than the page/,
  );
  const noCurrent = delta.createDecoder!(ctx());
  assertThrowsCodecError(
    () => noCurrent.decode(0, new Uint8Array(0), new Uint8Array(PAGE_SIZE)),
    /no current page/,
  );
  const dec = delta.createDecoder!(ctx(PAGE_SIZE, 1, {}, () => old));
  assert.throws(
    () => dec.decode(0, new Uint8Array(0), new Uint8Array(PAGE_SIZE + 1)),
    CodecError,
  );
  const short = delta.createDecoder!(
    ctx(PAGE_SIZE, 1, {}, () => old.subarray(1)),
  );
  assert.throws(
    () => short.decode(0, new Uint8Array(0), new Uint8Array(PAGE_SIZE)),
    CodecError,
  );
});

Deno.test("delta fuzz: random input never escapes the page or throws anything but CodecError", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(64, 4096),
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 0, max: 32 }),
      (ps, input, offset) => {
        const old = new Uint8Array(ps).fill(3);
        // The page at `offset` of a buffer with 64 guard bytes in all.
        assertDecodesOrRejects(
          delta.createDecoder!(ctx(ps, 1, {}, () => old)),
          input,
          { pageSize: ps, before: offset, after: 64 - offset },
        );
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("delta fuzz: truncated and mutated valid encodings", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 256, maxLength: 256 }),
      fc.array(fc.integer({ min: 0, max: 255 }), {
        minLength: 1,
        maxLength: 8,
      }),
      cutsAndFlips(256),
      (old, spots, damage) => {
        const cur = old.slice();
        for (const s of spots) cur[s] ^= 0xff;
        const valid = encodeAgainst(old, cur);
        assert.ok(valid);
        const dec = delta.createDecoder!(ctx(256, 1, {}, () => old));
        assertSurvivesCutAndFlips(dec, valid, damage);
        const longer = new Uint8Array(valid.length + 1);
        longer.set(valid);
        assertDecodesOrRejects(dec, longer, damage);
      },
    ),
    { numRuns: 1000 },
  );
});

/** The pfns an encoder claims now (pages with identical content: encodes as empty). */
function claimed(
  ps: number,
  pageCount: number,
  options: Record<string, unknown>,
) {
  const enc = delta.createEncoder!(ctx(ps, pageCount, options));
  const out = new Uint8Array(ps);
  const page = new Uint8Array(ps);
  return {
    sent: (pfn: number) => enc.sent?.(pfn, page, 0),
    claims: () => {
      const pfns: number[] = [];
      for (let p = 0; p < pageCount; p++) {
        if (enc.encode(p, page, out) >= 0) pfns.push(p);
      }
      return pfns;
    },
  };
}

Deno.test("delta cache: a page never sent is declined", () => {
  const c = claimed(PAGE_SIZE, 8, {});
  assert.deepEqual(c.claims(), []);
  c.sent(5);
  c.sent(5);
  assert.deepEqual(c.claims(), [5]);
});

Deno.test("delta cache: like QEMU's XBZRLE, a page's first send (the bulk pass) is not cached", () => {
  const c = claimed(PAGE_SIZE, 8, {});
  for (let p = 0; p < 8; p++) c.sent(p);
  assert.deepEqual(c.claims(), [], "nothing cached after the bulk pass");
  c.sent(2);
  c.sent(6);
  assert.deepEqual(c.claims(), [2, 6], "re-sent pages are cached");
});

Deno.test("delta cache: direct-mapped by pfn % slots, newest wins", () => {
  const c = claimed(PAGE_SIZE, 64, { cacheBytes: 16 * PAGE_SIZE });
  for (let p = 0; p < 64; p++) c.sent(p); // bulk pass
  for (let p = 0; p < 64; p++) c.sent(p);
  assert.deepEqual(c.claims(), Array.from({ length: 16 }, (_, i) => 48 + i));
  c.sent(3); // evicts 51
  assert.ok(c.claims().includes(3));
  assert.ok(!c.claims().includes(51));
});

Deno.test("delta cache property: bounded, and holds the last pfn sent to each slot", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.array(fc.integer({ min: 0, max: 31 }), { maxLength: 100 }),
      (slots, sends) => {
        // cacheBytes is a multiple of 4096 whatever the page size
        const c = claimed(PAGE_SIZE, 32, { cacheBytes: slots * PAGE_SIZE });
        const model = new Map<number, number>();
        const seen = new Set<number>();
        for (const p of sends) {
          c.sent(p);
          if (seen.has(p)) model.set(p % slots, p);
          seen.add(p);
        }
        const got = c.claims();
        assert.ok(got.length <= slots);
        assert.deepEqual(got, [...model.values()].sort((a, b) => a - b));
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("delta cache: encodes against the version sent last", () => {
  const enc = delta.createEncoder!(ctx(PAGE_SIZE, 4));
  const out = new Uint8Array(PAGE_SIZE);
  const v1 = new Uint8Array(PAGE_SIZE).fill(1);
  const v2 = v1.slice();
  v2[10] = 2;
  enc.sent?.(2, v1, 0); // bulk pass
  enc.sent?.(2, v1, 0);
  enc.sent?.(2, v2, 3);
  assert.equal(enc.encode(2, v2, out), 0); // unchanged since v2
  const n = enc.encode(2, v1, out);
  assert.equal(toHex(out.subarray(0, n)), "0a 01 01");
});

Deno.test("delta options: cacheBytes must be a positive multiple of the page size", () => {
  for (const bad of [0, -4096, 4097, 1.5, "64M", Number.NaN]) {
    assertThrowsCodecError(
      () => delta.createEncoder!(ctx(PAGE_SIZE, 1, { cacheBytes: bad })),
      /cacheBytes/,
    );
  }
  assert.throws(
    () => delta.createEncoder!(ctx(PAGE_SIZE, 1, { size: 1 })),
    /Unknown delta option "size"/,
  );
  assert.throws(() => delta.createEncoder!(ctx(4098)), CodecError);
  delta.createEncoder!(ctx(PAGE_SIZE, 1, { cacheBytes: PAGE_SIZE }));
});

Deno.test("delta parseOptions: fills the 64 MiB default and names a bad or unknown option", () => {
  assert.deepEqual(delta.parseOptions({}), { cacheBytes: 64 * 1024 * 1024 });
  assert.deepEqual(delta.parseOptions({ cacheBytes: 2 * PAGE_SIZE }), {
    cacheBytes: 2 * PAGE_SIZE,
  });
  for (const bad of [0, 4097, "64M"]) {
    assertThrowsCodecError(
      () => delta.parseOptions({ cacheBytes: bad }),
      new RegExp(`delta cacheBytes "${String(bad)}"`),
    );
  }
  assertThrowsCodecError(
    () => delta.parseOptions({ size: 1 }),
    /Unknown delta option "size": delta takes "cacheBytes"/,
  );
});

Deno.test("delta section golden (docs/codecs/delta.md): a page's third send, one byte changed", () => {
  const v1 = new Uint8Array(PAGE_SIZE);
  const v2 = v1.slice();
  v2[1001] = 1;
  const enc = delta.createBatchEncoder(ctx(PAGE_SIZE, 8));
  // Sends 1 (the bulk pass: remembered, not cached) and 2 (cached): raw.
  for (let send = 0; send < 2; send++) {
    const batch = pageBatch([v1], [3]);
    assert.equal(encodeSection(delta, enc, batch).claims, 0);
    enc.sent!(batch, new Uint8Array([0]));
  }
  const batch = pageBatch([v2, v1], [3, 4]);
  const { section, claimed } = encodeSection(delta, enc, batch);
  assert.deepEqual([...claimed], [1, 0]); // pfn 4 was never sent
  // length 4, then zrun 1001 (e9 07), nzrun 1, the new byte 01
  const golden = "04 00 00 00 e9 07 01 01";
  assert.equal(toHex(section), golden);
  const dec = delta.createBatchDecoder(ctx(PAGE_SIZE, 8, {}, () => v1));
  assert.deepEqual(decodeSection(dec, fromHex(golden), 1, PAGE_SIZE), v2);
  // An unchanged page is a zero length.
  enc.sent!(batch, new Uint8Array([3, 0]));
  const same = encodeSection(delta, enc, pageBatch([v2], [3]));
  assert.equal(toHex(same.section), "00 00 00 00");
  const dec2 = delta.createBatchDecoder(ctx(PAGE_SIZE, 8, {}, () => v2));
  assert.deepEqual(
    decodeSection(dec2, fromHex("00 00 00 00"), 1, PAGE_SIZE),
    v2,
  );
});

Deno.test("delta in a chain [zero, delta, raw]: the receiver ends with the last versions", () => {
  const pageCount = 48;
  const chain = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
  chain.select([
    { name: "zero" },
    { name: "delta", options: { cacheBytes: 32 * PAGE_SIZE } },
    { name: "raw" },
  ]);
  const memory = new Uint8Array(pageCount * PAGE_SIZE);
  const current = (pfn: number) =>
    memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  const decoders = new Map<number, PageDecoder>();
  const decoderFor = (id: number) => {
    let d = decoders.get(id);
    if (!d) {
      const codec = codecById(id);
      assert.ok(codec, `codec id ${id}`);
      d = codec.createDecoder!(ctx(PAGE_SIZE, pageCount, {}, current));
      decoders.set(id, d);
    }
    return d;
  };
  const scratch = new Uint8Array(PAGE_SIZE);
  const send = (pfn: number, page: Uint8Array) => {
    const r = chain.encode(pfn, page);
    const payload = chain.output.slice(0, r.length);
    decoderFor(r.codecId).decode(pfn, payload, scratch);
    memory.set(scratch, pfn * PAGE_SIZE);
    return r.codecId;
  };

  let seed = 1;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
  const v1 = Array.from({ length: pageCount }, (_, p) => {
    const page = new Uint8Array(PAGE_SIZE);
    if (p % 4 !== 0) { for (let i = 0; i < PAGE_SIZE; i++) page[i] = rand(); }
    return page;
  });
  for (let p = 0; p < pageCount; p++) {
    assert.equal(send(p, v1[p]), p % 4 === 0 ? 1 : 0);
  }

  const v2 = v1.map((page, p) => {
    const next = page.slice();
    if (p % 3 === 1) {
      for (let k = 0; k < 8; k++) next[rand() * 16 + k] ^= 0xff;
    }
    if (p % 5 === 2) { for (let i = 0; i < PAGE_SIZE; i++) next[i] = rand(); }
    if (p % 7 === 3) next.fill(0);
    return next;
  });
  const round2 = new Map<number, number>();
  for (let p = 0; p < pageCount; p++) {
    const id = send(p, v2[p]);
    round2.set(id, (round2.get(id) ?? 0) + 1);
  }
  assert.deepEqual(memory, new Uint8Array(v2.flatMap((p) => [...p])));
  assert.equal(
    round2.get(3) ?? 0,
    0,
    "the bulk pass cached nothing, so no delta yet",
  );

  // A third version: now the re-sent pages are cached and delta pays off.
  const v3 = v2.map((page, p) => {
    const next = page.slice();
    if (p % 2 === 1) next[(p * 37) % PAGE_SIZE] ^= 0x5a;
    return next;
  });
  const used = new Map<number, number>();
  for (let p = 0; p < pageCount; p++) {
    const id = send(p, v3[p]);
    used.set(id, (used.get(id) ?? 0) + 1);
  }
  assert.deepEqual(memory, new Uint8Array(v3.flatMap((p) => [...p])));
  assert.ok((used.get(3) ?? 0) > 0, "delta claimed some pages");
  assert.ok((used.get(3) ?? 0) <= 32, "delta claimed at most the cached pages");
  assert.ok((used.get(0) ?? 0) > 0, "raw sent the rest");
});
