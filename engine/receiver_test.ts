import assert from "node:assert/strict";
import type { Codec } from "./codecs/codec.ts";
import { raw } from "./codecs/raw.ts";
import { zero } from "./codecs/zero.ts";
import { hex, type MemoryDigest, memoryDigest, rootDigest } from "./digest.ts";
import type { MemorySink } from "./driver.ts";
import { withDeadline } from "./_precopy_testing.ts";
import { CodecError, MigrationError, WireError } from "./errors.ts";
import {
  receiveMigration,
  type ReceiveResult,
  type ReceiverEvent,
  type ReceiverOptions,
} from "./receiver.ts";
import {
  decodeError,
  decodeReady,
  decodeResult,
  decodeWelcome,
  encodeAbort,
  encodeCodec,
  encodeEnd,
  encodeError,
  encodeFinal,
  encodeFrame,
  encodeHello,
  encodeRoundEnd,
  type Frame,
  FrameReader,
  FrameType,
  frameTypeName,
  FrameWriter,
  HEADER_BYTES,
  type Hello,
  memoryDuplex,
  type WireConn,
} from "./wire/mod.ts";
import { type BatchSection, encodeBatchPayload } from "./wire/batch.ts";
import { fromHex } from "./wire/_test_util.ts";
import { PAGE_SIZE } from "./plan.ts";

const PAGES = 64;

/**
 * How long any one wait of these tests (a read, a write, a connection, the
 * receiver's result) may take: each takes milliseconds, but the first reply
 * that needs the receiver's decode Workers waits for them to start, which
 * took over 5 s on a loaded 2-core machine (the whole suite in parallel
 * beside benchmarks). A receiver that stops answering still fails its test
 * with what it waited for, in 30 s instead of hanging.
 */
const DEADLINE_MS = 30_000;

/** `promise` within {@link DEADLINE_MS}, else an error naming `what` ({@link withDeadline}). */
function waitFor<T>(promise: Promise<T>, what: string): Promise<T> {
  return withDeadline(promise, what, DEADLINE_MS);
}

Deno.test("withDeadline rejects naming what it waited for, and passes a settled promise through", async () => {
  await assert.rejects(
    withDeadline(
      new Promise(() => {}),
      "the test's own never-settling promise",
      20,
    ),
    /^Error: Timed out waiting for the test's own never-settling promise: nothing after 20 ms$/,
  );
  assert.equal(await withDeadline(Promise.resolve(7), "seven", 20), 7);
  await assert.rejects(
    withDeadline(Promise.reject(new Error("no")), "x", 20),
    /no/,
  );
});

/** An ArrayBuffer-backed sink that records what happened to it. */
class TestSink implements MemorySink {
  readonly pageSize = PAGE_SIZE;
  readonly memory: Uint8Array;
  writes = 0;
  committed = false;
  discarded = false;
  constructor(readonly pageCount: number) {
    // Not zero, so that applying a zero page is visible.
    this.memory = new Uint8Array(pageCount * PAGE_SIZE).fill(0xee);
  }
  writePage(pfn: number, page: Uint8Array): void {
    assert.ok(
      pfn < this.pageCount && page.length === PAGE_SIZE,
      `bad writePage(${pfn})`,
    );
    this.memory.set(page, pfn * PAGE_SIZE);
    this.writes++;
  }
  readPage(pfn: number): Uint8Array {
    return this.memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }
  digest(): Promise<MemoryDigest> {
    return memoryDigest(this.memory);
  }
  commit(): Promise<void> {
    this.committed = true;
    return Promise.resolve();
  }
  discard(): Promise<void> {
    this.discarded = true;
    return Promise.resolve();
  }
}

/** Source memory: every fourth page is zero, the others a pattern unique to the page. */
function sourceMemory(): Uint8Array {
  const m = new Uint8Array(PAGES * PAGE_SIZE);
  for (let pfn = 0; pfn < PAGES; pfn++) {
    if (pfn % 4 === 0) continue;
    for (let i = 0; i < PAGE_SIZE; i++) {
      m[pfn * PAGE_SIZE + i] = (pfn * 7 + i * 3) & 255;
    }
  }
  return m;
}

function helloFor(
  codecs: readonly Codec[] = [raw, zero],
  edit: Partial<Hello> = {},
): Hello {
  return {
    protocol: 2,
    memoryBytes: PAGES * PAGE_SIZE,
    pageSize: PAGE_SIZE,
    codecs: codecs.map((c) => ({ id: c.id, name: c.name })),
    vm: "test:64 pages",
    policy: "hand-scripted",
    channels: 1,
    ...edit,
  };
}

/**
 * A BATCH frame by hand: `pfns` (ascending) with `sectionOf[i]` naming
 * each page's section; no codec runs, so any bytes can be sent.
 */
function batchBytes(
  round: number,
  pfns: readonly number[],
  sectionOf: readonly number[],
  sections: readonly BatchSection[],
  channel = 0,
): Uint8Array {
  const payload = new Uint8Array(64 * PAGE_SIZE);
  const n = encodeBatchPayload({
    count: pfns.length,
    pfns,
    sectionOf,
    sections,
  }, payload);
  return encodeFrame(FrameType.BATCH, round, payload.subarray(0, n), channel);
}

/** One BATCH frame for `pfns` of `memory`: zero pages in a zero section, the rest raw. */
function batchFrame(
  memory: Uint8Array,
  pfns: readonly number[],
  round: number,
  useZero = true,
  channel = 0,
): Uint8Array {
  const isZero = (pfn: number) =>
    useZero &&
    memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE).every((x) =>
      x === 0
    );
  const zeros = pfns.filter(isZero);
  const raws = pfns.filter((p) => !isZero(p));
  const sections: BatchSection[] = [];
  if (zeros.length) {
    sections.push({ codecId: zero.id, bytes: new Uint8Array(0) });
  }
  const rawBytes = new Uint8Array(raws.length * PAGE_SIZE);
  raws.forEach((pfn, k) =>
    rawBytes.set(
      memory.subarray(pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE),
      k * PAGE_SIZE,
    )
  );
  if (raws.length) sections.push({ codecId: raw.id, bytes: rawBytes });
  const sectionOf = pfns.map((p) => isZero(p) ? 0 : zeros.length ? 1 : 0);
  return batchBytes(round, pfns, sectionOf, sections, channel);
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from }, (_, i) => from + i);

/** The hand-scripted source: frames out, replies in. */
class Source {
  readonly writer: FrameWriter;
  readonly reader: FrameReader;
  constructor(conn: WireConn) {
    this.writer = new FrameWriter(conn.writable);
    this.reader = new FrameReader(conn.readable);
  }
  send(
    type: FrameType,
    round: number,
    payload: Uint8Array,
    channel = 0,
  ): Promise<void> {
    return waitFor(
      this.writer.write(type, round, payload, channel),
      `the receiver to take a ${frameTypeName(type)} frame`,
    );
  }
  sendRaw(bytes: Uint8Array): Promise<void> {
    return waitFor(
      this.writer.writeRaw(bytes),
      `the receiver to take ${bytes.length} raw bytes`,
    );
  }
  /** Closes the source's side of the stream. */
  close(): Promise<void> {
    return waitFor(this.writer.close(), "the source's stream to close");
  }
  /** The next frame from the receiver, or null at the end of the stream. */
  next(what: string): Promise<Frame | null> {
    return waitFor(this.reader.next(), what);
  }
  async expect(type: FrameType): Promise<Frame> {
    const f = await this.next(`${frameTypeName(type)} from the receiver`);
    assert.ok(f, `expected ${frameTypeName(type)}, got end of stream`);
    assert.equal(frameTypeName(f.type), frameTypeName(type));
    return { ...f, payload: f.payload.slice() };
  }
  /** Reads replies until ERROR; its message, or undefined when the connection ends first. */
  errorMessage(): Promise<string | undefined> {
    return waitFor(
      (async () => {
        try {
          for (
            let f = await this.reader.next();
            f;
            f = await this.reader.next()
          ) {
            if (f.type === FrameType.ERROR) {
              return decodeError(f.payload).message;
            }
          }
        } catch {
          // Reset or closed.
        }
        return undefined;
      })(),
      "ERROR or the end of the stream from the receiver",
    );
  }
  async handshake(hello = helloFor(), announce = true): Promise<void> {
    await this.send(FrameType.HELLO, 0, encodeHello(hello));
    assert.deepEqual(
      decodeWelcome((await this.expect(FrameType.WELCOME)).payload),
      {
        protocol: 2,
        accepted: true,
      },
    );
    // Announce the codecs the hand-scripted pages use.
    if (announce) {
      for (
        const c of [raw, zero].filter((c) =>
          hello.codecs.some((h) => h.id === c.id)
        )
      ) {
        await this.send(
          FrameType.CODEC,
          0,
          encodeCodec({ id: c.id, name: c.name, options: {} }),
        );
      }
    }
  }
}

type Transport = "memory" | "tcp";

/** A connected source/destination pair; `close` frees what the receiver did not. */
async function connect(
  kind: Transport,
): Promise<{ source: WireConn; destination: WireConn; close(): void }> {
  if (kind === "memory") {
    const [source, destination] = memoryDuplex();
    return { source, destination, close() {} };
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const [source, destination] = await waitFor(
    Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port }),
      listener.accept(),
    ]),
    "a loopback TCP connection",
  );
  return {
    source,
    destination,
    close() {
      listener.close();
      for (const c of [source, destination]) {
        try {
          c.close();
        } catch {
          // Already closed by a stream.
        }
      }
    },
  };
}

interface Session {
  source: Source;
  sinks: TestSink[];
  events: ReceiverEvent[];
  /** The receiver's outcome, within the deadline. */
  received(): Promise<ReceiveResult>;
  /** Resolves once `n` receiver events arrived; rejects if the receiver fails first. */
  awaitEvents(n: number): Promise<void>;
  close(): void;
}

async function start(
  kind: Transport,
  options: Partial<ReceiverOptions> = {},
): Promise<Session> {
  const { source, destination, close } = await connect(kind);
  const sinks: TestSink[] = [];
  const events: ReceiverEvent[] = [];
  const received = receiveMigration(destination, {
    createSink: (hello) => {
      const s = new TestSink(hello.memoryBytes / PAGE_SIZE);
      sinks.push(s);
      return s;
    },
    onEvent: (e) => events.push(e),
    ...options,
  });
  received.catch(() => {}); // awaited by each test
  return {
    source: new Source(source),
    sinks,
    events,
    received: () => waitFor(received, "the receiver's result"),
    awaitEvents: (n) =>
      waitFor(
        (async () => {
          while (events.length < n) {
            await Promise.race([
              received,
              new Promise((r) => setTimeout(r, 1)),
            ]);
          }
        })(),
        `${n} events from the receiver`,
      ),
    close,
  };
}

/** Runs a whole migration in two rounds; `endDigest` replaces the true digest when given. */
async function migrate(
  kind: Transport,
  endDigest?: MemoryDigest,
): Promise<{ s: Session; memory: Uint8Array }> {
  const s = await start(kind);
  const memory = sourceMemory();
  const src = s.source;
  await src.handshake();
  await src.sendRaw(batchFrame(memory, range(0, 32), 1));
  await src.sendRaw(batchFrame(memory, range(32, 64), 1));
  await src.send(
    FrameType.ROUND_END,
    1,
    encodeRoundEnd({
      round: 1,
      pages: 64,
      rawBytes: 64 * PAGE_SIZE,
      wireBytes: 1,
    }),
  );
  // The guest dirtied five pages meanwhile; one of them became zero.
  for (const pfn of [1, 2, 5, 40, 63]) {
    memory.fill(
      pfn === 40 ? 0 : pfn + 100,
      pfn * PAGE_SIZE,
      (pfn + 1) * PAGE_SIZE,
    );
  }
  await src.sendRaw(batchFrame(memory, [1, 2, 5, 40, 63], 2));
  await src.send(FrameType.FINAL, 2, encodeFinal({ round: 2, pagesTotal: 69 }));
  assert.deepEqual(decodeReady((await src.expect(FrameType.READY)).payload), {
    pagesApplied: 69,
  });
  await src.send(
    FrameType.END,
    0,
    encodeEnd(endDigest ?? await memoryDigest(memory)),
  );
  const result = decodeResult((await src.expect(FrameType.RESULT)).payload);
  assert.equal(
    result.digest,
    hex(rootDigest((await memoryDigest(s.sinks[0].memory)).ranges)),
  );
  assert.equal(result.verified, endDigest === undefined);
  assert.equal(result.pagesApplied, 69);
  assert.equal(
    await src.next("the end of the stream after RESULT"),
    null,
    "the receiver closes after RESULT",
  );
  return { s, memory };
}

for (const kind of ["memory", "tcp"] as const) {
  Deno.test(`receiver (${kind}): a two-round migration arrives verified and committed`, async () => {
    const { s, memory } = await migrate(kind);
    const r = await s.received();
    s.close();
    const sink = s.sinks[0];
    assert.ok(
      sink.memory.every((x, i) => x === memory[i]),
      "destination memory equals the source",
    );
    assert.ok(sink.committed && !sink.discarded);
    assert.equal(sink.writes, 69);
    assert.equal(r.verified, true);
    assert.equal(r.aborted, false);
    assert.equal(r.pagesApplied, 69);
    assert.equal(r.rounds, 2);
    assert.equal(r.memoryBytes, PAGES * PAGE_SIZE);
    assert.equal(r.vm, "test:64 pages");
    assert.equal(r.policy, "hand-scripted");
    assert.equal(
      r.digest,
      hex(rootDigest((await memoryDigest(memory)).ranges)),
    );
    assert.equal(r.channels, 1);
    assert.deepEqual(r.mismatched, []);
    assert.ok(r.bytesReceived > 48 * PAGE_SIZE && r.durationMs >= 0);
    assert.deepEqual(s.events.map((e) => e.type), [
      "hello",
      "round",
      "final",
      "result",
    ]);
    const round = s.events[1] as Extract<ReceiverEvent, { type: "round" }>;
    assert.equal(round.roundEnd.pages, 64);
  });

  Deno.test(`receiver (${kind}): a wrong source digest resolves unverified and discards the sink`, async () => {
    const { s } = await migrate(kind, {
      rangeBytes: 64 * 1024 * 1024,
      ranges: new Uint8Array(32).fill(1),
    });
    const r = await s.received();
    s.close();
    assert.equal(r.verified, false);
    assert.deepEqual(r.mismatched, [0], "the one range that differs is named");
    assert.ok(s.sinks[0].discarded && !s.sinks[0].committed);
  });
}

/**
 * Handshake, one good BATCH frame (pfns 0..7), then `bad`; the receiver must
 * reject with `message`, send it as ERROR, discard the sink, and the sink
 * must hold exactly what the good frame wrote.
 */
async function malformed(
  kind: Transport,
  bad: (src: Source, memory: Uint8Array) => Promise<void>,
  message: RegExp,
  options: {
    hello?: Hello;
    errorType?: new (...a: never[]) => Error;
    errorReply?: boolean;
  } = {},
): Promise<void> {
  const s = await start(kind);
  const memory = sourceMemory();
  try {
    await s.source.handshake(options.hello);
    const useZero = (options.hello ?? helloFor()).codecs.some((c) =>
      c.id === zero.id
    );
    await s.source.sendRaw(batchFrame(memory, range(0, 8), 1, useZero));
    await s.source.send(
      FrameType.ROUND_END,
      1,
      encodeRoundEnd({ round: 1, pages: 8, rawBytes: 0, wireBytes: 0 }),
    );
    await s.awaitEvents(2);
    const sink = s.sinks[0];
    // The channel's Worker decodes on its own time: wait for its pages.
    await waitFor(
      (async () => {
        while (sink.writes < 8) await new Promise((r) => setTimeout(r, 1));
      })(),
      "the good batch's 8 pages",
    );
    const snapshot = sink.memory.slice();
    const writes = sink.writes;
    assert.equal(writes, 8);

    // The receiver may close while we write.
    await waitFor(bad(s.source, memory), "the bad input to be written")
      .catch(() => {});
    const reply = options.errorReply === false
      ? undefined
      : await s.source.errorMessage();
    await assert.rejects(() => s.received(), (e: unknown) => {
      assert.ok(
        e instanceof (options.errorType ?? WireError),
        `${(e as Error)?.name}: ${e}`,
      );
      assert.match((e as Error).message, message);
      return true;
    });
    if (options.errorReply !== false) {
      assert.match(reply ?? "(no ERROR frame)", message);
    }
    assert.ok(sink.discarded && !sink.committed, "the sink is discarded");
    assert.equal(sink.writes, writes, "nothing of the bad frame was written");
    assert.ok(
      sink.memory.every((x, i) => x === snapshot[i]),
      "sink memory untouched by the bad frame",
    );
  } finally {
    s.close();
  }
}

/**
 * A BATCH frame whose first page (pfn 9, raw) is valid and whose second
 * (`pfn`) is in a section of codec `codecId` with `body` as its bytes.
 */
function batchWithSecond(
  memory: Uint8Array,
  pfn: number,
  codecId: number,
  body: Uint8Array,
): Uint8Array {
  if (codecId === raw.id) {
    const bytes = new Uint8Array(PAGE_SIZE + body.length);
    bytes.set(memory.subarray(9 * PAGE_SIZE, 10 * PAGE_SIZE));
    bytes.set(body, PAGE_SIZE);
    return batchBytes(1, [9, pfn], [0, 0], [{ codecId: raw.id, bytes }]);
  }
  return batchBytes(1, [9, pfn], [0, 1], [
    { codecId: raw.id, bytes: memory.slice(9 * PAGE_SIZE, 10 * PAGE_SIZE) },
    { codecId, bytes: body },
  ]);
}

const MALFORMED: [
  string,
  (src: Source, memory: Uint8Array) => Promise<void>,
  RegExp,
  (new (...a: never[]) => Error)?,
][] = [
  ["bad checksum", (src, m) => {
    const f = batchFrame(m, range(8, 16), 1);
    f[HEADER_BYTES + 100] ^= 1;
    return src.sendRaw(f);
  }, /Bad checksum in BATCH frame at offset/],
  ["oversized length (4 GiB)", (src) => {
    const h = encodeFrame(FrameType.BATCH, 1, new Uint8Array(0));
    new DataView(h.buffer).setUint32(8, 0xffff_ffff, true);
    return src.sendRaw(h);
  }, /payload length "4294967295" .* is over the limit/],
  [
    "pfn out of range",
    (src, m) =>
      src.sendRaw(batchWithSecond(m, PAGES, raw.id, new Uint8Array(PAGE_SIZE))),
    /pfn run 1 at offset \d+ \(64\+1\) is out of range: memory has 64 pages/,
  ],
  [
    "unknown codec id",
    (src, m) =>
      src.sendRaw(batchWithSecond(m, 10, 7, new Uint8Array(PAGE_SIZE))),
    /section 1 uses codec id "7", which is not negotiated and announced/,
  ],
  [
    "a section over its codec's maximum",
    (src, m) =>
      src.sendRaw(
        batchWithSecond(m, 10, raw.id, new Uint8Array(PAGE_SIZE + 1)),
      ),
    /Cannot decode a raw section of 8193 bytes: over its 8192-byte maximum for 2 pages/,
    CodecError,
  ],
  [
    "a channel HELLO did not announce",
    (src, m) => src.sendRaw(batchFrame(m, range(8, 16), 1, true, 1)),
    /BATCH frame at offset \d+ is for channel 1, but HELLO announced 1/,
  ],
  [
    "protocol 1's PAGES frame (type 3: unknown since protocol 2)",
    // protocol 1's golden PAGES frame, CRC and all: pfn 5 as a zero page
    (src) =>
      src.sendRaw(fromHex(
        "484b0300 02000000 18000000 a0719af8 01000000 00000000" +
          "05000000 00000000 01000000 00000000",
      )),
    /Unknown frame type "3" at offset \d+: known types are 1, 2, 4, /,
  ],
  ["truncated stream", async (src, m) => {
    await src.sendRaw(batchFrame(m, range(8, 16), 1).subarray(0, 3000));
    await src.close();
  }, /Truncated stream: ended after 2984 of \d+ payload bytes/],
  [
    "END before FINAL",
    (src) => src.send(FrameType.END, 0, new Uint8Array(48)),
    /Unexpected END frame at offset \d+: expected FINAL first/,
  ],
  [
    "HELLO twice",
    (src) => src.send(FrameType.HELLO, 0, encodeHello(helloFor())),
    /Unexpected HELLO frame/,
  ],
  [
    "BATCH after FINAL",
    async (src, m) => {
      await src.send(
        FrameType.FINAL,
        1,
        encodeFinal({ round: 1, pagesTotal: 8 }),
      );
      await src.expect(FrameType.READY);
      await src.sendRaw(batchFrame(m, range(8, 16), 2));
    },
    /Unexpected BATCH frame at offset \d+: the source already sent its last pages/,
  ],
  [
    "FINAL with the wrong page total",
    (src) =>
      src.send(FrameType.FINAL, 1, encodeFinal({ round: 1, pagesTotal: 9 })),
    /FINAL says the source sent "9" pages, but 8 arrived/,
  ],
  [
    "FINAL round differs from its header",
    (src) =>
      src.send(FrameType.FINAL, 2, encodeFinal({ round: 1, pagesTotal: 8 })),
    /FINAL frame at offset \d+ is inconsistent: its JSON says round "1", its header round 2/,
  ],
  [
    "end of stream before FINAL",
    (src) => src.close(),
    /Connection closed before FINAL: the memory is incomplete/,
  ],
  ["end of stream before END", async (src) => {
    await src.send(
      FrameType.FINAL,
      1,
      encodeFinal({ round: 1, pagesTotal: 8 }),
    );
    await src.expect(FrameType.READY);
    await src.close();
  }, /Connection closed before END/],
  [
    "a JSON field of the wrong type",
    (src) =>
      src.send(
        FrameType.ROUND_END,
        1,
        new TextEncoder().encode('{"round":"1"}'),
      ),
    /Cannot decode ROUND_END: field "round"/,
  ],
];

for (const [name, bad, message, errorType] of MALFORMED) {
  Deno.test(`receiver (memory): ${name} fails the session, leaves the sink untouched and discarded`, () =>
    malformed("memory", bad, message, {
      errorReply: !/end of stream|truncated/.test(name),
      errorType,
    }));
}

for (
  const name of ["bad checksum", "pfn out of range", "oversized length (4 GiB)"]
) {
  const [, bad, message] = MALFORMED.find(([n]) => n === name)!;
  Deno.test(`receiver (tcp): ${name} fails the session, leaves the sink untouched and discarded`, () =>
    malformed("tcp", bad, message));
}

Deno.test("receiver (tcp): truncated stream (source half-closes) fails the session and discards the sink", () =>
  malformedTcpTruncated(MALFORMED.find(([n]) => n === "truncated stream")![2]));

/**
 * Truncation over TCP with a half-close (`closeWrite`). Deno closes a TCP
 * resource once its readable reaches end of stream, so the receiver cannot
 * answer with ERROR here; the source learns of the failure from the closed
 * connection.
 */
async function malformedTcpTruncated(message: RegExp): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  try {
    const [conn, destination] = await waitFor(
      Promise.all([
        Deno.connect({ hostname: "127.0.0.1", port }),
        listener.accept(),
      ]),
      "a loopback TCP connection",
    );
    try {
      const sink = new TestSink(PAGES);
      const received = receiveMigration(destination, {
        createSink: () => sink,
      });
      received.catch(() => {});
      const src = new Source({
        readable: conn.readable,
        writable: new WritableStream({
          write: (c) => conn.write(c).then(() => {}),
        }),
      });
      await src.handshake();
      await src.sendRaw(
        batchFrame(sourceMemory(), range(8, 16), 1).subarray(0, 3000),
      );
      await waitFor(conn.closeWrite(), "the half-close");
      await src.errorMessage(); // end of stream or ERROR, whichever the platform allows
      await assert.rejects(
        () => waitFor(received, "the receiver's result"),
        message,
      );
      assert.ok(sink.discarded && sink.writes === 0);
    } finally {
      for (const c of [conn, destination]) {
        try {
          c.close();
        } catch {
          // closed at end of stream
        }
      }
    }
  } finally {
    listener.close();
  }
}

Deno.test("receiver (memory): an un-negotiated codec is refused even though the receiver knows it", () =>
  malformed(
    "memory",
    (src, m) => src.sendRaw(batchWithSecond(m, 12, zero.id, new Uint8Array(0))),
    /section 1 uses codec id "1", which is not negotiated and announced/,
    { hello: helloFor([raw]) },
  ));

Deno.test("receiver (memory): a codec error mid-frame fails the session and discards the sink", async () => {
  const s = await start("memory");
  await s.source.handshake();
  await s.source.sendRaw(
    batchWithSecond(sourceMemory(), 10, raw.id, new Uint8Array(100)),
  );
  assert.match(
    (await s.source.errorMessage())!,
    /Cannot decode a raw section of 4196 bytes: expected 2 pages of 4096/,
  );
  await assert.rejects(() => s.received(), CodecError);
  assert.ok(s.sinks[0].discarded);
});

Deno.test("receiver (memory): an ERROR from the source rejects without replying", () =>
  malformed(
    "memory",
    (src) =>
      src.send(FrameType.ERROR, 0, encodeError({ message: "disk on fire" })),
    /Source failed: disk on fire/,
    { errorType: MigrationError, errorReply: false },
  ));

Deno.test("receiver (memory): ABORT resolves aborted and discards the sink", async () => {
  const s = await start("memory");
  await s.source.handshake();
  await s.source.sendRaw(batchFrame(sourceMemory(), range(0, 8), 1));
  await s.source.send(
    FrameType.ABORT,
    1,
    encodeAbort({ reason: "policy gave up" }),
  );
  const r = await s.received();
  assert.equal(r.aborted, true);
  assert.equal(r.verified, false);
  assert.equal(r.pagesApplied, 8);
  assert.ok(s.sinks[0].discarded && !s.sinks[0].committed);
  assert.deepEqual(s.events.at(-1), {
    type: "abort",
    reason: "policy gave up",
  });
  assert.equal(await s.source.next("the end of the stream after ABORT"), null);
});

Deno.test("receiver (memory): BATCH before HELLO fails before any sink exists", async () => {
  const s = await start("memory");
  await s.source.sendRaw(batchFrame(sourceMemory(), [1], 1));
  assert.match(
    (await s.source.errorMessage())!,
    /Unexpected BATCH frame at offset 0: expected HELLO/,
  );
  await assert.rejects(
    () => s.received(),
    /Unexpected BATCH frame at offset 0: expected HELLO/,
  );
  assert.equal(s.sinks.length, 0);
});

Deno.test("receiver (memory): an unacceptable HELLO is answered with ERROR and no sink is created", async () => {
  const cases: [Hello, RegExp, number?][] = [
    [
      helloFor(undefined, { protocol: 1 }),
      /Unsupported protocol version "1": this receiver speaks protocol 2/,
    ],
    [
      helloFor(undefined, { channels: 9 }),
      /Unsupported channel count "9": this receiver takes 1 to 8/,
    ],
    [
      helloFor(undefined, { stream: "qemu" }),
      /HELLO announces a qemu stream, but this receiver takes a migration into memory/,
    ],
    [helloFor(undefined, { pageSize: 8192 }), /Unsupported page size "8192"/],
    [
      helloFor(undefined, { memoryBytes: 4097 }),
      /Bad memory size "4097": must be a positive multiple/,
    ],
    [helloFor(undefined, { memoryBytes: 0 }), /Bad memory size "0"/],
    [
      helloFor(undefined, { memoryBytes: 128 * PAGE_SIZE }),
      /Memory size "524288" is over this receiver's limit: at most 262144 bytes/,
      64 * PAGE_SIZE,
    ],
    [
      helloFor(undefined, { codecs: [{ id: 9, name: "lz9" }] }),
      /Unknown codec "lz9" with id 9: this receiver knows "raw" \(0\), "zero" \(1\)/,
    ],
    [
      helloFor(undefined, { codecs: [{ id: 0, name: "zero" }] }),
      /Unknown codec "zero" with id 0: .*; its id 0 is "raw"/,
    ],
    [
      helloFor(undefined, {
        codecs: [{ id: 0, name: "raw" }, { id: 0, name: "raw" }],
      }),
      /listed twice/,
    ],
  ];
  for (const [hello, message, maxMemoryBytes] of cases) {
    const s = await start("memory", { maxMemoryBytes, maxChannels: 8 });
    await s.source.send(FrameType.HELLO, 0, encodeHello(hello));
    assert.match((await s.source.errorMessage())!, message);
    await assert.rejects(
      () => s.received(),
      (e: unknown) => e instanceof MigrationError && message.test(e.message),
    );
    assert.equal(s.sinks.length, 0);
  }
});

Deno.test("receiver (memory): a sink whose size differs from HELLO is refused", async () => {
  const sink = new TestSink(32);
  const s = await start("memory", { createSink: () => sink });
  await s.source.send(FrameType.HELLO, 0, encodeHello(helloFor()));
  assert.match(
    (await s.source.errorMessage())!,
    /the sink: it has 32 pages of 4096 bytes, HELLO announced 64 pages/,
  );
  await assert.rejects(() => s.received(), MigrationError);
  assert.ok(sink.discarded);
});

/** Memory of two 256-page partition blocks (pfn 0-255 on channel 0, 256-511 on channel 1 of 2). */
function twoBlockMemory(): Uint8Array {
  const m = new Uint8Array(512 * PAGE_SIZE);
  for (let pfn = 0; pfn < 512; pfn++) {
    if (pfn % 4 === 0) continue;
    m.fill((pfn * 7) & 255, pfn * PAGE_SIZE, (pfn + 1) * PAGE_SIZE);
  }
  return m;
}

/** A two-channel session over {@link twoBlockMemory}, every channel's codecs announced. */
async function twoChannelSession(): Promise<Session> {
  const s = await start("memory");
  await s.source.handshake(
    helloFor(undefined, { channels: 2, memoryBytes: 512 * PAGE_SIZE }),
    false,
  );
  for (const channel of [0, 1]) {
    for (const c of [raw, zero]) {
      await s.source.send(
        FrameType.CODEC,
        0,
        encodeCodec({ id: c.id, name: c.name, options: {} }),
        channel,
      );
    }
  }
  return s;
}

Deno.test("receiver (memory): two channels apply their own batches, each in its order", async () => {
  const s = await twoChannelSession();
  const src = s.source;
  const memory = twoBlockMemory();
  // channel 1 first, then channel 0; a page sent twice on one channel
  // keeps its later version
  const later = memory.slice();
  later.fill(0x77, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
  for (let at = 256; at < 512; at += 32) {
    await src.sendRaw(batchFrame(memory, range(at, at + 32), 1, true, 1));
  }
  for (let at = 0; at < 256; at += 32) {
    await src.sendRaw(batchFrame(memory, range(at, at + 32), 1, true, 0));
  }
  await src.sendRaw(batchFrame(later, [3], 2, true, 0));
  for (const channel of [0, 1]) {
    await src.send(
      FrameType.ROUND_END,
      1,
      encodeRoundEnd({ round: 1, pages: 256, rawBytes: 0, wireBytes: 0 }),
      channel,
    );
  }
  await src.send(
    FrameType.FINAL,
    2,
    encodeFinal({ round: 2, pagesTotal: 513 }),
  );
  await src.expect(FrameType.READY);
  await src.send(FrameType.END, 0, encodeEnd(await memoryDigest(later)));
  assert.equal(
    decodeResult((await src.expect(FrameType.RESULT)).payload).verified,
    true,
  );
  const r = await s.received();
  s.close();
  assert.equal(r.channels, 2);
  assert.equal(r.pagesApplied, 513);
  assert.equal(r.rounds, 2);
  assert.ok(s.sinks[0].memory.every((x, i) => x === later[i]));
  assert.deepEqual(s.events.map((e) => e.type), [
    "hello",
    "round",
    "final",
    "result",
  ]);
});

Deno.test("receiver (memory): a page on another channel than its own is refused before any page of its frame is written", async () => {
  const s = await twoChannelSession();
  const memory = twoBlockMemory();
  // pfns 250-259 straddle the two blocks: 256-259 belong to channel 1
  const frame = batchFrame(memory, range(250, 260), 1, true, 0);
  await s.source.sendRaw(frame);
  assert.match(
    (await s.source.errorMessage())!,
    /BATCH frame at offset \d+ on channel 0 carries page 256, which belongs to channel 1 \(of 2\)/,
  );
  await assert.rejects(() => s.received(), WireError);
  assert.ok(s.sinks[0].discarded);
  assert.equal(s.sinks[0].writes, 0);
  assert.ok(
    s.sinks[0].memory.every((x) => x === 0xee),
    "the frame's pages of channel 0 were not applied either",
  );
});

Deno.test("receiver (memory): a page whose codec was never announced by CODEC is refused", async () => {
  const s = await start("memory");
  await s.source.handshake(helloFor(), false);
  await s.source.sendRaw(batchFrame(sourceMemory(), [0, 1], 1));
  assert.match(
    (await s.source.errorMessage())!,
    /section 0 uses codec id "[01]", which is not negotiated and announced/,
  );
  await assert.rejects(() => s.received(), WireError);
  assert.ok(s.sinks[0].discarded);
  assert.equal(
    s.sinks[0].writes,
    0,
    "nothing was written for the refused frame",
  );
});

Deno.test("receiver (memory): CODEC for a codec HELLO did not negotiate, or twice, is refused", async () => {
  for (
    const [setup, message] of [
      [
        { id: 200, name: "nope", options: {} },
        /CODEC announces codec "nope" with id 200/,
      ],
      [
        { id: 1, name: "zero", options: {} },
        /CODEC announces codec "zero" a second time/,
      ],
    ] as const
  ) {
    const s = await start("memory");
    await s.source.handshake();
    await s.source.send(FrameType.CODEC, 0, encodeCodec(setup));
    assert.match((await s.source.errorMessage())!, message);
    await assert.rejects(() => s.received(), WireError);
  }
});

Deno.test("receiver (memory): a codec that refuses its CODEC options fails the session", async () => {
  const s = await start("memory");
  await s.source.handshake(helloFor(), false);
  await s.source.send(
    FrameType.CODEC,
    0,
    encodeCodec({ id: 1, name: "zero", options: { level: 3 } }),
  );
  assert.match(
    (await s.source.errorMessage())!,
    /CODEC announces codec "zero" with options it refuses: Unknown zero option "level": zero takes no options/,
  );
  await assert.rejects(() => s.received(), WireError);
});
