/**
 * Resumable stream tunnels over real loopback connections through the
 * fault proxy, with captured and synthetic streams (no hypervisor): a link
 * cut mid-stream resumes and the rebuilt stream is byte-identical, its
 * digest verified, with the bytes after the cut bounded by what was
 * unacknowledged plus what was left; xl's answers (BACK frames) survive the
 * cut too; a cut longer than the grace fails both sides, each naming the
 * other; a hostile RESUME is refused and leaves the session to its source.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { concatBytes } from "../bytes.ts";
import { type Fault, faultProxy } from "../_fault_proxy.ts";
import { MigrationError } from "../errors.ts";
import { withDeadline } from "../_precopy_testing.ts";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import {
  connectChannel,
  connectSecurityFromDir,
  listenChannel,
  listenSecurityFromDir,
} from "../transport/secure/mod.ts";
import { credentialsDir } from "../transport/secure/_testing.ts";
import { BANNER, fakeReceiver, READY } from "../xen/_tunnel_testing.ts";
import { buildStream, wrapLikeXl } from "../xen/stream/_test_util.ts";
import { memoryDuplex, type WireConn } from "../wire/duplex.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { encodeFrame, FrameType } from "../wire/frame.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeError,
  encodeHello,
  encodeResume,
  PROTOCOL_VERSION,
} from "../wire/messages.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import {
  type StreamResumeEvent,
  StreamResumeServer,
} from "./resume_receiver.ts";
import { sendStream, type StreamStats } from "./send.ts";
import { xenFormat } from "./xen_format.ts";
import {
  ResumeRegistry,
  SessionEndedError,
} from "../session/resume_registry.ts";

const DEADLINE_MS = 60_000;

type Accepted = WireConn & { close(): void; identity?: string | null };

/** A receiving tunnel: every connection through one resume server. */
function receiving(
  accept: () => Promise<Accepted>,
  options: {
    maxGraceMs: number;
    out: WritableStream<Uint8Array>;
    format: "qemu" | "xen";
    back?: ReadableStream<Uint8Array>;
  },
) {
  const events: StreamResumeEvent[] = [];
  const server = new StreamResumeServer({
    maxGraceMs: options.maxGraceMs,
    onEvent: (e) => events.push(e),
  });
  let settle!: (r: StreamStats | Error) => void;
  const session = new Promise<StreamStats | Error>((r) => settle = r);
  const loop = (async () => {
    for (;;) {
      let conn: Accepted;
      try {
        conn = await accept();
      } catch {
        return; // listener closed
      }
      void server.admit(conn, conn.identity ?? null).then(async (a) => {
        if (a.kind !== "session") return;
        try {
          settle(
            await receiveStream(a.conn, {
              format: options.format,
              out: options.out,
              back: options.back,
              holdLast: options.format === "qemu",
              frameTimeoutMs: 30_000 + options.maxGraceMs,
            }),
          );
        } catch (e) {
          settle(e as Error);
        } finally {
          await a.done("ended");
        }
      });
    }
  })();
  return { server, session, events, loop };
}

function collector() {
  const chunks: Uint8Array[] = [];
  const state = { closed: false, aborted: false };
  return {
    state,
    sink: new WritableStream<Uint8Array>({
      write: (c) => void chunks.push(c.slice()),
      close: () => void (state.closed = true),
      abort: () => void (state.aborted = true),
    }),
    bytes: () => concatBytes(chunks),
  };
}

/** `bytes` in chunks, as a hypervisor writes its stream. */
function fromBytes(
  bytes: Uint8Array,
  chunk = 65536,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a).equals(Buffer.from(b));
}

/** Plain TCP listener on loopback, and a proxy with `faults` in front. */
function plainSetup(faults: (Fault | null)[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxy = faultProxy((listener.addr as Deno.NetAddr).port, faults);
  const connect = () =>
    Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  return { listener, proxy, connect };
}

Deno.test({
  name:
    "stream resume: an xl stream cut mid-stream resumes on a new connection; xl gets the identical stream (digest verified), its answers reach the source, and the bytes after the cut are at most what was unacknowledged plus what was left",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // 3 rounds over 2048 random pages: about 20 MiB of xl stream.
    const stream = wrapLikeXl(
      buildStream({ seed: 3, pfns: 2048, rounds: 3 }).bytes,
    );
    const { listener, proxy, connect } = plainSetup([
      {
        kind: "cut",
        direction: "up",
        afterBytes: Math.floor(stream.length * 0.4),
      },
      null,
    ]);
    const xl = fakeReceiver();
    const rx = receiving(() => listener.accept(), {
      maxGraceMs: 20_000,
      out: xl.peer.writable,
      back: xl.peer.readable,
      format: "xen",
    });
    const back: Uint8Array[] = [];
    let sawBanner!: () => void;
    const bannerSeen = new Promise<void>((r) => sawBanner = r);
    // The source "xl": waits for the banner, then writes its stream.
    const source = new ReadableStream<Uint8Array>({
      async start(c) {
        await bannerSeen;
        for (let at = 0; at < stream.length; at += 65536) {
          c.enqueue(stream.slice(at, at + 65536));
        }
        c.close();
      },
    });
    let reconnects = 0;
    try {
      const conn = await connect();
      const stats = await sendStream(source, conn, {
        format: xenFormat(),
        channels: 2,
        codecs: [{ name: "raw" }],
        back: new WritableStream({
          write: (c) => {
            back.push(c.slice());
            sawBanner();
          },
        }),
        resume: {
          graceMs: 20_000,
          reconnect: () => {
            reconnects++;
            return connect();
          },
        },
      });
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(proxy.fired, "the link was never cut");
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(stats.verified, true);
      assert.equal(received.verified, true);
      assert.equal(stats.digest, received.digest);
      assert.ok(same(xl.bytes(), stream), "xl got another stream");
      assert.ok(
        same(concatBytes(back), concatBytes([BANNER, READY])),
        "xl's answers did not all come back",
      );
      assert.equal(reconnects, 1, JSON.stringify([stats.resumes, rx.events]));
      assert.equal(stats.resumes?.length, 1);
      assert.deepEqual(
        rx.events.map((e) => e.type),
        ["parked", "resumed"],
      );
      // Bytes on the second connection, as the proxy counted them: the
      // resend (at most what the receiver had not acknowledged when the
      // loss was noticed) and what was left to send then, plus RESUME and
      // ACK frames (64 KiB is far more than they take).
      const r = stats.resumes![0];
      const [before, after] = proxy.connections;
      assert.equal(proxy.connections.length, 2);
      assert.ok(r.receiverHeld >= r.acknowledgedAtLoss);
      assert.ok(r.receiverHeld <= before.up);
      const unacknowledged = r.sentAtLoss - r.acknowledgedAtLoss;
      const left = stats.wireBytes - r.sentAtLoss;
      assert.ok(
        after.up <= unacknowledged + left + 65_536,
        `${after.up} bytes after the cut, over ${unacknowledged} unacknowledged + ${left} left`,
      );
      // Exactly: what the receiver lacked, resent once, then the rest.
      assert.ok(
        after.up >= stats.wireBytes - r.receiverHeld,
        `${after.up} bytes after the cut, less than the ${
          stats.wireBytes - r.receiverHeld
        } the receiver lacked`,
      );
      // Not a fresh start: the first connection's bytes were kept.
      assert.ok(r.receiverHeld > 0);
    } finally {
      await proxy.close();
      listener.close();
      await rx.loop;
    }
  },
});

Deno.test({
  name:
    "stream resume: a QEMU stream cut twice (once each way) resumes each time and QEMU gets the captured stream byte for byte",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fixture = firmwareStream();
    const { listener, proxy, connect } = plainSetup([
      { kind: "cut", direction: "up", afterBytes: 60_000 },
      // The second connection loses the receiver's side (its ACKs).
      { kind: "cut", direction: "down", afterBytes: 100 },
      null,
    ]);
    const out = collector();
    const rx = receiving(() => listener.accept(), {
      maxGraceMs: 20_000,
      out: out.sink,
      format: "qemu",
    });
    try {
      const stats = await sendStream(
        fromBytes(fixture, 8192),
        await connect(),
        {
          format: qemuFormat,
          channels: 2,
          codecs: [{ name: "zero" }],
          // A slow link: the cuts come while the stream still flows.
          bandwidth: 400_000,
          resume: { graceMs: 20_000, reconnect: connect },
        },
      );
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(stats.verified, true);
      assert.equal(received.digest, stats.digest);
      assert.ok(same(out.bytes(), fixture));
      assert.ok(out.state.closed && !out.state.aborted);
      assert.equal(stats.resumes?.length, 2);
      assert.equal(proxy.connections.length, 3);
    } finally {
      await proxy.close();
      listener.close();
      await rx.loop;
    }
  },
});

Deno.test({
  name:
    "stream resume: a blackholed link (nothing forwarded, nothing closed) is noticed by the sending tunnel when ACKs stop, and its RESUME takes the session over from the connection the receiving tunnel still holds",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fixture = firmwareStream();
    const { listener, proxy, connect } = plainSetup([
      { kind: "blackhole", direction: "up", afterBytes: 60_000 },
      null,
    ]);
    const out = collector();
    const rx = receiving(() => listener.accept(), {
      maxGraceMs: 20_000,
      out: out.sink,
      format: "qemu",
    });
    try {
      const stats = await sendStream(
        fromBytes(fixture, 8192),
        await connect(),
        {
          format: qemuFormat,
          channels: 1,
          codecs: [{ name: "zero" }],
          bandwidth: 400_000,
          // No ACK for 1 s: the link is taken as lost.
          resume: { graceMs: 20_000, reconnect: connect, stallMs: 1000 },
        },
      );
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(proxy.fired, "the link never went dark");
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(stats.verified, true);
      assert.ok(same(out.bytes(), fixture));
      assert.equal(stats.resumes?.length, 1);
      assert.match(stats.resumes![0].reason, /no ACK for 1000 ms/);
      // The receiving tunnel never saw its first connection fail.
      assert.equal(rx.server.takeovers, 1);
      const parked = rx.events.find((e) => e.type === "parked");
      assert.ok(parked?.type === "parked");
      assert.match(parked.reason, /half-open/);
    } finally {
      await proxy.close();
      listener.close();
      await rx.loop;
    }
  },
});

Deno.test({
  name:
    "stream resume: a cut longer than the grace fails both sides cleanly, each naming the other, and QEMU never gets the stream's end",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fixture = firmwareStream();
    const { listener, proxy, connect } = plainSetup([
      { kind: "cut", direction: "up", afterBytes: 60_000 },
    ]);
    const out = collector();
    // The receiving tunnel keeps a lost session 300 ms.
    const rx = receiving(() => listener.accept(), {
      maxGraceMs: 300,
      out: out.sink,
      format: "qemu",
    });
    try {
      const sent = await sendStream(fromBytes(fixture, 8192), await connect(), {
        format: qemuFormat,
        channels: 1,
        codecs: [{ name: "zero" }],
        bandwidth: 400_000,
        resume: {
          graceMs: 20_000,
          // The link stays down until the receiver gave the session up.
          reconnect: async () => {
            await rx.session;
            return await connect();
          },
        },
      }).catch((e: Error) => e);
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(received instanceof Error, "the receiver did not fail");
      assert.match(
        received.message,
        /The link to the sending tunnel was lost .*no RESUME came within the session's grace of 300 ms/,
      );
      assert.ok(sent instanceof MigrationError, String(sent));
      // The receiving tunnel's first ACK said it keeps the session 300 ms:
      // the source gives up then too.
      assert.match(
        sent.message,
        /^Connection to the receiving tunnel at 127\.0\.0\.1:\d+ lost \(.*\), and 1 reconnection within the grace of 300 ms did not resume the tunnel/,
      );
      assert.ok(out.state.aborted && !out.state.closed);
      assert.ok(out.bytes().length <= fixture.length - 4096);
      assert.ok(same(out.bytes(), fixture.subarray(0, out.bytes().length)));
    } finally {
      await proxy.close();
      listener.close();
      await rx.loop;
    }
  },
});

Deno.test({
  name:
    "stream resume: over TLS, a RESUME from another authenticated source with the right id, one with a wrong id, and an unauthenticated one are refused; the session's own source then resumes it and the stream verifies",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fixture = firmwareStream();
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    const keyB = crypto.getRandomValues(new Uint8Array(32));
    const served = await listenSecurityFromDir(dir, ["src-a", "src-b"]);
    assert.equal(served.kind, "tls");
    const listener = await listenChannel(
      { hostname: "127.0.0.1", port: 0 },
      served.kind === "tls"
        ? { ...served, psk: new Map([...(served.psk ?? []), ["src-b", keyB]]) }
        : served,
    );
    const proxy = faultProxy(listener.addr.port, {
      kind: "cut",
      direction: "up",
      afterBytes: 60_000,
    });
    const at = { hostname: "127.0.0.1", port: proxy.port };
    const asA = await connectSecurityFromDir(dir);
    assert.equal(asA.kind, "tls");
    const asB: typeof asA = asA.kind === "tls"
      ? { kind: "tls", ca: asA.ca, psk: { identity: "src-b", key: keyB } }
      : asA;
    const out = collector();
    const rx = receiving(() => listener.accept(), {
      maxGraceMs: 20_000,
      out: out.sink,
      format: "qemu",
    });
    /** A RESUME by hand; the receiving tunnel's ERROR message. */
    const hostile = async (
      conn: WireConn & { close(): void },
      session: string,
    ) => {
      try {
        await new FrameWriter(conn.writable).write(
          FrameType.RESUME,
          0,
          encodeResume({ session, received: 0 }),
        );
        const frame = await new FrameReader(conn.readable).next();
        assert.equal(frame?.type, FrameType.ERROR);
        return decodeError(frame!.payload).message;
      } finally {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    };
    const refusals: string[] = [];
    let unauthenticated: unknown = null;
    try {
      const stats = await sendStream(
        fromBytes(fixture, 8192),
        await connectChannel(at, asA),
        {
          format: qemuFormat,
          channels: 1,
          codecs: [{ name: "zero" }],
          bandwidth: 400_000,
          resume: {
            graceMs: 20_000,
            reconnect: async () => {
              const parked = rx.events.find((e) => e.type === "parked");
              assert.ok(parked && parked.type === "parked");
              const id = parked.session;
              refusals.push(await hostile(await connectChannel(at, asB), id));
              refusals.push(
                await hostile(
                  await connectChannel(at, asA),
                  id.replace(/^./, (c) => c === "0" ? "1" : "0"),
                ),
              );
              // No credentials at all: plain TCP to the TLS port.
              const bare = await Deno.connect(at);
              unauthenticated = await hostile(bare, id).catch((e) => e);
              return await connectChannel(at, asA);
            },
          },
        },
      );
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(stats.verified, true);
      assert.ok(same(out.bytes(), fixture));
      assert.equal(stats.resumes?.length, 1);
      assert.equal(refusals.length, 2);
      assert.match(
        refusals[0],
        /^No resumable session [0-9a-f]{32} for source "src-b" on this receiver$/,
      );
      assert.match(
        refusals[1],
        /^No resumable session [0-9a-f]{32} for source "src-a" on this receiver$/,
      );
      // The unauthenticated peer never reached the session's server.
      assert.ok(unauthenticated instanceof Error, String(unauthenticated));
      assert.equal(
        rx.events.filter((e) => e.type === "refused").length,
        2,
      );
      assert.equal(rx.server.takeovers, 0);
    } finally {
      await proxy.close();
      listener.close();
      await rx.loop;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("stream resume server: an idle peer, a first frame too large for a HELLO or RESUME, garbage, a RESUME without its byte count and one for an unknown session are refused with an ERROR that says why, before anything is allocated or handed on", async () => {
  const server = new StreamResumeServer({
    maxGraceMs: 1000,
    firstFrameMs: 200,
  });
  const refusal = async (bytes: Uint8Array | null): Promise<string> => {
    const [peer, conn] = memoryDuplex();
    const admitted = server.admit(conn, null);
    const w = peer.writable.getWriter();
    if (bytes) await w.write(bytes);
    const frame = await new FrameReader(peer.readable).next();
    const a = await admitted;
    assert.equal(a.kind, "refused");
    assert.equal(frame?.type, FrameType.ERROR);
    const message = decodeError(frame!.payload).message;
    assert.equal(a.kind === "refused" && a.message, message);
    return message;
  };
  assert.equal(
    await refusal(null),
    "No first frame within 200 ms of connecting: the peer is idle or too slow",
  );
  // A header that announces a 1 MiB HELLO: refused from the header alone.
  const header = encodeFrame(FrameType.HELLO, 0, new Uint8Array(1 << 20))
    .subarray(0, 16);
  assert.match(
    await refusal(header),
    /^The frame at offset 0 announces 1048592 bytes: at most 65552 are taken here$/,
  );
  assert.match(
    await refusal(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
    /^Bad frame magic/,
  );
  const session = "0123456789abcdef0123456789abcdef";
  assert.match(
    await refusal(
      encodeFrame(FrameType.RESUME, 0, encodeResume({ session })),
    ),
    /must say how many bytes the source holds/,
  );
  assert.equal(
    await refusal(
      encodeFrame(FrameType.RESUME, 0, encodeResume({ session, received: 0 })),
    ),
    `No resumable session ${session} for this source on this receiver`,
  );
  assert.equal(server.parked, 0);
});

/**
 * One resumable session on a plain loopback listener (through `proxy`'s
 * faults when given): what the receiving side saw, event by event, with
 * the session's id and when `done` returned.
 */
function oneSession(
  listener: Deno.Listener,
  maxGraceMs: number,
) {
  const events: StreamResumeEvent[] = [];
  const server = new StreamResumeServer({
    maxGraceMs,
    onEvent: (e) => events.push(e),
  });
  const state = { id: null as string | null, done: false };
  const out = collector();
  let settle!: (r: StreamStats | Error) => void;
  const session = new Promise<StreamStats | Error>((r) => settle = r);
  // Every connection through the same server: the session's, its RESUMEs.
  const resumes = (async () => {
    for (;;) {
      let conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // closed
      }
      void server.admit(conn, null).then(async (a) => {
        if (a.kind !== "session") return;
        state.id = a.session;
        try {
          settle(
            await receiveStream(a.conn, {
              format: "qemu",
              out: out.sink,
              frameTimeoutMs: 30_000 + maxGraceMs,
            }),
          );
        } catch (e) {
          settle(e as Error);
        } finally {
          await a.done("ended");
          state.done = true;
        }
      });
    }
  })();
  return { server, events, state, out, session, resumes };
}

Deno.test({
  name:
    "stream resume: a session that ends normally is not taken for a lost link (no 'parked' event, no grace timer left behind), and a RESUME of it afterwards is refused, saying it has ended",
  // The ops sanitizer catches a grace timer a parked session left running.
  sanitizeResources: false,
  fn: async () => {
    const fixture = firmwareStream();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const rx = oneSession(listener, 60_000);
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const stats = await sendStream(fromBytes(fixture), await connect(), {
        format: qemuFormat,
        channels: 1,
        codecs: [{ name: "zero" }],
        resume: { graceMs: 60_000, reconnect: connect },
      });
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(stats.verified, true);
      assert.ok(same(rx.out.bytes(), fixture));
      // The source's close after RESULT is the session's end, not a loss.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(rx.events, []);
      assert.equal(rx.server.parked, 0);
      assert.ok(rx.state.done && rx.state.id !== null);
      // A late RESUME of it: refused with why, the connection closed.
      const late = await connect();
      await new FrameWriter(late.writable).write(
        FrameType.RESUME,
        0,
        encodeResume({ session: rx.state.id!, received: 0 }),
      );
      const reader = new FrameReader(late.readable);
      const frame = await reader.next();
      assert.equal(frame?.type, FrameType.ERROR);
      assert.equal(
        decodeError(frame!.payload).message,
        `Session ${rx.state.id} cannot be resumed: it has ended: ended`,
      );
      assert.equal(await reader.next(), null, "the connection stayed open");
      try {
        late.close();
      } catch { /* closed with its streams */ }
    } finally {
      listener.close();
      await rx.resumes;
    }
  },
});

Deno.test({
  name:
    "stream resume: the source's ABORT, written while its link is down and being resumed, reaches the receiving tunnel, which ends the session at once with the source's reason instead of waiting out its grace",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const fixture = firmwareStream();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = faultProxy((listener.addr as Deno.NetAddr).port, [
      { kind: "cut", direction: "up", afterBytes: 60_000 },
      null,
    ]);
    const rx = oneSession(listener, 20_000);
    const connect = () =>
      Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    // The hypervisor's stream fails while the tunnel reconnects.
    let failSource!: (e: Error) => void;
    let at = 0;
    const source = new ReadableStream<Uint8Array>({
      start(c) {
        failSource = (e) => c.error(e);
      },
      async pull(c) {
        if (at >= fixture.length) return;
        c.enqueue(fixture.slice(at, at + 8192));
        at += 8192;
        if (at >= fixture.length / 2) await new Promise(() => {});
      },
    });
    const started = performance.now();
    try {
      const sent = await sendStream(source, await connect(), {
        format: qemuFormat,
        channels: 1,
        codecs: [{ name: "zero" }],
        resume: {
          graceMs: 20_000,
          reconnect: async () => {
            failSource(new Error("QEMU's stream broke"));
            await new Promise((r) => setTimeout(r, 300));
            return await connect();
          },
        },
      }).catch((e: Error) => e);
      assert.ok(proxy.fired, "the link was never cut");
      assert.ok(sent instanceof Error);
      assert.match(sent.message, /QEMU's stream broke/);
      const received = await withDeadline(
        rx.session,
        "the receiving tunnel",
        DEADLINE_MS,
      );
      assert.ok(received instanceof Error, "the receiver did not fail");
      assert.match(
        received.message,
        /^Source aborted the tunnel: .*QEMU's stream broke/,
      );
      assert.ok(
        performance.now() - started < 10_000,
        "the receiver waited out its grace",
      );
      assert.ok(rx.out.state.aborted && !rx.out.state.closed);
    } finally {
      await proxy.close();
      listener.close();
      await rx.resumes;
    }
  },
});

Deno.test("stream resume: a RESUME that comes as its session ends is refused with an ERROR that says it has ended, and the parked session stops waiting at once (no grace timer left)", async () => {
  const registry = new ResumeRegistry<
    { release(): void; use?(): void }
  >({ maxGraceMs: 60_000 });
  // A RESUME handed over in the same turn as the session's end.
  const session = registry.open(null, 60_000);
  const parked = session.park();
  let released = 0;
  const claimed = registry.claim(session.id, null, {
    release: () => released++,
  });
  session.close("it ended (verified)");
  await assert.rejects(
    parked,
    (e: unknown) =>
      e instanceof SessionEndedError &&
      e.message ===
        `Session ${session.id} cannot be resumed: it has ended: it ended (verified)`,
  );
  await claimed;
  assert.equal(released, 1);
  // A session parked with no RESUME: its end ends the wait (the ops
  // sanitizer would catch a 60 s grace timer left running).
  const other = registry.open(null, 60_000);
  const waiting = other.park();
  other.close("it failed: the source aborted it");
  await assert.rejects(waiting, /has ended: it failed: the source aborted it/);
  // On the wire: a session parked when it ends stops waiting; its RESUME
  // then gets the ERROR that says why, and the connection's end.
  const events: StreamResumeEvent[] = [];
  const server = new StreamResumeServer({
    maxGraceMs: 60_000,
    onEvent: (e) => events.push(e),
  });
  const [source, conn] = memoryDuplex();
  const opening = server.admit(conn, null);
  const w = source.writable.getWriter();
  await w.write(encodeFrame(
    FrameType.HELLO,
    0,
    encodeHello({
      protocol: PROTOCOL_VERSION,
      memoryBytes: 4096,
      pageSize: 4096,
      codecs: [],
      vm: "vm",
      policy: "p",
      channels: 1,
      resumeMs: 60_000,
    }),
  ));
  const a = await opening;
  assert.equal(a.kind, "session");
  if (a.kind !== "session") return;
  await w.close(); // the link is lost: the session parks
  for (let i = 0; i < 100 && events.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(events.map((e) => e.type), ["parked"]);
  await a.done("it failed: the source is gone");
  const [peer, again] = memoryDuplex();
  const resuming = server.admit(again, null);
  await new FrameWriter(peer.writable).write(
    FrameType.RESUME,
    0,
    encodeResume({ session: a.session!, received: 0 }),
  );
  const reader = new FrameReader(peer.readable);
  const frame = await reader.next();
  assert.equal(frame?.type, FrameType.ERROR);
  assert.equal(
    decodeError(frame!.payload).message,
    `Session ${a.session} cannot be resumed: it has ended: it failed: the source is gone`,
  );
  assert.equal((await resuming).kind, "refused");
  assert.equal(server.parked, 0);
});
