/**
 * Channel Workers kept between stream migrations (a resident tunnel's
 * `ChannelPools`): each migration after the first runs on the same Workers,
 * set up afresh, and ends byte for byte; a failed one does not hand its
 * Workers back.
 */

import assert from "node:assert/strict";
import { ChannelPools } from "../pipeline/channel_pools.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import { sendStream } from "./send.ts";
import { concatBytes } from "../bytes.ts";

const fixture = firmwareStream();

function collector(): {
  sink: WritableStream<Uint8Array>;
  bytes(): Uint8Array;
} {
  const chunks: Uint8Array[] = [];
  return {
    sink: new WritableStream({ write: (c) => void chunks.push(c.slice()) }),
    bytes: () => concatBytes(chunks),
  };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** One migration of the fixture through both sides' pools; it must end byte for byte, verified. */
async function migrate(
  sending: ChannelPools,
  receiving: ChannelPools,
  channels: number,
  codecs: { name: string }[] = [{ name: "zero" }, { name: "lz4" }],
): Promise<void> {
  const [a, b] = memoryDuplex();
  const out = collector();
  const [s, r] = await Promise.all([
    sendStream(ReadableStream.from([fixture]), a, {
      format: qemuFormat,
      codecs,
      channels,
      batchPages: 16,
      pools: sending,
    }),
    receiveStream(b, { format: "qemu", out: out.sink, pools: receiving }),
  ]);
  assert.ok(s.verified && r.verified);
  assert.ok(same(out.bytes(), fixture));
}

Deno.test("pools: three migrations on the same Workers each end byte for byte, delta's state starting over each time", async () => {
  const sending = new ChannelPools();
  const receiving = new ChannelPools();
  try {
    // The same stream again: a sender whose delta cache outlived the last
    // migration would send pages as deltas against pages this receiver's
    // fresh decoders never saw, and the digests would differ.
    for (
      const codecs of [
        [{ name: "zero" }, { name: "delta" }, { name: "lz4" }],
        [{ name: "zero" }, { name: "delta" }, { name: "lz4" }],
        [{ name: "zero" }, { name: "dedup" }, { name: "zstd" }],
      ]
    ) {
      await migrate(sending, receiving, 2, codecs);
      // both sides' Workers are back, ready for the next migration
      assert.equal(sending.idle, 1);
      assert.equal(receiving.idle, 1);
    }
  } finally {
    sending.close();
    receiving.close();
  }
});

Deno.test("pools: a failed migration closes its Workers instead of handing them back", async () => {
  const sending = new ChannelPools();
  const receiving = new ChannelPools();
  try {
    const [a, b] = memoryDuplex();
    const [s, r] = await Promise.allSettled([
      // a truncated QEMU stream: the sender aborts
      sendStream(ReadableStream.from([fixture.subarray(0, 100_000)]), a, {
        format: qemuFormat,
        pools: sending,
      }),
      receiveStream(b, {
        format: "qemu",
        out: new WritableStream(),
        pools: receiving,
      }),
    ]);
    assert.equal(s.status, "rejected");
    assert.equal(r.status, "rejected");
    assert.equal(sending.idle, 0);
    assert.equal(receiving.idle, 0);
  } finally {
    sending.close();
    receiving.close();
  }
});

Deno.test("pools: warmed pools are what the first migration runs on; a migration of another channel count starts its own", async () => {
  const sending = new ChannelPools();
  const receiving = new ChannelPools();
  try {
    sending.warm({ encoders: 2 });
    receiving.warm({ decoders: 2 });
    assert.equal(sending.idle, 1);
    assert.equal(receiving.idle, 1);
    // The warmed pools (set up afresh for this stream's pfn space and
    // codecs) carry it and come back: still one idle on each side, where
    // a migration on new pools would leave two (its own and the warmed).
    await migrate(sending, receiving, 2);
    assert.equal(sending.idle, 1);
    assert.equal(receiving.idle, 1);
    // One channel: the warmed pools of two stay idle, new ones carry it.
    await migrate(sending, receiving, 1);
    assert.equal(sending.idle, 2);
    assert.equal(receiving.idle, 2);
  } finally {
    sending.close();
    receiving.close();
  }
});

Deno.test("pools: warm starts nothing once closed, nor beyond the idle limit", () => {
  const pools = new ChannelPools({ maxIdle: 1 });
  try {
    pools.warm({ encoders: 1 });
    pools.warm({ encoders: 1 });
    assert.equal(pools.idle, 1);
    pools.close();
    pools.warm({ encoders: 1 });
    assert.equal(pools.idle, 0);
  } finally {
    pools.close();
  }
});

Deno.test("pools: with shrink, a session of fewer channels runs on the smallest larger warm pool, shrunk, and starts none", async () => {
  const sending = new ChannelPools();
  const receiving = new ChannelPools({ shrink: true, maxIdle: 3 });
  try {
    // An exec receiver warms one Worker per core before HELLO says how
    // many channels the sender has; here 3 and 2 for a sender of 1.
    receiving.warm({ decoders: 3 });
    receiving.warm({ decoders: 2 });
    assert.equal(receiving.idle, 2);
    await migrate(sending, receiving, 1);
    // No third pool was started: the one of 2 carried the session as 1 and
    // came back; the one of 3 is untouched (a new pool would be kept too:
    // three idle).
    assert.equal(receiving.idle, 2);
  } finally {
    sending.close();
    receiving.close();
  }
});
