import assert from "node:assert/strict";
import { WireError } from "../errors.ts";
import {
  encodeFrame,
  type Frame,
  FrameType,
  HEADER_BYTES,
  MAX_PAYLOAD,
} from "./frame.ts";
import { FrameReader } from "./frame_reader.ts";
import { FrameWriter } from "./frame_writer.ts";
import { memoryDuplex } from "./duplex.ts";
import { byteStream, chunkedStream, prng } from "./_test_util.ts";
import { concatBytes } from "../bytes.ts";

const TYPES = Object.values(FrameType);

/** Frames of assorted types, channels, rounds and sizes (empty, small, over 64 KiB). */
function sampleFrames(
  seed: number,
): { type: FrameType; channel: number; round: number; payload: Uint8Array }[] {
  const rand = prng(seed);
  const sizes = [0, 1, 15, 16, 17, 4096, 70_000, 3, 0, 200_000];
  return sizes.map((n, i) => ({
    type: TYPES[i % TYPES.length],
    channel: [0, 1, 63, 255][i % 4],
    round: Math.floor(rand() * 2 ** 32),
    payload: new Uint8Array(n).map(() => Math.floor(rand() * 256)),
  }));
}

async function readAll(reader: FrameReader): Promise<Frame[]> {
  const out: Frame[] = [];
  for (let f = await reader.next(); f; f = await reader.next()) {
    out.push({ ...f, payload: f.payload.slice() });
  }
  return out;
}

async function expectFrames(
  stream: ReadableStream<Uint8Array>,
  seed: number,
): Promise<void> {
  const frames = sampleFrames(seed);
  const reader = new FrameReader(stream);
  const got = await readAll(reader);
  assert.equal(got.length, frames.length);
  for (let i = 0; i < frames.length; i++) {
    assert.equal(got[i].type, frames[i].type);
    assert.equal(got[i].channel, frames[i].channel);
    assert.equal(got[i].round, frames[i].round);
    assert.deepEqual(got[i].payload, frames[i].payload);
  }
  assert.equal(
    reader.bytesRead,
    frames.reduce((n, f) => n + HEADER_BYTES + f.payload.length, 0),
  );
}

function sampleBytes(seed: number): Uint8Array {
  return concatBytes(
    sampleFrames(seed).map((f) =>
      encodeFrame(f.type, f.round, f.payload, f.channel)
    ),
  );
}

Deno.test("FrameReader: reads frames from 1-byte chunks", async () => {
  await expectFrames(chunkedStream(sampleBytes(1), () => 1), 1);
});

Deno.test("FrameReader: reads frames from random chunk sizes", async () => {
  for (const seed of [2, 3, 4, 5]) {
    const rand = prng(seed * 77);
    const max = [7, 100, 5000, 100_000][seed - 2];
    await expectFrames(
      chunkedStream(sampleBytes(seed), () => 1 + Math.floor(rand() * max)),
      seed,
    );
  }
});

Deno.test("FrameReader: a byte stream is read into the reader's own buffers (BYOB), from any read sizes, payloads past 64 KiB included", async () => {
  for (const seed of [11, 12, 13, 14]) {
    const rand = prng(seed * 31);
    const max = [1, 100, 70_000, 1 << 20][seed - 11];
    await expectFrames(
      byteStream(sampleBytes(seed), () => 1 + Math.floor(rand() * max)),
      seed,
    );
  }
});

Deno.test("FrameReader: a byte stream that ends inside a large payload (read straight into its buffer) is Truncated at the right offset", async () => {
  const big = encodeFrame(FrameType.BATCH, 1, new Uint8Array(300_000).fill(7));
  for (const cut of [HEADER_BYTES + 10, 100_000, big.length - 1]) {
    const reader = new FrameReader(
      byteStream(
        concatBytes([big, big]).subarray(0, big.length + cut),
        () => 50_000,
      ),
      { ownPayload: () => true },
    );
    const first = await reader.next();
    assert.ok(first && first.payload.length === 300_000);
    await assert.rejects(() => reader.next(), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.equal(
        e.message,
        `Truncated stream: ended after ${
          cut - HEADER_BYTES
        } of 300000 payload bytes of the frame at offset ${big.length}`,
      );
      assert.equal(e.offset, big.length + cut);
      return true;
    });
    // the first payload is intact after the failed read
    assert.ok(first.payload.every((b) => b === 7));
  }
});

Deno.test("FrameReader: reads frames from one big chunk", async () => {
  const bytes = sampleBytes(6);
  await expectFrames(chunkedStream(bytes, () => bytes.length), 6);
});

Deno.test("FrameReader: an empty stream is a clean end", async () => {
  assert.equal(
    await new FrameReader(chunkedStream(new Uint8Array(0), () => 1)).next(),
    null,
  );
});

Deno.test("FrameReader: end of stream mid-header or mid-payload is Truncated", async () => {
  const one = encodeFrame(FrameType.END, 1, new Uint8Array(32).fill(9));
  const two = concatBytes([one, one]);
  for (const cut of [1, 15, 16, 17, 47]) {
    const reader = new FrameReader(
      chunkedStream(two.subarray(0, one.length + cut), () => 5),
    );
    assert.ok(await reader.next());
    await assert.rejects(() => reader.next(), (e: unknown) => {
      assert.ok(e instanceof WireError);
      assert.match(
        e.message,
        /^Truncated stream: ended after \d+ of \d+ (header|payload) bytes of the frame at offset 48/,
      );
      assert.equal(e.offset, one.length + cut);
      return true;
    });
  }
});

Deno.test("FrameReader: a 4 GiB length is refused from the header alone, before any payload is read", async () => {
  const h = encodeFrame(FrameType.BATCH, 0, new Uint8Array(0));
  new DataView(h.buffer).setUint32(8, 0xffff_ffff, true);
  // The stream errors if pulled past the header: the reader must not try.
  const reader = new FrameReader(
    chunkedStream(h, () => 16, { failAfter: true }),
  );
  await assert.rejects(
    () => reader.next(),
    /payload length "4294967295" at offset 8 is over the limit/,
  );
  new DataView(h.buffer).setUint32(8, MAX_PAYLOAD + 1, true);
  const reader2 = new FrameReader(
    chunkedStream(h, () => 3, { failAfter: true }),
  );
  await assert.rejects(() => reader2.next(), WireError);
});

Deno.test("FrameReader: bad magic, unknown type and checksum in a later frame report its stream offset", async () => {
  const good = encodeFrame(FrameType.READY, 0, new Uint8Array(10));
  const edits: [number, number, RegExp][] = [
    [0, 0x00, /Bad frame magic/],
    [2, 99, /Unknown frame type "99" at offset 28/],
    // the channel byte is the session's to check, and
    // is covered by the CRC
    [3, 4, /Bad checksum in READY frame at offset 26/],
    [HEADER_BYTES + 3, 0xee, /Bad checksum in READY frame at offset 26/],
  ];
  for (const [at, value, message] of edits) {
    const bad = good.slice();
    bad[at] = value;
    const reader = new FrameReader(
      chunkedStream(concatBytes([good, bad]), () => 4),
    );
    assert.ok(await reader.next());
    await assert.rejects(() => reader.next(), message);
  }
});

Deno.test("FrameWriter: writes to a stream and to a conn that takes a few bytes per write", async () => {
  const frames = sampleFrames(8);
  const expected = concatBytes(
    frames.map((f) => encodeFrame(f.type, f.round, f.payload)),
  );

  const [a, b] = memoryDuplex();
  const w = new FrameWriter(a.writable);
  const reading = new FrameReader(b.readable);
  const done = (async () => {
    for (const f of frames) await w.write(f.type, f.round, f.payload);
    await w.close();
  })();
  const got = await readAll(reading);
  await done;
  assert.deepEqual(got.map((f) => f.payload), frames.map((f) => f.payload));
  assert.equal(w.bytesWritten, expected.length);

  const sink: number[] = [];
  const conn = {
    write(p: Uint8Array): Promise<number> {
      const n = Math.min(p.length, 7);
      sink.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
  const w2 = new FrameWriter(conn);
  for (const f of frames) await w2.write(f.type, f.round, f.payload);
  await w2.writeRaw(encodeFrame(FrameType.ABORT, 0, new Uint8Array(2)));
  assert.deepEqual(
    new Uint8Array(sink),
    concatBytes([expected, encodeFrame(FrameType.ABORT, 0, new Uint8Array(2))]),
  );
  assert.equal(w2.bytesWritten, sink.length);
});

Deno.test("FrameReader/FrameWriter: loopback TCP carries 1 MiB frames intact", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const payload = new Uint8Array(1 << 20).map((_, i) => (i * 13) & 255);
  const n = 16;
  const sending = (async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const w = new FrameWriter(conn.writable);
    for (let i = 0; i < n; i++) {
      payload[0] = i;
      await w.write(FrameType.BATCH, i, payload);
    }
    await w.close();
  })();
  const conn = await listener.accept();
  const reader = new FrameReader(conn.readable);
  let count = 0;
  for (let f = await reader.next(); f; f = await reader.next()) {
    assert.equal(f.round, count);
    assert.equal(f.payload[0], count);
    assert.equal(f.payload[12345], (12345 * 13) & 255);
    count++;
  }
  await sending;
  listener.close();
  assert.equal(count, n);
});

for (
  const [kind, size] of [["chunks", 5000], ["byte stream", 200_000]] as const
) {
  Deno.test(`FrameReader: ownPayload frames get a buffer of their own; the others may share the reused one (${kind}, ${size}-byte payloads)`, async () => {
    const frames = [0, 1, 2, 3].map((i) =>
      encodeFrame(
        i % 2 === 0 ? FrameType.BATCH : FrameType.ROUND_END,
        i,
        new Uint8Array(size).fill(i + 1),
        i,
      )
    );
    const bytes = concatBytes(frames);
    const reader = new FrameReader(
      kind === "chunks"
        ? chunkedStream(bytes, () => 1000)
        : byteStream(bytes, () => 30_000),
      { ownPayload: (type) => type === FrameType.BATCH },
    );
    const got: Frame[] = [];
    for (let f = await reader.next(); f; f = await reader.next()) got.push(f);
    assert.deepEqual(got.map((f) => f.channel), [0, 1, 2, 3]);
    // BATCH payloads kept their bytes through later reads...
    assert.ok(got[0].payload.every((b) => b === 1));
    assert.ok(got[2].payload.every((b) => b === 3));
    assert.notEqual(got[0].payload.buffer, got[2].payload.buffer);
    if (kind === "chunks") {
      // ...while the other frames shared one buffer, now holding the last.
      assert.equal(got[1].payload.buffer, got[3].payload.buffer);
      assert.ok(got[1].payload.every((b) => b === 4));
    } else {
      // ...while the other frames' reused buffer moved on with each read
      // (BYOB): an older view is detached, never another frame's bytes.
      assert.equal(got[1].payload.length, 0);
      assert.ok(got[3].payload.every((b) => b === 4));
    }
  });
}
