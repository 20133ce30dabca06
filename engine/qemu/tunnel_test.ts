import assert from "node:assert/strict";
import { MigrationError, WireError } from "../errors.ts";
import { memoryDuplex, type WireConn } from "../wire/duplex.ts";
import { decodeFrameHeader, encodeFrame, FrameType } from "../wire/frame.ts";
import { firmwareStream } from "./stream/_fixture.ts";
import { QemuStreamError } from "./stream/errors.ts";
import type { QemuEvent } from "./stream/parser.ts";
import { copyEvent, parseQemuStream, rebuildStream } from "./stream/writer.ts";
import {
  receiveQemuStream,
  sendQemuStream,
  type TunnelSendOptions,
} from "./tunnel.ts";
import type { StreamStats } from "../stream/send.ts";
import type { RoundStats } from "../plan.ts";
import { concatBytes } from "../bytes.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeError,
  encodeHello,
  PROTOCOL_VERSION,
} from "../wire/messages.ts";

const fixture = firmwareStream();

function source(bytes: Uint8Array, chunk = 65536): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

function collector(): {
  sink: WritableStream<Uint8Array>;
  bytes(): Uint8Array;
  state: { closed: boolean; aborted: boolean };
} {
  const chunks: Uint8Array[] = [];
  const state = { closed: false, aborted: false };
  return {
    state,
    sink: new WritableStream<Uint8Array>({
      write: (c) => void chunks.push(c.slice()),
      close: () => void (state.closed = true),
      abort: () => void (state.aborted = true),
    }),
    bytes() {
      return concatBytes(chunks);
    },
  };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A stream with several passes: the fixture's RAM part repeated with changed pages. */
async function tunnel(
  bytes: Uint8Array,
  a: WireConn,
  b: WireConn,
  codecs: { name: string }[],
): Promise<[StreamStats, StreamStats, Uint8Array]> {
  const out = collector();
  const [s, r] = await Promise.all([
    sendQemuStream(source(bytes), a, { codecs, batchPages: 64 }),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(out.state.closed);
  return [s, r, out.bytes()];
}

for (
  const codecs of [
    [{ name: "zero" }, { name: "raw" }],
    [{ name: "zero" }, { name: "dedup" }, { name: "lz4" }],
    [{ name: "delta" }],
  ]
) {
  Deno.test(`tunnel: memory duplex round trip is byte-identical with ${codecs.map((c) => c.name).join("/")}`, async () => {
    const [a, b] = memoryDuplex();
    const [s, r, out] = await tunnel(fixture, a, b, codecs);
    assert.ok(same(out, fixture));
    assert.ok(s.verified && r.verified);
    assert.equal(s.pages, 49);
    assert.equal(r.zeroPages, 16465);
    assert.equal(r.streamBytes, fixture.length);
  });
}

Deno.test("tunnel: loopback TCP round trip is byte-identical", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const server = await accepted;
  const [s, , out] = await tunnel(fixture, client, server, [{ name: "zero" }, {
    name: "lz4",
  }]);
  listener.close();
  assert.ok(same(out, fixture));
  assert.ok(s.verified);
});

Deno.test("tunnel: a truncated hakobu stream fails the receiver and never delivers the stream's last 4 KiB, only those", async () => {
  // Record what the sender puts on the wire.
  const [a, b] = memoryDuplex();
  const wire: Uint8Array[] = [];
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(c, ctl) {
      wire.push(c.slice());
      ctl.enqueue(c);
    },
  });
  b.readable.pipeThrough(tap);
  const mid = { readable: tap.readable, writable: b.writable };
  const out0 = collector();
  await Promise.all([
    sendQemuStream(source(fixture), a),
    receiveQemuStream(mid, out0.sink),
  ]);
  const all = concatBytes(wire);
  for (
    const cut of [
      20,
      1000,
      Math.floor(all.length / 2),
      all.length - 49, // STREAM_END missing, everything before it there
      all.length - 40, // inside STREAM_END's header
      all.length - 10, // inside its digest
    ]
  ) {
    const out = collector();
    const [, back] = memoryDuplex();
    const conn = {
      readable: source(all.subarray(0, cut), 4096),
      writable: back.writable,
    };
    await assert.rejects(receiveQemuStream(conn, out.sink), WireError);
    assert.ok(out.state.aborted && !out.state.closed);
    const got = out.bytes();
    // never the last 4 KiB; with only STREAM_END missing, everything else
    assert.ok(
      got.length <= fixture.length - 4096,
      `cut ${cut}: ${got.length} bytes delivered`,
    );
    assert.ok(same(got, fixture.subarray(0, got.length)));
  }
  // A STREAM_END with another XXH3-128 (a well-formed frame): everything is
  // rebuilt and compared, and all but the last 4 KiB was written.
  {
    const end = all.subarray(all.length - 48);
    const header = decodeFrameHeader(end, 0);
    assert.equal(header.type, FrameType.STREAM_END);
    const payload = end.slice(16);
    payload[31] ^= 1;
    const lying = concatBytes([
      all.subarray(0, all.length - 48),
      encodeFrame(FrameType.STREAM_END, header.round, payload, header.channel),
    ]);
    const out = collector();
    const [, back] = memoryDuplex();
    await assert.rejects(
      receiveQemuStream(
        { readable: source(lying, 4096), writable: back.writable },
        out.sink,
      ),
      /Rebuilt stream does not match the source: .* or a different XXH3-128/,
    );
    assert.ok(out.state.aborted && !out.state.closed);
    assert.ok(same(out.bytes(), fixture.subarray(0, fixture.length - 4096)));
  }
  // A flipped byte fails the frame checksum.
  const bad = all.slice();
  bad[Math.floor(all.length / 3)] ^= 1;
  const out = collector();
  const [, back] = memoryDuplex();
  await assert.rejects(
    receiveQemuStream(
      { readable: source(bad), writable: back.writable },
      out.sink,
    ),
    WireError,
  );
  assert.ok(out.state.aborted);
});

Deno.test("tunnel: a HELLO without the XXH3-128 stream digest (an older hakobu's) is refused with why, and nothing is written", async () => {
  const [a, b] = memoryDuplex();
  const out = collector();
  const receiving = receiveQemuStream(b, out.sink);
  receiving.catch(() => {});
  const writer = new FrameWriter(a.writable);
  const reader = new FrameReader(a.readable);
  await writer.write(
    FrameType.HELLO,
    0,
    encodeHello({
      protocol: PROTOCOL_VERSION,
      memoryBytes: 1 << 20,
      pageSize: 4096,
      codecs: [{ id: 0, name: "raw" }],
      vm: "old",
      policy: "qemu-tunnel",
      channels: 1,
      stream: "qemu",
    }),
  );
  const answer = await reader.next();
  assert.equal(answer?.type, FrameType.ERROR);
  const message = decodeError(answer!.payload).message;
  assert.match(
    message,
    /HELLO offers no "xxh3-128" stream digest: the source is an older hakobu whose stream tunnel checks with SHA-256/,
  );
  await assert.rejects(receiving, /older hakobu/);
  assert.equal(out.bytes().length, 0);
  await writer.close().catch(() => {});
  await reader.cancel().catch(() => {});
});

Deno.test("tunnel: a truncated QEMU stream aborts both sides", async () => {
  const [a, b] = memoryDuplex();
  const out = collector();
  const [s, r] = await Promise.allSettled([
    sendQemuStream(source(fixture.subarray(0, 100_000)), a),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(s.status === "rejected" && s.reason instanceof QemuStreamError);
  assert.ok(r.status === "rejected" && r.reason instanceof MigrationError);
  assert.match(String(r.reason.message), /Source aborted/);
  assert.ok(out.state.aborted);
});

/** A sender connection that counts the writes (one per frame) it carries. */
function countingConn(
  conn: WireConn,
): { conn: WireConn; writes: () => number } {
  let writes = 0;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(c, ctl) {
      writes++;
      ctl.enqueue(c);
    },
  });
  tap.readable.pipeTo(conn.writable).catch(() => {});
  return {
    conn: { readable: conn.readable, writable: tap.writable },
    writes: () => writes,
  };
}

Deno.test("tunnel: a busy stream in small chunks travels in a few large frames", async () => {
  const [a, b] = memoryDuplex();
  const counted = countingConn(a);
  const out = collector();
  const chunk = 1024;
  const [s] = await Promise.all([
    sendQemuStream(source(fixture, chunk), counted.conn, {
      codecs: [{ name: "zero" }],
    }),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(s.verified && same(out.bytes(), fixture));
  const chunks = Math.ceil(fixture.length / chunk);
  // one frame per input chunk before coalescing; now ~1 MiB of records a frame
  assert.ok(
    counted.writes() < chunks / 20,
    `${counted.writes()} frames for ${chunks} input chunks`,
  );
});

Deno.test("tunnel: records of a stalled stream reach the receiver within maxFlushDelayMs", async () => {
  const [a, b] = memoryDuplex();
  const out = collector();
  const half = Math.floor(fixture.length / 2);
  let stalledFor = -1;
  // First half at once; then the source waits until the destination has seen
  // bytes (the receiver holds back its latest chunk, so that needs a second
  // flush: one from the stall), for at most 3 s.
  let at = 0;
  const stalling = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (at >= fixture.length) return c.close();
      if (at === half) {
        const t0 = performance.now();
        while (out.bytes().length === 0 && performance.now() - t0 < 3000) {
          await new Promise((r) => setTimeout(r, 5));
        }
        stalledFor = performance.now() - t0;
      }
      const end = at < half ? Math.min(half, at + 4096) : fixture.length;
      c.enqueue(fixture.slice(at, end));
      at = end;
    },
  });
  const [s] = await Promise.all([
    sendQemuStream(stalling, a, {
      codecs: [{ name: "zero" }],
      maxFlushDelayMs: 5,
    }),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(s.verified && same(out.bytes(), fixture));
  assert.ok(stalledFor >= 0 && stalledFor < 1000, `stalled ${stalledFor} ms`);
});

/**
 * The fixture with `extra` more passes over its RAM: after the first
 * SECTION_PART, copies of it whose PAGE records change a few bytes each
 * pass (ZERO records dropped unless they name their block), as a guest that
 * keeps rewriting its pages would send.
 */
function multiPassStream(extra: number): Uint8Array {
  const events = [...parseQemuStream(fixture)].map(copyEvent);
  const partStart = events.findIndex((e, i) =>
    e.kind !== "page" && events[i + 1]?.kind === "page"
  );
  let partEnd = partStart + 1;
  while (events[partEnd].kind === "page") partEnd++;
  // the part's trailer: EOS and the section footer
  const trailer = events.slice(partEnd, partEnd + 2);
  const pages = events.slice(partStart + 1, partEnd).filter((e) =>
    e.kind === "page"
  );
  const passes: QemuEvent[] = [];
  for (let pass = 1; pass <= extra; pass++) {
    passes.push(events[partStart]);
    for (const p of pages) {
      if (p.kind !== "page") continue;
      // a record that names its block (no CONTINUE) stays, zero or not
      if (p.zero) {
        if (p.headerLength > 8) passes.push(p);
        continue;
      }
      const bytes = p.bytes.slice();
      for (let b = p.headerLength + pass * 7; b < bytes.length; b += 997) {
        bytes[b] ^= pass;
      }
      passes.push({
        ...p,
        bytes,
        data: bytes.subarray(p.headerLength),
      });
    }
    passes.push(...trailer);
  }
  return rebuildStream([
    ...events.slice(0, partEnd + 2),
    ...passes,
    ...events.slice(partEnd + 2),
  ]);
}

Deno.test("tunnel: a multi-pass stream round-trips with delta claiming the resent pages", async () => {
  const stream = multiPassStream(4);
  assert.ok(stream.length > fixture.length);
  const [a, b] = memoryDuplex();
  const [s, r, out] = await tunnel(stream, a, b, [
    { name: "zero" },
    { name: "delta" },
    { name: "lz4" },
  ]);
  assert.ok(same(out, stream));
  assert.ok(s.verified && r.verified);
  assert.equal(s.rounds, 5);
  assert.equal(s.fallbackReason, null);
  // pages are cached from their first resend: deltas from the third pass on
  assert.ok((s.codecPages.delta ?? 0) >= 2 * 49, JSON.stringify(s.codecPages));
  assert.deepEqual(r.codecPages, s.codecPages);
});

Deno.test("tunnel: delta announced in a later round decodes against pages kept from then on", async () => {
  const stream = multiPassStream(5);
  const [a, b] = memoryDuplex();
  const out = collector();
  // rounds 0-1 without delta: the receiver keeps no shadow until delta's CODEC
  const plan = {
    name: "late-delta",
    codecsFor: (st: { round: number }) =>
      st.round < 2
        ? [{ name: "zero" }, { name: "lz4" }]
        : [{ name: "zero" }, { name: "delta" }, { name: "lz4" }],
  };
  const [s, r] = await Promise.all([
    sendQemuStream(source(stream), a, {
      plan: plan as NonNullable<TunnelSendOptions["plan"]>,
      batchPages: 64,
    }),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(same(out.bytes(), stream));
  assert.ok(s.verified && r.verified);
  assert.equal(s.rounds, 6);
  assert.equal(s.fallbackReason, null);
  assert.ok((s.codecPages.delta ?? 0) > 0, JSON.stringify(s.codecPages));
  assert.deepEqual(r.codecPages, s.codecPages);
});

Deno.test("tunnel: the codec chooser sees each round's statistics as Steering builds them, with the wire's own rate", async () => {
  const stream = multiPassStream(4);
  const [a, b] = memoryDuplex();
  const out = collector();
  const seen: RoundStats[] = [];
  const plan = {
    name: "watching",
    codecsFor: (st: RoundStats) => {
      seen.push(st);
      return [{ name: "zero" }, { name: "lz4" }];
    },
  };
  const [s] = await Promise.all([
    sendQemuStream(source(stream), a, {
      plan: plan as NonNullable<TunnelSendOptions["plan"]>,
      batchPages: 64,
    }),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(same(out.bytes(), stream));
  assert.deepEqual(seen.map((st) => st.round), [...Array(s.rounds).keys()]);
  for (const st of seen) {
    // the hypervisor decides: nothing is left to count, no decision history
    assert.deepEqual(
      [st.dirtyPages, st.remainingBytes, st.dirtyRate, st.pageSize],
      [0, 0, 0, 4096],
    );
    assert.deepEqual(st.history, []);
    assert.ok(st.memoryBytes > 0);
  }
  // Between two rounds' choices, sendRate and wireRate cover the same
  // span: their ratio is the round's wire bytes over its page bytes.
  let compared = 0;
  for (let k = 2; k < seen.length; k++) {
    const raw = seen[k].rawBytesSent - seen[k - 1].rawBytesSent;
    const wire = seen[k].bytesSent - seen[k - 1].bytesSent;
    if (raw === 0) continue;
    assert.ok(seen[k].sendRate > 0 && seen[k].wireRate > 0);
    const expected = seen[k].sendRate * wire / raw;
    assert.ok(
      Math.abs(seen[k].wireRate - expected) <= 1e-6 * expected,
      `round ${k}: wireRate ${seen[k].wireRate}, expected ${expected}`,
    );
    compared++;
  }
  assert.ok(compared >= 2, `compared ${compared} rounds`);
});

Deno.test("tunnel: a source that fails mid-stream fails the sender with its error and aborts the receiver", async () => {
  const [a, b] = memoryDuplex();
  const out = collector();
  let at = 0;
  const failing = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= fixture.length / 2) {
        return c.error(new Error("QEMU's pipe broke"));
      }
      c.enqueue(fixture.slice(at, at + 4096));
      at += 4096;
    },
  });
  const [s, r] = await Promise.allSettled([
    sendQemuStream(failing, a),
    receiveQemuStream(b, out.sink),
  ]);
  assert.ok(s.status === "rejected");
  assert.match(String(s.reason), /QEMU's pipe broke/);
  assert.ok(r.status === "rejected");
  assert.ok(out.state.aborted && !out.state.closed);
});

Deno.test("tunnel: a stream whose parser falls back early carries 20 MiB of opaque tail, in chunks of any size, byte for byte", async () => {
  const m = fixture.slice();
  // the RDMA hook flag on the first RAM record: the parser falls back there
  const part = m.findIndex((b, i) =>
    i > 100 && b === 2 && m[i + 4] === 2 && m[i + 1] === 0
  );
  m[part + 5 + 7] |= 0x80;
  const extra = new Uint8Array(20 << 20);
  for (let i = 0, x = 1; i < extra.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    extra[i] = x >>> 24;
  }
  const stream = concatBytes([m, extra]);
  for (const chunk of [65536, 9 << 20]) {
    const [a, b] = memoryDuplex();
    const out = collector();
    const [s, r] = await Promise.all([
      sendQemuStream(source(stream, chunk), a, { codecs: [{ name: "zero" }] }),
      receiveQemuStream(b, out.sink),
    ]);
    assert.match(s.fallbackReason ?? "", /unsupported flags/);
    assert.ok(s.verified && r.verified);
    assert.ok(out.state.closed);
    assert.ok(same(out.bytes(), stream), `chunks of ${chunk}: identical`);
  }
});
