/**
 * Resumable stream tunnels on kept channel Workers (a resident tunnel's
 * `ChannelPools` on both sides, one `StreamResumeServer` for every
 * session): a migration whose link is cut mid-stream resumes and ends byte
 * for byte on Workers a previous migration used, hands them back for the
 * next one, and one that cannot resume (its grace passed) closes its
 * Workers instead of handing them back, with the next migration fine.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { concatBytes } from "../bytes.ts";
import { type Fault, faultProxy } from "../_fault_proxy.ts";
import { withDeadline } from "../_precopy_testing.ts";
import { ChannelPools } from "../pipeline/channel_pools.ts";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import type { CodecSpec } from "../plan.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import { StreamResumeServer } from "./resume_receiver.ts";
import { sendStream, type StreamStats } from "./send.ts";

const fixture = firmwareStream();

/** `bytes` in 8 KiB chunks, as QEMU writes its stream. */
function fromBytes(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + 8192));
      at += 8192;
    },
  });
}

/**
 * A receiving tunnel as the resident one runs: every connection through
 * one resume server, each session decoded on `pools`.
 */
function residentReceiver(pools: ChannelPools, maxGraceMs: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const server = new StreamResumeServer({ maxGraceMs });
  const sessions: Promise<{ stats: StreamStats | Error; out: Uint8Array }>[] =
    [];
  const loop = (async () => {
    for (;;) {
      let conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      // Sessions are counted as admitted; RESUMEs carry one on.
      void server.admit(conn, null).then((a) => {
        if (a.kind !== "session") return;
        sessions.push((async () => {
          const chunks: Uint8Array[] = [];
          let stats: StreamStats | Error;
          try {
            stats = await receiveStream(a.conn, {
              format: "qemu",
              out: new WritableStream({
                write: (c) => void chunks.push(c.slice()),
              }),
              pools,
              frameTimeoutMs: 30_000 + maxGraceMs,
            });
          } catch (e) {
            stats = e as Error;
          } finally {
            await a.done("ended");
          }
          return { stats, out: concatBytes(chunks) };
        })());
      });
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    server,
    sessions,
    async close() {
      listener.close();
      await loop;
    },
  };
}

/** One migration through a proxy that injects `faults` per connection. */
async function migrate(
  rx: ReturnType<typeof residentReceiver>,
  pools: ChannelPools,
  faults: (Fault | null)[],
  codecs: CodecSpec[],
  reconnect?: (connect: () => Promise<Deno.Conn>) => Promise<Deno.Conn>,
) {
  const proxy = faultProxy(rx.port, faults);
  const connect = () =>
    Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const before = rx.sessions.length;
  try {
    const sent = await sendStream(fromBytes(fixture), await connect(), {
      format: qemuFormat,
      channels: 2,
      codecs,
      // slow enough for the cut to come mid-stream
      bandwidth: 400_000,
      pools,
      resume: {
        graceMs: 20_000,
        reconnect: reconnect ? () => reconnect(connect) : connect,
      },
    }).catch((e: Error) => e);
    assert.equal(rx.sessions.length, before + 1, "one session per migration");
    const received = await withDeadline(
      rx.sessions[before],
      "the receiving tunnel",
      30_000,
    );
    return { sent, received, proxy };
  } finally {
    await proxy.close();
  }
}

Deno.test({
  name:
    "resume on kept pools: a link cut mid-stream resumes on Workers a previous migration used, the stream ends byte for byte and both sides hand their Workers back; the next migration runs on them again",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sending = new ChannelPools();
    const receiving = new ChannelPools();
    const rx = residentReceiver(receiving, 20_000);
    const codecs = [{ name: "zero" }, { name: "delta" }, { name: "lz4" }];
    try {
      for (const cut of [false, true, false]) {
        const { sent, received, proxy } = await migrate(
          rx,
          sending,
          cut ? [{ kind: "cut", direction: "up", afterBytes: 60_000 }] : [],
          codecs,
        );
        assert.ok(!(sent instanceof Error), String(sent));
        assert.ok(!(received.stats instanceof Error), String(received.stats));
        assert.equal(proxy.fired, cut, "the link was cut as planned");
        assert.equal(sent.verified, true);
        assert.equal(received.stats.digest, sent.digest);
        assert.equal(sent.resumes?.length, cut ? 1 : 0);
        assert.ok(Buffer.from(received.out).equals(Buffer.from(fixture)));
        // Both sides' Workers are back for the next migration.
        assert.equal(sending.idle, 1);
        assert.equal(receiving.idle, 1);
      }
      assert.equal(rx.server.parked, 0);
    } finally {
      await rx.close();
      sending.close();
      receiving.close();
    }
  },
});

Deno.test({
  name:
    "resume on kept pools: a cut that outlasts the receiver's grace fails the migration, which closes its Workers on both sides instead of handing them back; the next migration starts fresh ones and verifies",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sending = new ChannelPools();
    const receiving = new ChannelPools();
    // The receiving tunnel keeps a lost session 300 ms.
    const rx = residentReceiver(receiving, 300);
    const codecs = [{ name: "zero" }, { name: "lz4" }];
    try {
      const failed = await migrate(
        rx,
        sending,
        [{ kind: "cut", direction: "up", afterBytes: 60_000 }],
        codecs,
        // The link stays down until the receiver gave the session up.
        async (connect) => {
          await rx.sessions.at(-1);
          return await connect();
        },
      );
      assert.ok(failed.proxy.fired, "the link was never cut");
      assert.ok(failed.sent instanceof Error, "the sender did not fail");
      assert.ok(failed.received.stats instanceof Error);
      assert.match(
        failed.received.stats.message,
        /no RESUME came within the session's grace of 300 ms/,
      );
      assert.equal(sending.idle, 0);
      assert.equal(receiving.idle, 0);
      const next = await migrate(rx, sending, [], codecs);
      assert.ok(!(next.sent instanceof Error), String(next.sent));
      assert.equal(next.sent.verified, true);
      assert.ok(
        Buffer.from(next.received.out).equals(Buffer.from(fixture)),
      );
      assert.equal(sending.idle, 1);
      assert.equal(receiving.idle, 1);
    } finally {
      await rx.close();
      sending.close();
      receiving.close();
    }
  },
});
