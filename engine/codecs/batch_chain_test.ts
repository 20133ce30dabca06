import assert from "node:assert/strict";
import fc from "fast-check";
import { CodecError, WireError } from "../errors.ts";
import { type CodecSpec, PAGE_SIZE } from "../plan.ts";
import { PageBatchBuilder } from "../pipeline/page_batch.ts";
import { parseBatchPayload } from "../wire/batch.ts";
import {
  ChannelReceiver,
  goldenPage,
  pageBatch,
  randomPage,
  textPage,
} from "./_codec_testing.ts";
import { BatchDecoderSet, BatchEncoderChain } from "./batch_chain.ts";
import type { Codec } from "./codec.ts";
import { codecByName, codecNames } from "./registry.ts";

const alloc = (n: number): Uint8Array => new Uint8Array(n);
const ids = (names: string[]): number[] => names.map((n) => codecByName(n).id);

/**
 * A guest of `pageCount` pages whose memory changes round by round in ways
 * every codec has a use for: zero pages, colour fills (rle), text (lz4,
 * zstd), copies of other pages (dedup), one-byte edits of the version sent
 * last (delta), random bytes (raw).
 */
class Guest {
  readonly memory: Uint8Array;
  constructor(readonly pageCount: number) {
    this.memory = new Uint8Array(pageCount * PAGE_SIZE);
  }

  page(pfn: number): Uint8Array {
    return this.memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }

  /** Writes round `round`'s content; returns the dirty pfns, ascending. */
  write(round: number): number[] {
    const dirty: number[] = [];
    for (let pfn = 0; pfn < this.pageCount; pfn++) {
      const kind = (pfn * 7) % 8;
      if (round > 0 && (pfn + round) % 3 === 0) continue; // clean this round
      const p = this.page(pfn);
      if (kind === 0) p.fill(0);
      else if (kind === 1) p.fill((pfn + round) & 0xff);
      else if (kind === 2) p.set(textPage(pfn + 1000 * round));
      else if (kind === 3) p.set(goldenPage());
      else if (kind === 4 || kind === 5) {
        if (round === 0) p.set(randomPage(pfn));
        else p[(pfn * 31 + round * 97) % PAGE_SIZE] ^= 0x40; // one byte: delta
      } else if (kind === 6) p.set(textPage(7)); // the same page everywhere: dedup
      else p.set(randomPage(pfn * 1000 + round));
      dirty.push(pfn);
    }
    return dirty;
  }
}

/** Sends `pfns` of `guest` in batches of `batchPages` non-zero pages; returns pages per codec id. */
function sendRound(
  guest: Guest,
  pfns: number[],
  chain: BatchEncoderChain,
  rx: ChannelReceiver,
  batchPages: number,
): Map<number, number> {
  const builder = new PageBatchBuilder({
    pageSize: PAGE_SIZE,
    nonZeroPages: batchPages,
    maxPages: 4 * batchPages,
  });
  const total = new Map<number, number>();
  const flush = () => {
    if (builder.count === 0) return;
    rx.announce(chain.takeNewCodecs());
    const { payload, claims } = chain.encode(builder, alloc);
    const got = rx.receive(payload);
    assert.deepEqual(got.claims, claims);
    for (const [id, n] of claims) total.set(id, (total.get(id) ?? 0) + n);
    builder.reset();
  };
  for (const pfn of pfns) {
    builder.addFrom(guest.memory, pfn);
    if (builder.full) flush();
  }
  flush();
  return total;
}

const CHAINS: string[][] = [
  ["raw"],
  ["zero"],
  ["rle"],
  ["zero", "rle"],
  ["zero", "delta"],
  ["delta"],
  ["zero", "dedup"],
  ["dedup"],
  ["lz4"],
  ["zstd"],
  ["zero", "lz4"],
  ["zero", "zstd"],
  ["zero", "rle", "lz4"],
  ["zero", "delta", "zstd"],
  ["zero", "dedup", "lz4"],
  ["zero", "rle", "delta", "dedup", "zstd"],
];

for (const names of CHAINS) {
  Deno.test(`BatchEncoderChain/BatchDecoderSet: [${names}] round trips over rounds of batches, every codec claiming`, () => {
    const guest = new Guest(96);
    const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 96 });
    chain.select(names.map((name) => ({ name })));
    const rx = new ChannelReceiver(96);
    const claimed = new Map<number, number>();
    for (let round = 0; round < 4; round++) {
      const dirty = guest.write(round);
      const got = sendRound(guest, dirty, chain, rx, 7);
      for (const [id, n] of got) claimed.set(id, (claimed.get(id) ?? 0) + n);
      assert.deepEqual(rx.memory, guest.memory, `round ${round}`);
    }
    // Every codec named took pages (lz4 and zstd take whole batches, so
    // nothing may be left for raw after them).
    for (const id of ids(names)) {
      assert.ok((claimed.get(id) ?? 0) > 0, `codec ${id} claimed nothing`);
    }
    const compressorLast = ["lz4", "zstd"].includes(names.at(-1)!);
    if (!names.includes("raw") && !compressorLast) {
      assert.ok((claimed.get(0) ?? 0) > 0, "raw claimed nothing");
    }
  });
}

Deno.test("BatchEncoderChain property: any chain, any rounds, any batch size keeps the receiver equal to the source", () => {
  const names = codecNames().filter((n) => n !== "raw");
  fc.assert(
    fc.property(
      fc.shuffledSubarray(names, { minLength: 0 }),
      fc.array(fc.shuffledSubarray(names), { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 4 }),
      (first, later, batchPages, rounds) => {
        const guest = new Guest(40);
        const chain = new BatchEncoderChain({
          pageSize: PAGE_SIZE,
          pageCount: 40,
        });
        const rx = new ChannelReceiver(40);
        for (let round = 0; round < rounds; round++) {
          // the policy may change the chain between rounds
          const pick = round === 0 ? first : later[round % later.length];
          chain.select(pick.map((name) => ({ name })));
          sendRound(guest, guest.write(round), chain, rx, batchPages);
          assert.deepEqual(rx.memory, guest.memory, `round ${round}`);
        }
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("BatchEncoderChain: the first claimant wins, raw is appended once, and sections follow the chain", () => {
  const batch = pageBatch([
    new Uint8Array(PAGE_SIZE),
    new Uint8Array(PAGE_SIZE).fill(3),
  ]);
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "rle" }, { name: "zero" }]);
  assert.deepEqual(chain.active, ["rle", "zero", "raw"]);
  // rle comes first and claims the zero page too: zero gets nothing.
  let r = chain.encode(batch, alloc);
  assert.deepEqual([...r.claims], [[2, 2]]);
  assert.deepEqual([...r.codecOf.subarray(0, 2)], [2, 2]);
  chain.select([{ name: "zero" }, { name: "rle" }, { name: "raw" }]);
  assert.deepEqual(chain.active, ["zero", "rle", "raw"]);
  r = chain.encode(batch, alloc);
  assert.deepEqual([...r.claims], [[1, 1], [2, 1]]);
  const parsed = parseBatchPayload(r.payload, {
    pageCount: 8,
    knows: () => true,
  });
  assert.deepEqual(parsed.sections.map((s) => s.codecId), [1, 2]);
  // An empty chain is raw alone.
  chain.select([]);
  assert.deepEqual(chain.active, ["raw"]);
  r = chain.encode(batch, alloc);
  assert.deepEqual([...r.claims], [[0, 2]]);
  assert.deepEqual(chain.activeCodecs.map((c) => c.id), [0]);
});

Deno.test("BatchEncoderChain: a codec is created once, announced once with its parsed options, and keeps them", () => {
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "zero" }, { name: "zstd", options: { level: 3 } }]);
  const fresh = chain.takeNewCodecs();
  assert.deepEqual(
    fresh.map((f) => [f.codec.name, f.options]),
    [["zero", {}], ["zstd", { level: 3 }], ["raw", {}]],
  );
  assert.deepEqual(chain.takeNewCodecs(), []);
  // The same options, however spelled, are the same codec state.
  chain.select([{ name: "zstd", options: { level: 3 } }, { name: "delta" }]);
  assert.deepEqual(
    chain.takeNewCodecs().map((f) => [f.codec.name, f.options]),
    [["delta", { cacheBytes: 64 << 20 }]],
  );
  chain.select([{ name: "delta", options: { cacheBytes: 64 << 20 } }]);
  assert.deepEqual(chain.takeNewCodecs(), []);
  assert.deepEqual(chain.optionsOf("zstd"), { level: 3 });
  assert.equal(chain.optionsOf("lz4"), undefined);
  assert.deepEqual(chain.codecs.map((c) => c.name), [
    "zero",
    "zstd",
    "raw",
    "delta",
  ]);
});

Deno.test("BatchEncoderChain: options cannot change during a migration; bad options and unknown codecs fail at select", () => {
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "zstd", options: { level: 3 } }]);
  const refuse = (specs: CodecSpec[], match: RegExp) =>
    assert.throws(
      () => chain.select(specs),
      (e: unknown) => e instanceof CodecError && match.test(e.message),
    );
  refuse(
    [{ name: "zstd", options: { level: 5 } }],
    /Cannot change the options of codec "zstd" during a migration: first \{"level":3\}, now \{"level":5\}/,
  );
  refuse([{ name: "zstd" }], /first \{"level":3\}, now \{"level":1\}/);
  refuse([{ name: "lz4", options: { acceleration: 0 } }], /acceleration/);
  refuse(
    [{ name: "lz4", options: { speed: 2 } }],
    /Unknown lz4 option "speed"/,
  );
  refuse([{ name: "brotli" }], /Unknown codec "brotli"/);
  // A refused select leaves the chain as it was.
  assert.deepEqual(chain.active, ["zstd", "raw"]);
});

Deno.test("BatchEncoderChain: delta and dedup state stays exact across batches (sent once per batch, after it)", () => {
  const pageCount = 16;
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  chain.select([
    { name: "zero" },
    { name: "delta", options: { cacheBytes: 4 * PAGE_SIZE } },
    { name: "dedup", options: { storeBytes: 3 * PAGE_SIZE } },
  ]);
  const rx = new ChannelReceiver(pageCount);
  const source = new Uint8Array(pageCount * PAGE_SIZE);
  const send = (writes: [number, Uint8Array][]): Map<number, number> => {
    const pfns = writes.map(([pfn]) => pfn);
    for (const [pfn, page] of writes) source.set(page, pfn * PAGE_SIZE);
    rx.announce(chain.takeNewCodecs());
    const batch = pageBatch(
      pfns.map((p) => source.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE)),
      pfns,
    );
    const { payload, claims } = chain.encode(batch, alloc);
    rx.receive(payload);
    assert.deepEqual(rx.memory, source);
    return new Map(claims);
  };
  const a = textPage(1);
  const b = textPage(2);
  const a2 = a.slice();
  a2[100] ^= 1;
  // batch 1: a and b are new to everyone: raw
  assert.deepEqual([...send([[0, a], [1, b]])], [[0, 2]]);
  // batch 2: b again at another pfn: dedup refers to batch 1's b
  assert.deepEqual([...send([[5, b]])], [[4, 1]]);
  // batch 3: pfn 0 sent a second time: delta caches it now (dedup claims it)
  assert.deepEqual([...send([[0, a]])], [[4, 1]]);
  // batch 4: pfn 0 edited: delta against batch 3's version
  assert.deepEqual([...send([[0, a2]])], [[3, 1]]);
  // batch 5: four new pages push a and b out of dedup's 3-page store
  send([1, 2, 3, 4].map((p) => [p + 8, randomPage(p)]));
  assert.deepEqual([...send([[6, b]])], [[0, 1]]);
});

Deno.test("BatchEncoderChain.encodeWith frames pages encoded one by one exactly as encode frames them (zero → rle → raw)", () => {
  const pageCount = 64;
  const pages = Array.from({ length: pageCount }, (_, pfn) => {
    const p = new Uint8Array(PAGE_SIZE);
    if (pfn % 4 === 1) p.fill(pfn);
    if (pfn % 4 === 2) p.set(randomPage(pfn));
    if (pfn % 4 === 3) p.set(goldenPage());
    return p;
  });
  const specs = [{ name: "zero" }, { name: "rle" }];
  const byBatch = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  const byPage = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount });
  byBatch.select(specs);
  byPage.select(specs);
  const codecs = byPage.activeCodecs;
  const encoders = codecs.map((c) =>
    c.createEncoder!({ pageSize: PAGE_SIZE, pageCount, options: {} })
  );
  for (const pfns of [[0, 1, 2, 3, 4, 5, 6, 7, 9, 12], [1], [2], [0], [7, 8]]) {
    const batch = pageBatch(pfns.map((p) => pages[p]), pfns);
    // the GPU's part, done here by the per-page encoders
    const codecOf = new Uint8Array(batch.count);
    const bytes: Uint8Array[] = [];
    batch.pfns.forEach((pfn, i) => {
      const page = batch.pages.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
      const out = new Uint8Array(PAGE_SIZE);
      const k = encoders.findIndex((e) => e.encode(pfn, page, out) >= 0);
      codecOf[i] = codecs[k].id;
      bytes.push(out.slice(0, encoders[k].encode(pfn, page, out)));
    });
    const want = byBatch.encode(batch, alloc);
    const got = byPage.encodeWith(batch, codecOf, (i) => bytes[i], alloc);
    assert.deepEqual(got.payload, want.payload, `batch ${pfns}`);
    assert.deepEqual([...got.claims], [...want.claims]);
    assert.deepEqual(
      got.codecOf.subarray(0, batch.count),
      want.codecOf.subarray(0, batch.count),
    );
  }
});

Deno.test("BatchEncoderChain.encodeWith refuses a page of a codec outside the active chain, and a codec with no per-page form", () => {
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "zero" }, { name: "rle" }]);
  const batch = pageBatch([
    new Uint8Array(PAGE_SIZE),
    new Uint8Array(PAGE_SIZE).fill(1),
  ]);
  const bytes = [new Uint8Array(0), new Uint8Array(8)];
  assert.throws(
    () =>
      chain.encodeWith(batch, new Uint8Array([1, 3]), (i) => bytes[i], alloc),
    /Cannot frame page 1 of the batch: its codec id 3 is not in the active chain \(zero,rle,raw\)/,
  );
  chain.select([{ name: "zero" }, { name: "lz4" }]);
  assert.throws(
    () =>
      chain.encodeWith(batch, new Uint8Array([1, 5]), (i) => bytes[i], alloc),
    /Cannot frame pages encoded one by one as codec "lz4": it has no per-page form/,
  );
});

// ---------------------------------------------------------------- the receiver's set

function negotiated(...names: string[]): Map<number, Codec> {
  return new Map(names.map((n) => [codecByName(n).id, codecByName(n)]));
}

Deno.test("BatchDecoderSet.announce: a codec HELLO did not negotiate, one announced twice, or options it refuses are WireErrors", () => {
  const set = new BatchDecoderSet(negotiated("raw", "zero", "zstd"), {
    pageSize: PAGE_SIZE,
    pageCount: 8,
  });
  const refuse = (
    setup: { id: number; name: string; options: Record<string, unknown> },
    match: RegExp,
  ) =>
    assert.throws(() => set.announce(setup, 1234), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.match(e.message, match);
      assert.equal(e.offset, 1234);
      return true;
    });
  refuse(
    { id: 5, name: "lz4", options: {} },
    /CODEC announces codec "lz4" with id 5, which HELLO did not negotiate/,
  );
  refuse(
    { id: 6, name: "lz4", options: {} },
    /codec "lz4" with id 6, which HELLO did not negotiate/,
  );
  refuse(
    { id: 6, name: "zstd", options: { level: 99 } },
    /CODEC announces codec "zstd" with options it refuses: Invalid zstd option level "99"/,
  );
  refuse(
    { id: 6, name: "zstd", options: { backend: "node" } },
    /options it refuses: Unknown zstd option "backend"/,
  );
  assert.equal(set.knows(6), false);
  assert.equal(
    set.announce({ id: 6, name: "zstd", options: {} }, 0),
    codecByName("zstd"),
  );
  assert.equal(set.knows(6), true);
  refuse(
    { id: 6, name: "zstd", options: {} },
    /CODEC announces codec "zstd" a second time/,
  );
  assert.equal(set.nameOf(6), "zstd");
  assert.equal(set.nameOf(9), "id 9");
});

Deno.test("BatchDecoderSet.readsCurrent: only once a codec that decodes against current pages (delta) is announced", () => {
  const set = new BatchDecoderSet(negotiated("raw", "zero", "rle", "delta"), {
    pageSize: PAGE_SIZE,
    pageCount: 8,
    current: () => new Uint8Array(PAGE_SIZE),
  });
  set.announce({ id: 0, name: "raw", options: {} }, 0);
  set.announce({ id: 1, name: "zero", options: {} }, 0);
  set.announce({ id: 2, name: "rle", options: {} }, 0);
  assert.equal(set.readsCurrent, false);
  set.announce({ id: 3, name: "delta", options: {} }, 0);
  assert.equal(set.readsCurrent, true);
});

Deno.test("BatchDecoderSet.decode: zero pages get no slot; a bad section is a CodecError and memory is untouched", () => {
  const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
  chain.select([{ name: "zero" }, { name: "rle" }]);
  const rx = new ChannelReceiver(8);
  rx.announce(chain.takeNewCodecs());
  const batch = pageBatch(
    [
      new Uint8Array(PAGE_SIZE),
      new Uint8Array(PAGE_SIZE).fill(9),
      randomPage(1),
    ],
    [1, 2, 4],
  );
  const { payload } = chain.encode(batch, alloc);
  const parsed = parseBatchPayload(payload, {
    pageCount: 8,
    knows: (id) => rx.set.knows(id),
  });
  const decoded = rx.set.decode(payload, parsed);
  assert.deepEqual([...decoded.slotOf.subarray(0, 3)], [-1, 0, 1]);
  assert.deepEqual([...decoded.codecOf.subarray(0, 3)], [1, 2, 0]);
  assert.equal(decoded.slots, 2);
  assert.deepEqual(
    rx.set.scratch.subarray(0, 2 * PAGE_SIZE),
    batch.pages.subarray(PAGE_SIZE, 3 * PAGE_SIZE),
  );
  // rle's section: a page length of 9 instead of 8
  const rle = parsed.sections[1];
  const bad = payload.slice();
  bad[rle.offset] = 9;
  assert.throws(() => rx.receive(bad), CodecError);
  assert.ok(rx.memory.every((b) => b === 0), "memory untouched");
  rx.receive(payload);
  assert.deepEqual(
    rx.memory.subarray(2 * PAGE_SIZE, 3 * PAGE_SIZE),
    batch.pages.subarray(PAGE_SIZE, 2 * PAGE_SIZE),
  );
});

Deno.test("BatchDecoderSet.decode: a section over its codec's maximum, and a zero section with bytes, are CodecErrors", () => {
  const set = new BatchDecoderSet(negotiated("raw", "zero"), {
    pageSize: PAGE_SIZE,
    pageCount: 8,
  });
  set.announce({ id: 0, name: "raw", options: {} }, 0);
  set.announce({ id: 1, name: "zero", options: {} }, 0);
  const frame = (codecId: number, bytes: number): Uint8Array => {
    const chain = new BatchEncoderChain({ pageSize: PAGE_SIZE, pageCount: 8 });
    chain.select([]);
    const { payload } = chain.encode(pageBatch([randomPage(1)]), alloc);
    // rewrite the one section's codec and length, keep the runs and claims
    const head = payload.subarray(0, 16);
    const tail = payload.subarray(16 + 8 + PAGE_SIZE);
    const out = new Uint8Array(16 + 8 + bytes + tail.length);
    out.set(head);
    const v = new DataView(out.buffer);
    v.setUint32(16, codecId, true);
    v.setUint32(20, bytes, true);
    out.set(tail, 16 + 8 + bytes);
    return out;
  };
  const knows = (id: number) => set.knows(id);
  const raw = frame(0, PAGE_SIZE + 1);
  assert.throws(
    () => set.decode(raw, parseBatchPayload(raw, { pageCount: 8, knows })),
    /raw section of 4097 bytes: over its 4096-byte maximum for 1 pages/,
  );
  const zero = frame(1, 1);
  assert.throws(
    () => set.decode(zero, parseBatchPayload(zero, { pageCount: 8, knows })),
    (e: unknown) =>
      e instanceof CodecError &&
      /over its 0-byte maximum|expected no bytes/.test(e.message),
  );
});
