/**
 * The receiving session core's bounds against a peer that is idle, slow or
 * greedy: handshake and frame timeouts, decoder state limits, a budget
 * shared by sessions, round bookkeeping. Each test plays the peer by hand
 * over an in-memory connection and checks that the session fails with an
 * error naming the problem, that the peer is told, and that nothing reached
 * destination memory.
 */

import assert from "node:assert/strict";
import { withDeadline } from "../_precopy_testing.ts";
import { MigrationError, WireError } from "../errors.ts";
import { receiveMigration, type ReceiveResult } from "../receiver.ts";
import { SimMemorySink } from "../sim/mod.ts";
import { ReceiveBudget } from "./budget.ts";
import {
  decodeError,
  encodeCodec,
  encodeFrame,
  encodeHello,
  encodeRoundEnd,
  FrameReader,
  FrameType,
  frameTypeName,
  type Hello,
  memoryDuplex,
  type WireConn,
} from "../wire/mod.ts";

const DEADLINE_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function hello(over: Partial<Hello> = {}): Hello {
  return {
    protocol: 2,
    memoryBytes: 64 * 4096,
    pageSize: 4096,
    codecs: [
      { id: 0, name: "raw" },
      { id: 1, name: "zero" },
      { id: 4, name: "dedup" },
      { id: 6, name: "zstd" },
    ],
    vm: "test-vm",
    policy: "test",
    channels: 1,
    ...over,
  };
}

interface Served {
  readonly result: Promise<ReceiveResult>;
  readonly peer: WireConn;
  readonly sinks: SimMemorySink[];
  /** Frames the receiver sent, read until it closes. */
  replies(): Promise<string[]>;
  /** The ERROR frame's message the receiver sent, if any. */
  errorMessage(): Promise<string | undefined>;
}

function serve(
  options: Omit<Parameters<typeof receiveMigration>[1], "createSink"> = {},
): Served {
  const [peer, local] = memoryDuplex();
  const sinks: SimMemorySink[] = [];
  const result = receiveMigration(local, {
    ...options,
    createSink: (h) => {
      const s = new SimMemorySink({
        pageSize: h.pageSize,
        pageCount: h.memoryBytes / h.pageSize,
      });
      sinks.push(s);
      return s;
    },
  });
  result.catch(() => {});
  let frames: Promise<{ type: number; payload: Uint8Array }[]> | null = null;
  const read = () =>
    frames ??= (async () => {
      const reader = new FrameReader(peer.readable);
      const out: { type: number; payload: Uint8Array }[] = [];
      for (;;) {
        const f = await withDeadline(
          reader.next(),
          "the receiver's next frame",
          DEADLINE_MS,
        ).catch(() => null);
        if (!f) return out;
        out.push({ type: f.type, payload: f.payload.slice() });
      }
    })();
  return {
    result,
    peer,
    sinks,
    replies: async () => (await read()).map((f) => frameTypeName(f.type)),
    errorMessage: async () => {
      const e = (await read()).find((f) => f.type === FrameType.ERROR);
      return e ? decodeError(e.payload).message : undefined;
    },
  };
}

async function send(
  peer: WireConn,
  ...frames: Uint8Array[]
): Promise<void> {
  const w = peer.writable.getWriter();
  for (const f of frames) await w.write(f);
  w.releaseLock();
}

function codecFrame(
  id: number,
  name: string,
  options: Record<string, unknown>,
  channel = 0,
): Uint8Array {
  return encodeFrame(
    FrameType.CODEC,
    0,
    encodeCodec({ id, name, options }),
    channel,
  );
}

function failure(served: Served): Promise<unknown> {
  return withDeadline(
    served.result.then(
      () => assert.fail("the session should have failed"),
      (e) => e,
    ),
    "the session's end",
    DEADLINE_MS,
  );
}

Deno.test("a peer that connects and sends nothing is cut off at the handshake timeout, told why", async () => {
  const served = serve({ handshakeTimeoutMs: 150 });
  const t0 = performance.now();
  const error = await failure(served);
  assert.ok(error instanceof WireError, String(error));
  assert.match(
    error.message,
    /^No HELLO within 150 ms of connecting \(0 bytes came\): the peer is idle or too slow$/,
  );
  assert.ok(performance.now() - t0 >= 140, "not before the deadline");
  assert.match((await served.errorMessage())!, /No HELLO within 150 ms/);
  assert.equal(served.sinks.length, 0, "no destination was opened");
});

Deno.test("a peer that trickles its HELLO a byte at a time is cut off at the handshake timeout", async () => {
  const served = serve({ handshakeTimeoutMs: 300 });
  const frame = encodeFrame(FrameType.HELLO, 0, encodeHello(hello()));
  const trickle = (async () => {
    const w = served.peer.writable.getWriter();
    try {
      for (const b of frame) {
        await w.write(new Uint8Array([b]));
        await sleep(25);
      }
    } catch { /* the receiver hung up */ }
  })();
  const error = await failure(served);
  assert.ok(error instanceof WireError);
  assert.match(
    error.message,
    /^No HELLO within 300 ms of connecting \((\d+) bytes came\)/,
  );
  assert.equal(served.sinks.length, 0);
  await served.peer.writable.abort().catch(() => {});
  await trickle;
});

Deno.test("a source that goes quiet mid-session is cut off at the frame timeout, naming what the receiver waited for; the destination is discarded", async () => {
  const served = serve({ frameTimeoutMs: 200 });
  await send(
    served.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello())),
  );
  const error = await failure(served);
  assert.ok(error instanceof WireError, String(error));
  assert.match(
    error.message,
    /^No frame within 200 ms while waiting for .+ \(\d+ bytes read\): the source is idle or too slow$/,
  );
  assert.deepEqual(await served.replies(), ["WELCOME", "ERROR"]);
  assert.equal(served.sinks.length, 1);
  assert.equal(served.sinks[0].state, "discarded");
});

Deno.test("a frame that arrives in time resets the frame timeout: a slow but steady source is served", async () => {
  const served = serve({ frameTimeoutMs: 250 });
  await send(
    served.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello())),
  );
  // 6 frames 100 ms apart: 600 ms in all, each within 250 ms of the last.
  for (let round = 0; round < 6; round++) {
    await sleep(100);
    await send(
      served.peer,
      encodeFrame(
        FrameType.ROUND_END,
        round,
        encodeRoundEnd({ round, pages: 0, rawBytes: 0, wireBytes: 0 }),
      ),
    );
  }
  // Then silence: now it times out, after those 6 rounds were counted.
  const error = await failure(served);
  assert.match(String(error), /No frame within 250 ms/);
  assert.deepEqual(await served.replies(), ["WELCOME", "ERROR"]);
});

Deno.test("a CODEC frame asking for a dedup store over the session's decoder-state limit is refused before anything is allocated", async () => {
  const served = serve({ maxCodecStateBytes: 64 << 20 });
  await send(
    served.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello())),
    codecFrame(4, "dedup", { storeBytes: 1 << 30 }),
  );
  const error = await failure(served);
  assert.ok(error instanceof MigrationError, String(error));
  assert.match(
    error.message,
    /^CODEC frame at offset \d+ asks for 1\.00 GiB of "dedup" decoder state on channel 0: the session would hold 1\.00 GiB, over its limit of 64\.00 MiB$/,
  );
  assert.match((await served.errorMessage())!, /over its limit/);
  assert.equal(served.sinks[0].state, "discarded");
});

Deno.test("decoder state adds up over channels and codecs: zstd windows on 8 channels pass 64 MiB, within it one fewer", async () => {
  // zstd's window is 8 MiB plus buffers: 7 channels fit in 64 MiB, 8 do not.
  const fits = serve({ maxCodecStateBytes: 64 << 20 });
  await send(
    fits.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello({ channels: 8 }))),
    ...Array.from({ length: 7 }, (_, c) => codecFrame(6, "zstd", {}, c)),
  );
  fits.peer.writable.close().catch(() => {});
  const closed = await failure(fits);
  assert.match(String(closed), /Connection closed before/, "refused nothing");
  const over = serve({ maxCodecStateBytes: 64 << 20 });
  await send(
    over.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello({ channels: 8 }))),
    ...Array.from({ length: 8 }, (_, c) => codecFrame(6, "zstd", {}, c)),
  );
  const error = await failure(over);
  assert.match(
    String(error),
    /CODEC frame at offset \d+ asks for 8\.25 MiB of "zstd" decoder state on channel 7: the session would hold 66\.00 MiB, over its limit of 64\.00 MiB/,
  );
});

Deno.test("codec options the codec refuses are refused by the receiver, naming the option", async () => {
  for (
    const [id, name, options, why] of [
      [6, "zstd", { level: 23 }, /level "23"/],
      [4, "dedup", { chunkBytes: 3 }, /chunkBytes/],
    ] as const
  ) {
    const served = serve();
    await send(
      served.peer,
      encodeFrame(FrameType.HELLO, 0, encodeHello(hello())),
      codecFrame(id, name, options),
    );
    const error = await failure(served);
    assert.ok(error instanceof WireError, String(error));
    assert.match(error.message, /with options it refuses/);
    assert.match(error.message, why);
  }
});

Deno.test("a shared budget: a second session that does not fit beside the first is refused; the first goes on; freed, it fits", async () => {
  const budget = new ReceiveBudget(100 * 4096);
  const first = serve({ budget });
  await send(
    first.peer,
    encodeFrame(
      FrameType.HELLO,
      0,
      encodeHello(hello({ memoryBytes: 64 * 4096 })),
    ),
  );
  // WELCOME came: the first holds 64 pages of the 100.
  const reader = new FrameReader(first.peer.readable);
  assert.equal(
    (await withDeadline(reader.next(), "WELCOME", DEADLINE_MS))?.type,
    FrameType.WELCOME,
  );
  assert.equal(budget.heldBytes, 64 * 4096);
  const second = serve({ budget });
  await send(
    second.peer,
    encodeFrame(
      FrameType.HELLO,
      0,
      encodeHello(hello({ memoryBytes: 64 * 4096, vm: "vm-b" })),
    ),
  );
  const error = await failure(second);
  assert.ok(error instanceof MigrationError);
  assert.match(
    error.message,
    /^The memory of "vm-b" needs 256\.00 KiB, over this receiver's budget: 144\.00 KiB of 400\.00 KiB free while other sessions hold the rest$/,
  );
  assert.equal(second.sinks.length, 0, "nothing allocated for the refused one");
  // The first is unharmed: it still takes frames; its end frees its share.
  await send(
    first.peer,
    encodeFrame(
      FrameType.ROUND_END,
      0,
      encodeRoundEnd({ round: 0, pages: 0, rawBytes: 0, wireBytes: 0 }),
    ),
  );
  await first.peer.writable.close();
  assert.match(String(await failure(first)), /Connection closed before/);
  assert.equal(budget.heldBytes, 0, "released when the session ended");
  const third = serve({ budget });
  await send(
    third.peer,
    encodeFrame(
      FrameType.HELLO,
      0,
      encodeHello(hello({ memoryBytes: 64 * 4096 })),
    ),
  );
  await third.peer.writable.close();
  assert.match(String(await failure(third)), /Connection closed before/);
  assert.equal(third.sinks.length, 1, "the third was opened");
});

Deno.test("round bookkeeping is bounded: one channel ending round after round while another ends none is refused", async () => {
  const served = serve();
  await send(
    served.peer,
    encodeFrame(FrameType.HELLO, 0, encodeHello(hello({ channels: 2 }))),
    ...Array.from({ length: 5 }, (_, round) =>
      encodeFrame(
        FrameType.ROUND_END,
        round,
        encodeRoundEnd({ round, pages: 0, rawBytes: 0, wireBytes: 0 }),
        0,
      )),
  );
  const error = await failure(served);
  assert.ok(error instanceof WireError, String(error));
  assert.match(
    error.message,
    /^Channel 0 ended round 2 at offset \d+ while rounds 0, 1 still wait for other channels/,
  );
});
