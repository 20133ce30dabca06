import assert from "node:assert/strict";
import { memoryDuplex } from "../wire/duplex.ts";
import type { CodecSpec } from "../plan.ts";
import { receiveXenStream, sendXenStream } from "./tunnel.ts";
import { XenStreamError } from "./stream/errors.ts";
import { buildStream, wrapLikeXl } from "./stream/_test_util.ts";
import { RoundCounter } from "./rounds.ts";
import {
  BANNER,
  fakeReceiver,
  READY,
  tunnelInMemory,
} from "./_tunnel_testing.ts";
import { concatBytes } from "../bytes.ts";

const enc = new TextEncoder();

function tunnel(stream: Uint8Array, codecs: CodecSpec[], seed = 1) {
  return tunnelInMemory(stream, codecs, { seed, maxPages: 4096 });
}

const CHAINS: CodecSpec[][] = [
  [{ name: "zero" }, { name: "raw" }],
  [{ name: "zero" }, { name: "dedup" }, { name: "lz4" }],
  [{ name: "zero" }, { name: "delta" }, { name: "raw" }],
];

for (const codecs of CHAINS) {
  Deno.test(`tunnel round-trips xl's stream byte for byte: ${codecs.map((c) => c.name).join(",")}`, async () => {
    for (
      const [i, opts] of [{ seed: 1 }, {
        seed: 2,
        version: 2 as const,
        bigEndian: true,
      }].entries()
    ) {
      const { bytes: libxc, roundPfns } = buildStream({
        ...opts,
        pfns: 200,
        rounds: 4,
      });
      const wire = wrapLikeXl(libxc);
      const { s, r, out, back } = await tunnel(wire, codecs, i + 3);
      assert.deepEqual(out, wire);
      assert.deepEqual(back, concatBytes([BANNER, READY]));
      assert.ok(s.verified && r.verified);
      assert.ok(s.sawImage);
      assert.equal(s.pages, roundPfns.flat().length);
      assert.equal(r.pages, s.pages);
      assert.equal(s.rounds, 4);
      assert.ok(s.opaqueBytes > 0);
      if (codecs.some((c) => c.name === "zero")) {
        assert.ok((s.codecPages.zero ?? 0) > 0);
      }
      // 4 rounds: pages resent twice before are deltas (the receiver keeps
      // pages from delta's CODEC frame on)
      if (codecs.some((c) => c.name === "delta")) {
        assert.ok((s.codecPages.delta ?? 0) > 0, JSON.stringify(s.codecPages));
      }
    }
  });
}

Deno.test("a stream without a libxc image travels opaque", async () => {
  const bytes = enc.encode("not a migration stream at all ".repeat(100));
  const { s, out } = await tunnel(bytes, [{ name: "zero" }]);
  assert.deepEqual(out, bytes);
  assert.equal(s.sawImage, false);
  assert.equal(s.pages, 0);
});

Deno.test("a truncated libxc stream fails cleanly on both sides", async () => {
  const wire = wrapLikeXl(buildStream({ seed: 8, pfns: 50, rounds: 2 }).bytes);
  const cut = wire.subarray(0, Math.floor(wire.length * 0.6));
  const [a, b] = memoryDuplex();
  const xl = fakeReceiver();
  const received = receiveXenStream(b, xl.peer);
  const sent = sendXenStream(
    ReadableStream.from([cut]),
    new WritableStream(),
    a,
    { codecs: [{ name: "zero" }] },
  );
  await assert.rejects(
    sent,
    (e: unknown) => e instanceof XenStreamError && /Truncated/.test(e.message),
  );
  await assert.rejects(received, /Source aborted the tunnel: Truncated/);
});

Deno.test("a corrupted PAGE_DATA record fails cleanly", async () => {
  const libxc = buildStream({ seed: 9, pfns: 50, rounds: 1 }).bytes;
  const bad = libxc.slice();
  // Walk the records after the 40-byte header to the first PAGE_DATA.
  let off = 40;
  const v = new DataView(bad.buffer);
  while (v.getUint32(off, true) !== 1) {
    off += 8 + ((v.getUint32(off + 4, true) + 7) & ~7);
  }
  v.setUint32(off + 8, 5000, true);
  const [a, b] = memoryDuplex();
  const xl = fakeReceiver();
  const received = receiveXenStream(b, xl.peer);
  const sent = sendXenStream(
    ReadableStream.from([wrapLikeXl(bad)]),
    new WritableStream(),
    a,
    {},
  );
  await assert.rejects(
    sent,
    (e: unknown) =>
      e instanceof XenStreamError && /count "5000"/.test(e.message),
  );
  await assert.rejects(received, /Source aborted/);
});

Deno.test("rounds are counted by pfn repetition", () => {
  const r = new RoundCounter();
  assert.equal(r.record([0, 1, 2]), false);
  assert.equal(r.record([3, 4]), false);
  assert.equal(r.round, 0);
  assert.equal(r.record([1, 5]), true);
  assert.equal(r.round, 1);
  assert.equal(r.record([2]), false);
  assert.equal(r.record([2]), true);
  assert.equal(r.round, 2);
  assert.equal(r.record([100000]), false);
});
