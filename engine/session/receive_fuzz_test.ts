/**
 * Hostile input, generated: fast-check properties over the frame reader and
 * over a whole receiving session. A real migration's bytes (source to
 * receiver) are recorded once, then replayed with random byte flips,
 * truncations, duplicated or dropped spans and random chunking. Whatever the
 * input, the receiver ends with a known error class or a result, never
 * another exception and never a hang, and it says `verified` only when its
 * memory is the source's, byte for byte.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { compile, policy, when } from "../../dsl/mod.ts";
import { MiB } from "../../dsl/units.ts";
import { withDeadline } from "../_precopy_testing.ts";
import { CodecError, MigrationError, WireError } from "../errors.ts";
import { migrate } from "../precopy.ts";
import { receiveMigration } from "../receiver.ts";
import { SimMemorySink, SimVm } from "../sim/mod.ts";
import {
  encodeFrame,
  type Frame,
  FrameReader,
  FrameType,
  memoryDuplex,
} from "../wire/mod.ts";
import { chunkedStream } from "../wire/_test_util.ts";
import { concatBytes } from "../bytes.ts";

const DEADLINE_MS = 30_000;

/** What a replay may fail with: the receiver's own, named errors. */
function isKnownFailure(e: unknown): boolean {
  return e instanceof WireError || e instanceof MigrationError ||
    e instanceof CodecError;
}

/** A mutation of a byte string. */
type Mutation =
  | { kind: "flip"; at: number; xor: number }
  | { kind: "truncate"; at: number }
  | { kind: "drop"; at: number; length: number }
  | { kind: "repeat"; at: number; length: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    kind: fc.constant("truncate" as const),
    at: fc.nat(),
  }),
  fc.record({
    kind: fc.constant("drop" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 5000 }),
  }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 5000 }),
  }),
);

/** `bytes` with `mutations` applied in turn (positions modulo the current length). */
function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let b = bytes;
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case "flip":
        b = b.slice();
        b[at] ^= m.xor;
        break;
      case "truncate":
        b = b.subarray(0, at);
        break;
      case "drop":
        b = concatBytes([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case "repeat":
        b = concatBytes([
          b.subarray(0, at + m.length),
          b.subarray(at, at + m.length),
          b.subarray(at + m.length),
        ]);
        break;
    }
  }
  return b;
}

/**
 * A change to a session at frame granularity, with every CRC recomputed: what
 * a hostile or broken source could send, past the checksums.
 */
type FrameMutation =
  | { kind: "dropFrame"; at: number }
  | { kind: "repeatFrame"; at: number }
  | { kind: "swapFrames"; at: number; with: number }
  | { kind: "forge"; at: number; offset: number; xor: number };

/** A position, taken modulo the length it indexes (fast-check's doubles crowd at 0 and 1). */
const position = fc.nat();

const frameMutationArb: fc.Arbitrary<FrameMutation> = fc.oneof(
  fc.record({ kind: fc.constant("dropFrame" as const), at: position }),
  fc.record({ kind: fc.constant("repeatFrame" as const), at: position }),
  fc.record({
    kind: fc.constant("swapFrames" as const),
    at: position,
    with: position,
  }),
  fc.record({
    kind: fc.constant("forge" as const),
    at: position,
    offset: position,
    xor: fc.integer({ min: 1, max: 255 }),
  }),
);

/** The frames of a recorded session. */
async function framesOf(bytes: Uint8Array): Promise<Frame[]> {
  const reader = new FrameReader(chunkedStream(bytes, () => 65536));
  const out: Frame[] = [];
  for (let f = await reader.next(); f; f = await reader.next()) {
    out.push({ ...f, payload: f.payload.slice() });
  }
  return out;
}

/** `frames` with `mutations` applied, encoded again (fresh CRCs). */
function mutateFrames(
  frames: readonly Frame[],
  mutations: readonly FrameMutation[],
): Uint8Array {
  const f = [...frames];
  const pick = (x: number) => x % f.length;
  for (const m of mutations) {
    if (f.length === 0) break;
    const i = pick(m.at);
    switch (m.kind) {
      case "dropFrame":
        f.splice(i, 1);
        break;
      case "repeatFrame":
        f.splice(i, 0, f[i]);
        break;
      case "swapFrames": {
        const j = pick(m.with);
        [f[i], f[j]] = [f[j], f[i]];
        break;
      }
      case "forge": {
        const payload = f[i].payload.slice();
        if (payload.length === 0) break;
        payload[m.offset % payload.length] ^= m.xor;
        f[i] = { ...f[i], payload };
        break;
      }
    }
  }
  return concatBytes(
    f.map((x) => encodeFrame(x.type, x.round, x.payload, x.channel)),
  );
}

/** Chunk sizes from a seed: 1 byte to 64 KiB, as a socket might hand them. */
function chunkSizes(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return [1, 7, 16, 100, 4096, 65536][x % 6] + (x >>> 20) % 13;
  };
}

Deno.test("fuzz: the frame reader returns the frames sent, or ends, or throws a WireError — whatever the bytes and their chunking", async () => {
  const frameArb = fc.record({
    type: fc.constantFrom(...Object.values(FrameType)),
    channel: fc.integer({ min: 0, max: 255 }),
    round: fc.nat(),
    payload: fc.uint8Array({ maxLength: 3000 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.array(frameArb, { minLength: 1, maxLength: 8 }),
      fc.array(mutationArb, { maxLength: 3 }),
      fc.nat(),
      async (frames, mutations, seed) => {
        const clean = concatBytes(
          frames.map((f) => encodeFrame(f.type, f.round, f.payload, f.channel)),
        );
        const bytes = mutate(clean, mutations);
        const reader = new FrameReader(
          chunkedStream(bytes, chunkSizes(seed)),
        );
        const got: Frame[] = [];
        let error: unknown = null;
        try {
          for (
            let f = await withDeadline(reader.next(), "a frame", DEADLINE_MS);
            f;
            f = await withDeadline(reader.next(), "a frame", DEADLINE_MS)
          ) {
            got.push({ ...f, payload: f.payload.slice() });
          }
        } catch (e) {
          error = e;
        }
        if (error !== null) {
          assert.ok(error instanceof WireError, String(error));
        }
        assert.ok(reader.bytesRead <= bytes.length);
        if (mutations.length === 0) {
          assert.equal(error, null);
          assert.deepEqual(
            got.map((f) => [f.type, f.channel, f.round, [...f.payload]]),
            frames.map((f) => [f.type, f.channel, f.round, [...f.payload]]),
          );
        }
        // Every frame it returned is one that was sent (a flip can only
        // pass the CRC by changing nothing the frame carries).
        for (const f of got) {
          assert.ok(
            frames.some((s) =>
              s.type === f.type && s.channel === f.channel &&
              s.round === f.round && s.payload.length === f.payload.length &&
              s.payload.every((x, i) => x === f.payload[i])
            ),
            "a frame that was never sent",
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

/** One real migration's source-to-receiver bytes, and the source memory it carried. */
async function recordSession(): Promise<
  { bytes: Uint8Array; memory: Uint8Array }
> {
  await using vm = await SimVm.create({
    memoryBytes: MiB(1),
    workload: "memcached",
    seed: 3,
  });
  const [source, tapIn] = memoryDuplex();
  const [tapOut, destination] = memoryDuplex();
  const recorded: Uint8Array[] = [];
  // source → receiver, recorded; receiver → source, passed on
  tapIn.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(c, ctl) {
        recorded.push(c.slice());
        ctl.enqueue(c);
      },
    }),
  ).pipeTo(tapOut.writable).catch(() => {});
  tapOut.readable.pipeTo(tapIn.writable).catch(() => {});
  const plan = compile(
    policy("fuzz").switchover(when.rounds(2)).channels(2),
  );
  const [report, received] = await Promise.all([
    migrate({ plan, source: vm, conn: source }),
    receiveMigration(destination, {
      createSink: (h) =>
        new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
    }),
  ]);
  assert.ok(report.verified && received.verified);
  return { bytes: concatBytes(recorded), memory: vm.memory.slice() };
}

Deno.test("fuzz: a recorded session replayed with random damage ends in a named error, or verified with exactly the source's memory", async () => {
  const session = await recordSession();
  const outcomes = { verified: 0, failed: 0 };
  const replay = async (bytes: Uint8Array, seed: number) => {
    let sink: SimMemorySink | null = null;
    const sinkState = () => (sink as SimMemorySink | null)?.state;
    let result;
    try {
      result = await withDeadline(
        receiveMigration({
          readable: chunkedStream(bytes, chunkSizes(seed)),
          writable: new WritableStream<Uint8Array>(), // replies go nowhere
        }, {
          frameTimeoutMs: 5_000,
          createSink: (h) =>
            sink = new SimMemorySink({
              pageSize: h.pageSize,
              pageCount: h.memoryBytes / h.pageSize,
            }),
        }),
        "the receiver's end",
        DEADLINE_MS,
      );
    } catch (e) {
      outcomes.failed++;
      assert.ok(isKnownFailure(e), `an unnamed failure: ${String(e)}`);
      assert.notEqual(sinkState(), "committed");
      return;
    }
    if (!result.verified) {
      outcomes.failed++;
      assert.notEqual(sinkState(), "committed");
      return;
    }
    outcomes.verified++;
    const s = sink as SimMemorySink | null;
    assert.ok(s, "verified without a destination");
    assert.ok(
      Buffer.from(s.memory).equals(Buffer.from(session.memory)),
      "verified, yet the memory differs from the source's",
    );
    assert.equal(s.state, "committed");
  };
  // The undamaged replay verifies: the property below is not vacuous.
  await replay(session.bytes, 1);
  assert.equal(outcomes.verified, 1, "the clean replay verified");
  const frames = await framesOf(session.bytes);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.record({
          bytes: fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
        }),
        fc.record({
          frames: fc.array(frameMutationArb, { minLength: 1, maxLength: 2 }),
        }),
      ),
      fc.nat(),
      async (damage, seed) => {
        await replay(
          "bytes" in damage
            ? mutate(session.bytes, damage.bytes)
            : mutateFrames(frames, damage.frames),
          seed,
        );
      },
    ),
    { numRuns: 60 },
  );
  assert.ok(outcomes.failed >= 30, `damage detected: ${outcomes.failed}`);
});
