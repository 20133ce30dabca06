import assert from "node:assert/strict";
import fc from "fast-check";
import { codec } from "../../dsl/codec_spec.ts";
import { CodecError } from "../errors.ts";
import {
  assertDecodesOrRejects,
  assertRegistered,
  assertThrowsCodecError,
  ChannelReceiver,
  pageBatch,
} from "./_codec_testing.ts";
import { BatchEncoderChain } from "./batch_chain.ts";
import { parseBatchPayload } from "../wire/batch.ts";
import { fingerprint128 } from "./_fingerprint.ts";
import { EncoderChain } from "./chain.ts";
import type { PageDecoder, PageEncoder } from "./codec.ts";
import { dedup, DedupDecoder, DedupEncoder } from "./dedup.ts";
import { raw } from "./raw.ts";
import { zero } from "./zero.ts";
import { concatBytes } from "../bytes.ts";
import { PAGE_SIZE } from "../plan.ts";

function ctx(options: Record<string, unknown> = {}, pageCount = 8) {
  return { pageSize: PAGE_SIZE, pageCount, options };
}

/** A deterministic non-zero byte pattern. */
function pattern(len: number, mul: number, add: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = ((i * mul + add) & 0xff) | 1;
  return b;
}

const concat = (...parts: Uint8Array[]): Uint8Array => concatBytes(parts);

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** Sends `page` through a manual `dedup → raw` chain on both sides. */
function sendBoth(
  enc: PageEncoder,
  dec: PageDecoder,
  pfn: number,
  page: Uint8Array,
): Uint8Array | undefined {
  const out = new Uint8Array(PAGE_SIZE);
  const n = enc.encode(pfn, page, out);
  const scratch = new Uint8Array(PAGE_SIZE);
  let id = 0;
  if (n >= 0) {
    id = dedup.id;
    dec.decode(pfn, out.subarray(0, n), scratch);
  } else scratch.set(page);
  enc.sent!(pfn, page, id);
  dec.applied!(pfn, scratch, id);
  assert.deepEqual(scratch, page);
  return n >= 0 ? out.slice(0, n) : undefined;
}

// ---------------------------------------------------------------- registry, DSL, options

Deno.test("dedup: registered as wire id 4, reachable from the DSL", () => {
  assertRegistered(dedup, 4);
  assert.deepEqual(codec.dedup(), { name: "dedup" });
  assert.deepEqual(codec.dedup({ chunkBytes: 1024 }), {
    name: "dedup",
    options: { chunkBytes: 1024 },
  });
});

Deno.test("dedup: bad options throw CodecError naming the option and the allowed values", () => {
  // compile() and the receiver check with parseOptions; the halves check too.
  const checks = [
    (o: Record<string, unknown>) => dedup.parseOptions(o),
    (o: Record<string, unknown>) => dedup.createEncoder!(ctx(o)),
    (o: Record<string, unknown>) => dedup.createDecoder!(ctx(o)),
    (o: Record<string, unknown>) => dedup.createBatchEncoder(ctx(o)),
    (o: Record<string, unknown>) => dedup.createBatchDecoder(ctx(o)),
  ];
  for (const check of checks) {
    for (const chunkBytes of [3000, 256, 8192, "1024", 0]) {
      assert.throws(() => check({ chunkBytes }), (e: unknown) => {
        assert.ok(e instanceof CodecError);
        assert.match(e.message, /"chunkBytes"/);
        assert.match(e.message, /512, 1024, 2048, 4096/);
        return true;
      });
    }
    for (const storeBytes of [100, 1.5, -4096, "1 MiB", 2 ** 60]) {
      assertThrowsCodecError(() => check({ storeBytes }), /"storeBytes"/);
    }
    assertThrowsCodecError(
      () => check({ chunkSize: 1024 }),
      /"chunkSize".*"chunkBytes", "storeBytes"/,
    );
  }
  // 2048-byte pages cannot take 4096-byte chunks.
  assert.throws(
    () => dedup.createEncoder!({ pageSize: 2048, pageCount: 1, options: {} }),
    CodecError,
  );
});

Deno.test("dedup: parseOptions fills the defaults and rounds storeBytes down to whole chunks", () => {
  assert.deepEqual(dedup.parseOptions({}), {
    chunkBytes: 4096,
    storeBytes: 256 * 1024 * 1024,
  });
  assert.deepEqual(
    dedup.parseOptions({ chunkBytes: 1024, storeBytes: 10 * 1024 + 5 }),
    { chunkBytes: 1024, storeBytes: 10 * 1024 },
  );
  // what parseOptions returns, it accepts again unchanged (the receiver re-checks a CODEC frame's options)
  const once = dedup.parseOptions({ chunkBytes: 512 });
  assert.deepEqual(dedup.parseOptions(once), once);
});

// ---------------------------------------------------------------- golden vectors

Deno.test("dedup golden 1: a page referencing an earlier page (chunkBytes 4096)", () => {
  const a = pattern(PAGE_SIZE, 7, 1);
  const enc = dedup.createEncoder!(ctx());
  const dec = dedup.createDecoder!(ctx());
  assert.equal(sendBoth(enc, dec, 0, a), undefined); // declined: nothing held yet
  const golden = Uint8Array.from([0x03, 0x01, 0x01, 0x00, 0x00, 0x00]);
  const out = new Uint8Array(PAGE_SIZE);
  assert.equal(hex(out.subarray(0, enc.encode(5, a, out))), hex(golden));
  const page = new Uint8Array(PAGE_SIZE);
  dec.decode(5, golden, page);
  assert.deepEqual(page, a);
});

Deno.test("dedup golden 2: mixed literal, zero and reference chunks (chunkBytes 1024)", () => {
  const K = 1024;
  const a = pattern(K, 7, 1), b = pattern(K, 13, 5), c = pattern(K, 31, 17);
  const d = pattern(K, 3, 200), e = pattern(K, 11, 42);
  const opts = { chunkBytes: 1024 };
  const enc = dedup.createEncoder!(ctx(opts));
  const dec = dedup.createDecoder!(ctx(opts));
  assert.equal(sendBoth(enc, dec, 0, concat(a, b, c, d)), undefined);
  const p2 = concat(b, new Uint8Array(K), e, a);
  // header 01; kinds ref, zero, literal, ref; age of b = 3; e; age of a = 4
  const golden = concat(
    Uint8Array.from([0x01, 0x01, 0x02, 0x00, 0x01, 0x03, 0x00, 0x00, 0x00]),
    e,
    Uint8Array.from([0x04, 0x00, 0x00, 0x00]),
  );
  assert.equal(golden.length, 1037);
  const page = new Uint8Array(PAGE_SIZE);
  dec.decode(1, golden, page);
  assert.deepEqual(page, p2);
  const out = new Uint8Array(PAGE_SIZE);
  const n = enc.encode(1, page, out); // re-encode the decoded page
  assert.equal(hex(out.subarray(0, n)), hex(golden));
  enc.sent!(1, page, dedup.id);
  dec.applied!(1, page, dedup.id);
  // Only the literal e was inserted: the stores hold a, b, c, d, e.
  const encoder = enc as DedupEncoder, decoder = dec as DedupDecoder;
  assert.equal(encoder.store.count, 5);
  assert.equal(decoder.store.count, 5);
  assert.deepEqual(encoder.store.copy(1), e);
  assert.deepEqual(decoder.store.copy(1), e);
  // A third page now refers to e at age 1 and to d at age 2.
  const p3 = concat(e, d, e, d);
  assert.equal(
    hex(sendBoth(enc, dec, 2, p3)!),
    "01" + "01010101" + "01000000" + "02000000" + "01000000" + "02000000",
  );
});

// ---------------------------------------------------------------- collision safety

/** A deliberately terrible fingerprint: every chunk collides with every other. */
function weak(_w: Uint32Array, _s: number, _n: number, out: Uint32Array): void {
  out.fill(0);
}

Deno.test("dedup: a fingerprint collision with different bytes is a miss, never a wrong reference", () => {
  const enc = new DedupEncoder(ctx(), { fingerprint: weak });
  const dec = new DedupDecoder(ctx());
  const x = pattern(PAGE_SIZE, 7, 1), y = pattern(PAGE_SIZE, 9, 3);
  sendBoth(enc, dec, 0, x);
  const out = new Uint8Array(PAGE_SIZE);
  assert.equal(enc.encode(1, y, out), -1); // fingerprints match x's, bytes do not
  enc.sent(1, y, raw.id);
  dec.applied(1, y, raw.id);
  assert.deepEqual(hex(out.subarray(0, enc.encode(2, y, out))), "030101000000");
});

Deno.test("dedup property: with an always-colliding fingerprint the receiver still gets exact bytes", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(512, 1024, 4096),
      fc.array(fc.tuple(fc.nat(7), fc.nat(5)), { minLength: 1, maxLength: 40 }),
      (chunkBytes, seq) => {
        const opts = { chunkBytes, storeBytes: chunkBytes * 4 };
        const enc = new DedupEncoder(ctx(opts), { fingerprint: weak });
        const dec = new DedupDecoder(ctx(opts));
        const pool = [0, 1, 2, 3, 4, 5].map((i) =>
          concat(pattern(2048, 3 + i * 2, i), pattern(2048, 5, i % 2))
        );
        for (const [pfn, p] of seq) sendBoth(enc, dec, pfn, pool[p]);
      },
    ),
  );
});

Deno.test("dedup section golden (docs/codecs/dedup.md): references to an earlier batch and to an earlier page of the same batch", () => {
  const a = pattern(PAGE_SIZE, 7, 1);
  const b = pattern(PAGE_SIZE, 5, 9);
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "dedup" }]);
  const rx = new ChannelReceiver(8);
  rx.announce(chain.takeNewCodecs());
  /** Sends a batch; returns the dedup section's hex and the codec of each page. */
  const send = (pages: Uint8Array[], pfns: number[]) => {
    const { payload, codecOf } = chain.encode(
      pageBatch(pages, pfns),
      (n) => new Uint8Array(n),
    );
    rx.receive(payload);
    pfns.forEach((pfn, i) =>
      assert.deepEqual(
        rx.memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
        pages[i],
      )
    );
    const parsed = parseBatchPayload(payload, {
      pageCount: 8,
      knows: () => true,
    });
    const sec = parsed.sections.find((x) => x.codecId === dedup.id);
    return {
      section: sec
        ? hex(payload.subarray(sec.offset, sec.offset + sec.length))
        : "",
      codecs: [...codecOf.subarray(0, pfns.length)],
    };
  };
  // batch 1: a is new: raw carries it, both stores insert it
  assert.deepEqual(send([a], [0]), { section: "", codecs: [0] });
  // batch 2: a twice more, each a reference to age 1
  assert.deepEqual(send([a, a], [1, 2]), {
    section: "06000000" + "06000000" + "03" + "01" + "01000000" + "03" + "01" +
      "01000000",
    codecs: [4, 4],
  });
  // batch 3: b is new at pfn 4 (raw), and pfn 5 refers to it: the store
  // follows the batch page by page
  assert.deepEqual(send([b, b], [4, 5]), {
    section: "06000000" + "03" + "01" + "01000000",
    codecs: [0, 4],
  });
});

// ---------------------------------------------------------------- chain round trips

/** Pages from a small pool of chunks (and zero chunks), so repeats are common. */
function pagePool(chunkBytes: number, seed: number): Uint8Array[] {
  const chunks: Uint8Array[] = [new Uint8Array(chunkBytes)];
  for (let i = 0; i < 5; i++) {
    chunks.push(pattern(chunkBytes, 2 * i + 3, seed + i * 40));
  }
  const pages: Uint8Array[] = [new Uint8Array(PAGE_SIZE)];
  const per = PAGE_SIZE / chunkBytes;
  for (let p = 0; p < 10; p++) {
    const page = new Uint8Array(PAGE_SIZE);
    for (let c = 0; c < per; c++) {
      page.set(chunks[(p * 7 + c * (p + 1)) % chunks.length], c * chunkBytes);
    }
    pages.push(page);
  }
  return pages;
}

interface Receiver {
  memory: Uint8Array;
  decoders: Map<number, PageDecoder>;
  scratch: Uint8Array;
}

function receiver(
  pageCount: number,
  dedupOptions: Record<string, unknown>,
): Receiver {
  const decoders = new Map<number, PageDecoder>();
  for (const c of [raw, zero, dedup]) {
    decoders.set(
      c.id,
      c.createDecoder!(ctx(c === dedup ? dedupOptions : {}, pageCount)),
    );
  }
  return {
    memory: new Uint8Array(pageCount * PAGE_SIZE),
    decoders,
    scratch: new Uint8Array(PAGE_SIZE),
  };
}

function receive(
  r: Receiver,
  pfn: number,
  id: number,
  input: Uint8Array,
): void {
  r.decoders.get(id)!.decode(pfn, input, r.scratch);
  r.memory.set(r.scratch, pfn * PAGE_SIZE);
  for (const d of r.decoders.values()) d.applied?.(pfn, r.scratch, id);
}

const roundsArb = fc.array(
  fc.array(fc.tuple(fc.nat(7), fc.nat(10)), { minLength: 1, maxLength: 20 }),
  { minLength: 1, maxLength: 4 },
);

Deno.test("dedup property: EncoderChain [zero, dedup, raw] over rounds keeps receiver memory equal to the source", () => {
  let claimedPages = 0;
  fc.assert(
    fc.property(
      fc.constantFrom(512, 1024, 2048, 4096),
      fc.integer({ min: 1, max: 12 }),
      fc.nat(200),
      roundsArb,
      (chunkBytes, slots, seed, rounds) => {
        const pageCount = 8;
        const options = { chunkBytes, storeBytes: chunkBytes * slots };
        const pool = pagePool(chunkBytes, seed);
        const source = new Uint8Array(pageCount * PAGE_SIZE);
        const chain = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
        chain.select([{ name: "zero" }, { name: "dedup", options }, {
          name: "raw",
        }]);
        const r = receiver(pageCount, options);
        for (const round of rounds) {
          for (const [pfn, p] of round) source.set(pool[p], pfn * PAGE_SIZE);
          for (const [pfn] of round) {
            const res = chain.encode(
              pfn,
              source.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
            );
            if (res.codecId === dedup.id) claimedPages++;
            receive(r, pfn, res.codecId, chain.output.subarray(0, res.length));
          }
          assert.deepEqual(r.memory, source);
        }
      },
    ),
  );
  assert.ok(claimedPages > 0, "dedup claimed no page in any run");
});

Deno.test("dedup property: sender and receiver stores stay in sync, eviction included", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(512, 1024, 4096),
      fc.integer({ min: 1, max: 6 }),
      fc.nat(200),
      roundsArb,
      (chunkBytes, slots, seed, rounds) => {
        const options = { chunkBytes, storeBytes: chunkBytes * slots };
        const enc = new DedupEncoder(ctx(options));
        const dec = new DedupDecoder(ctx(options));
        const zEnc = zero.createEncoder!(ctx());
        const pool = pagePool(chunkBytes, seed);
        for (const round of rounds) {
          for (const [pfn, p] of round) {
            const page = pool[p];
            if (zEnc.encode(pfn, page, new Uint8Array(0)) === 0) {
              enc.sent(pfn, page, zero.id);
              dec.applied(pfn, new Uint8Array(PAGE_SIZE), zero.id);
            } else sendBoth(enc, dec, pfn, page);
            assert.equal(enc.store.count, dec.store.count);
            for (let age = 1; age <= slots + 1; age++) {
              assert.deepEqual(enc.store.copy(age), dec.store.copy(age));
            }
            assert.equal(enc.store.copy(slots + 1), undefined);
          }
        }
      },
    ),
  );
});

Deno.test("dedup: an encoder created rounds after the decoder (chain changed) still refers correctly", () => {
  const pageCount = 8;
  const pool: Uint8Array[] = [new Uint8Array(PAGE_SIZE)];
  for (let i = 1; i <= 8; i++) pool.push(pattern(PAGE_SIZE, 2 * i + 3, i * 10));
  const source = new Uint8Array(pageCount * PAGE_SIZE);
  const chain = new EncoderChain({ pageSize: PAGE_SIZE, pageCount });
  // The receiver uses default options ({}), as the HELLO carries no codec options.
  const r = receiver(pageCount, {});
  const send = (pfn: number, p: number): number => {
    source.set(pool[p], pfn * PAGE_SIZE);
    const res = chain.encode(
      pfn,
      source.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
    );
    receive(r, pfn, res.codecId, chain.output.subarray(0, res.length));
    return res.codecId;
  };
  chain.select([{ name: "zero" }, { name: "raw" }]);
  for (let pfn = 0; pfn < pageCount; pfn++) send(pfn, pfn + 1);
  chain.select([{ name: "zero" }, {
    name: "dedup",
    options: { storeBytes: 3 * PAGE_SIZE },
  }, {
    name: "raw",
  }]);
  const ids: number[] = [];
  const round2 = [[0, 4], [1, 5], [2, 4], [3, 5], [4, 0], [5, 1], [6, 4], [
    7,
    6,
  ]];
  for (const [pfn, p] of round2) ids.push(send(pfn, p));
  assert.deepEqual(r.memory, source);
  // 4, 5 new to dedup (raw); 4, 5 again (dedup); zero page; 1 new (raw);
  // 4 at age 3 in a 3-page store (dedup); 6 new (raw)
  assert.deepEqual(ids, [0, 0, 4, 4, 1, 0, 4, 0]);
});

// ---------------------------------------------------------------- malformed input

function primedDecoder(chunkBytes: number): DedupDecoder {
  const dec = new DedupDecoder(ctx({ chunkBytes, storeBytes: 8 * chunkBytes }));
  dec.applied(0, pattern(PAGE_SIZE, 7, 1), raw.id);
  dec.applied(1, pattern(PAGE_SIZE, 5, 9), raw.id);
  return dec;
}

Deno.test("dedup decoder: each malformed field throws CodecError before writing", () => {
  const cases: [string, number[], RegExp][] = [
    ["empty", [], /at least 2 bytes/],
    ["reserved header bits", [0x13, 1, 1, 0, 0, 0], /reserved bits/],
    ["other chunk size", [0x01, 1, 1, 0, 0, 0], /chunkBytes 1024/],
    ["unknown kind", [0x03, 3], /unknown kind 3/],
    [
      "all literal",
      [0x03, 0, ...new Array(4096).fill(1)],
      /no chunk is a reference or zero/,
    ],
    ["truncated", [0x03, 1, 1, 0, 0], /need 6 bytes, got 5 \(truncated\)/],
    ["trailing", [0x03, 1, 1, 0, 0, 0, 9], /trailing bytes/],
    ["age 0", [0x03, 1, 0, 0, 0, 0], /age 0, but the store holds 2 chunks/],
    ["age beyond held", [0x03, 1, 3, 0, 0, 0], /age 3/],
    ["age huge", [0x03, 1, 255, 255, 255, 255], /age 4294967295/],
  ];
  for (const [what, bytes, re] of cases) {
    const dec = primedDecoder(4096);
    const page = new Uint8Array(PAGE_SIZE).fill(0xee);
    assert.throws(
      () => dec.decode(3, Uint8Array.from(bytes), page),
      (e: unknown) => e instanceof CodecError && re.test(e.message),
      what,
    );
    assert.ok(page.every((b) => b === 0xee), `${what}: page untouched`);
  }
});

Deno.test("dedup decoder fuzz: only CodecError, never a write outside the page", () => {
  const GUARD = 64;
  const valid = [
    [0x03, 1, 1, 0, 0, 0],
    [0x03, 2],
    [0x01, 1, 2, 2, 0, 2, 0, 0, 0, ...new Array(1024).fill(7)],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(1024, 4096),
      fc.oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ minLength: 1000, maxLength: 4200 }),
        fc.tuple(
          fc.constantFrom(...valid),
          fc.array(fc.tuple(fc.nat(1100), fc.nat(255)), { maxLength: 4 }),
          fc.nat(3),
        ).map(([v, flips, cut]) => {
          const b = Uint8Array.from(v);
          for (const [i, x] of flips) b[i % b.length] = x;
          return b.subarray(0, b.length - (cut === 0 ? 1 : 0));
        }),
      ),
      (chunkBytes, input) => {
        assertDecodesOrRejects(primedDecoder(chunkBytes), input, {
          pageSize: PAGE_SIZE,
          pfn: 2,
          before: GUARD,
          after: GUARD,
        });
      },
    ),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------- bounded memory

Deno.test("dedup: the store never exceeds storeBytes and is allocated lazily", () => {
  const options = { chunkBytes: 1024, storeBytes: 10 * 1024 };
  const enc = new DedupEncoder(ctx(options));
  const dec = new DedupDecoder(ctx(options));
  assert.equal(new DedupEncoder(ctx()).store.bytes, 0); // 256 MiB default is not paid up front
  for (let i = 0; i < 200; i++) {
    sendBoth(enc, dec, i % 8, pattern(PAGE_SIZE, 2 * (i % 37) + 1, i));
    assert.ok(
      enc.store.bytes <= options.storeBytes,
      `sender ${enc.store.bytes}`,
    );
    assert.ok(
      dec.store.bytes <= options.storeBytes,
      `receiver ${dec.store.bytes}`,
    );
  }
  assert.equal(enc.store.bytes, 10 * 1024);
  assert.ok(enc.store.copy(10) !== undefined);
  assert.equal(enc.store.copy(11), undefined);
});

Deno.test("dedup fingerprint: deterministic, sensitive to every word position", () => {
  const w = new Uint32Array(1024 + 8);
  for (let i = 0; i < w.length; i++) w[i] = Math.imul(i, 0x9e3779b1);
  const base = new Uint32Array(4), other = new Uint32Array(4);
  fingerprint128(w, 4, 1024, base);
  fingerprint128(w, 4, 1024, other);
  assert.deepEqual(other, base);
  const seen = new Set<string>([base.join()]);
  for (const i of [4, 5, 6, 7, 500, 1027]) {
    w[i] ^= 1;
    fingerprint128(w, 4, 1024, other);
    w[i] ^= 1;
    for (let l = 0; l < 4; l++) {
      assert.notEqual(other[l], base[l], `lane ${l}, word ${i}`);
    }
    seen.add(other.join());
  }
  assert.equal(seen.size, 7);
});
