/**
 * Per-channel connections: each channel of a native migration on a
 * connection of its own, opened and encrypted by its Worker on both sides;
 * a channel joins its session only through the same security handshake and
 * the session's token.
 */

import assert from "node:assert/strict";
import { compile, MiB, ms, policy, when } from "../dsl/mod.ts";
import { migrate } from "./precopy.ts";
import {
  ReceiveBudget,
  receiveMigration,
  type ReceiverEvent,
  ResumeRegistry,
} from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import { MigrationError } from "./errors.ts";
import {
  type ChannelConn,
  connectChannel,
  type ConnectSecurity,
  connectSecurityFromDir,
  INSECURE_PLAIN,
  listenChannel,
  type ListenSecurity,
  listenSecurityFromDir,
} from "./transport/secure/mod.ts";
import { credentialsDir } from "./transport/secure/_testing.ts";
import { connectAndJoin } from "./pipeline/_channel_join.ts";
import tls from "node:tls";
import { encodeAuthMessage } from "./transport/secure/auth_message.ts";
import { readAuthMessage } from "./transport/secure/read_auth.ts";
import { socketStreams } from "./transport/secure/channel_conn.ts";
import { SourceLink } from "./session/source_link.ts";
import {
  decodeHello,
  decodeJoin,
  encodeHello,
  encodeJoined,
  encodeWelcome,
  PROTOCOL_VERSION,
} from "./wire/messages.ts";
import { FrameType } from "./wire/frame.ts";
import { FrameReader } from "./wire/frame_reader.ts";
import { FrameWriter } from "./wire/frame_writer.ts";
import { withDeadline } from "./_precopy_testing.ts";
import { DecoderPool } from "./pipeline/decoder_pool.ts";

const AT = { hostname: "127.0.0.1", port: 0 };

/** A receiver for one session over `security`, granting per-channel connections. */
async function receiver(
  security: ListenSecurity,
  options: {
    joinTimeoutMs?: number;
    events?: ReceiverEvent[];
    frameTimeoutMs?: number;
  } = {},
) {
  const listener = await listenChannel(AT, security);
  let sink: SimMemorySink | null = null;
  const received = (async () => {
    const conn = await listener.accept();
    try {
      return await receiveMigration(conn, {
        createSink: (h) =>
          sink = new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
        channelConnections: {
          hostname: "127.0.0.1",
          security,
          identity: conn.identity,
          joinTimeoutMs: options.joinTimeoutMs,
        },
        onEvent: (e) => options.events?.push(e),
        frameTimeoutMs: options.frameTimeoutMs,
      });
    } finally {
      conn.close();
    }
  })();
  received.catch(() => {});
  return {
    port: listener.addr.port,
    received,
    sink: () => sink,
    close: () => listener.close(),
  };
}

for (const kind of ["tls", "plain"] as const) {
  Deno.test({
    name:
      `channel connections: a 2-channel migration over ${kind} connections of its own per channel verifies end to end`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const dir = await credentialsDir("src-a", ["127.0.0.1"]);
      const listen = kind === "tls"
        ? await listenSecurityFromDir(dir, ["src-a"])
        : INSECURE_PLAIN;
      const connect = kind === "tls"
        ? await connectSecurityFromDir(dir)
        : INSECURE_PLAIN;
      const events: ReceiverEvent[] = [];
      const r = await receiver(listen, { events });
      await using vm = await SimVm.create({
        memoryBytes: MiB(16),
        workload: "unique",
        seed: 3,
        dirtyRate: 300,
      });
      const to = { hostname: "127.0.0.1", port: r.port };
      try {
        const conn = await connectChannel(to, connect);
        const report = await withDeadline(
          migrate({
            plan: compile(policy("pc").switchover(when.rounds(3))),
            source: vm,
            conn,
            channels: 2,
            channelConnections: { to, security: connect },
          }),
          "the migration",
          // Generous: the first Worker of a fresh cache type-checks its
          // module graph first, which takes long on a loaded machine.
          180_000,
        ).finally(() => conn.close());
        const received = await r.received;
        assert.equal(report.verified, true, report.outcome);
        assert.equal(report.channelConnections, true);
        assert.equal(received.verified, true);
        assert.equal(received.channels, 2);
        assert.equal(received.digest, report.digest);
        // Every round ended on both channel connections, and their bytes count.
        assert.equal(received.rounds, report.rounds.length);
        assert.ok(received.bytesReceived >= report.rawBytes / 2);
        const joined = events.filter((e) => e.type === "channelJoined");
        assert.deepEqual(
          joined.map((e) => e.type === "channelJoined" && e.channel).sort(),
          [0, 1],
        );
        assert.deepEqual(r.sink()!.memory, new Uint8Array(vm.shared));
        assert.equal(r.sink()!.state, "committed");
      } finally {
        r.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "channel connections: a receiver whose channel Workers take 3 s to listen (a cold module cache, made deterministic) still welcomes a source whose reply deadline is 1 s: it says it is starting (STARTING), and the migration verifies",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const events: ReceiverEvent[] = [];
    const r = await receiver(INSECURE_PLAIN, { events });
    // Every decode Worker listens 3 s late, as a cold start under load.
    const listen = DecoderPool.prototype.listen;
    DecoderPool.prototype.listen = async function (this: DecoderPool, ...a) {
      await new Promise((res) => setTimeout(res, 3000));
      return await listen.apply(this, a);
    };
    await using vm = await SimVm.create({
      memoryBytes: MiB(4),
      workload: "unique",
    });
    const to = { hostname: "127.0.0.1", port: r.port };
    try {
      const conn = await connectChannel(to, INSECURE_PLAIN);
      const t0 = performance.now();
      const report = await withDeadline(
        migrate({
          plan: compile(
            policy("short-reply").switchover(when.rounds(2)).deadlines({
              reply: ms(1000),
            }),
          ),
          source: vm,
          conn,
          channels: 2,
          channelConnections: { to, security: INSECURE_PLAIN },
        }),
        "the migration",
        // Generous: the first Worker of a fresh cache type-checks its
        // module graph first, which takes long on a loaded machine.
        180_000,
      ).finally(() => conn.close());
      assert.equal(report.verified, true, report.outcome);
      assert.equal(report.channelConnections, true);
      assert.ok(
        performance.now() - t0 >= 3000,
        "the Workers' start was not slowed: the test proves nothing",
      );
      assert.equal((await r.received).verified, true);
    } finally {
      DecoderPool.prototype.listen = listen;
      r.close();
    }
  },
});

Deno.test({
  name:
    "channel connections: while its channel Workers start, the receiver sends STARTING before WELCOME as often as HELLO's keepAliveMs asks, and none to a HELLO without it (a source from before STARTING)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Every decode Worker listens 1 s late.
    const listen = DecoderPool.prototype.listen;
    DecoderPool.prototype.listen = async function (this: DecoderPool, ...a) {
      await new Promise((res) => setTimeout(res, 1000));
      return await listen.apply(this, a);
    };
    try {
      for (const keepAliveMs of [100, undefined]) {
        const r = await receiver(INSECURE_PLAIN);
        const conn = await connectChannel(
          { hostname: "127.0.0.1", port: r.port },
          INSECURE_PLAIN,
        );
        try {
          await new FrameWriter(conn.writable).write(
            FrameType.HELLO,
            0,
            encodeHello({
              protocol: PROTOCOL_VERSION,
              memoryBytes: MiB(1),
              pageSize: 4096,
              codecs: [{ id: 0, name: "raw" }],
              vm: "sim",
              policy: "p",
              channels: 2,
              channelConnections: true,
              ...(keepAliveMs ? { keepAliveMs } : {}),
            }),
          );
          const reader = new FrameReader(conn.readable);
          const types: number[] = [];
          for (;;) {
            const f = await withDeadline(reader.next(), "a frame", 180_000);
            types.push(f!.type);
            if (f!.type !== FrameType.STARTING) break;
          }
          assert.equal(types.at(-1), FrameType.WELCOME);
          const starting = types.length - 1;
          if (keepAliveMs) {
            // 1 s of start at one per 100 ms (timers run late under load).
            assert.ok(
              starting >= 5 && starting <= 11,
              `${starting} STARTING frames`,
            );
          } else assert.equal(starting, 0);
        } finally {
          conn.close();
          await r.received.catch(() => {});
          r.close();
        }
      }
    } finally {
      DecoderPool.prototype.listen = listen;
    }
  },
});

Deno.test({
  name:
    "channel connections: a receiver bounds its channel Workers' start by its frame timeout, and the source is told why",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await receiver(INSECURE_PLAIN, { frameTimeoutMs: 500 });
    const listen = DecoderPool.prototype.listen;
    DecoderPool.prototype.listen = async function (this: DecoderPool, ...a) {
      await new Promise((res) => setTimeout(res, 2000));
      return await listen.apply(this, a);
    };
    const conn = await connectChannel(
      { hostname: "127.0.0.1", port: r.port },
      INSECURE_PLAIN,
    );
    try {
      const words =
        /The receiver's 2 channel Workers did not start within 500 ms \(the frame timeout\)/;
      await assert.rejects(
        new SourceLink(conn).hello({
          protocol: PROTOCOL_VERSION,
          memoryBytes: MiB(1),
          pageSize: 4096,
          codecs: [{ id: 0, name: "raw" }],
          vm: "sim",
          policy: "p",
          channels: 2,
          channelConnections: true,
        }),
        (e: Error) =>
          /^Receiver refused the migration: /.test(e.message) &&
          words.test(e.message),
      );
      await assert.rejects(r.received, words);
    } finally {
      DecoderPool.prototype.listen = listen;
      conn.close();
      r.close();
    }
  },
});

Deno.test({
  name:
    "channel connections: a receiver that does not grant them gets every channel inside the one connection",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const listener = await listenChannel(AT, INSECURE_PLAIN);
    const received = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          createSink: (h) =>
            new SimMemorySink({
              pageSize: h.pageSize,
              pageCount: h.memoryBytes / h.pageSize,
            }),
        });
      } finally {
        conn.close();
      }
    })();
    await using vm = await SimVm.create({
      memoryBytes: MiB(4),
      workload: "unique",
    });
    const to = { hostname: "127.0.0.1", port: listener.addr.port };
    try {
      const conn = await connectChannel(to, INSECURE_PLAIN);
      const report = await migrate({
        plan: compile(policy("old").switchover(when.rounds(2))),
        source: vm,
        conn,
        channels: 2,
        channelConnections: { to, security: INSECURE_PLAIN },
      }).finally(() => conn.close());
      assert.equal(report.verified, true);
      assert.equal(report.channelConnections, false);
      assert.equal((await received).verified, true);
    } finally {
      listener.close();
    }
  },
});

Deno.test({
  name:
    "channel connections: hostile joins — a wrong token, another session, the wrong channel, another (admitted) identity, an unadmitted identity, a certificate of another CA, no certificate, plain TCP — are refused, and no byte reaches memory",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    const other = await credentialsDir("src-a", ["127.0.0.1"]);
    const keyB = crypto.getRandomValues(new Uint8Array(32));
    const keyC = crypto.getRandomValues(new Uint8Array(32));
    const served = await listenSecurityFromDir(dir, ["src-a", "src-b"]);
    assert.equal(served.kind, "tls");
    // src-b is admitted (its own sessions); src-c holds a key but is not.
    const security: ListenSecurity = served.kind === "tls"
      ? {
        ...served,
        psk: new Map([...(served.psk ?? []), ["src-b", keyB], [
          "src-c",
          keyC,
        ]]),
      }
      : served;
    const events: ReceiverEvent[] = [];
    const r = await receiver(security, { events, joinTimeoutMs: 20_000 });
    const asA = await connectSecurityFromDir(dir);
    assert.equal(asA.kind, "tls");
    if (asA.kind !== "tls") return;
    const asB: ConnectSecurity = {
      kind: "tls",
      ca: asA.ca,
      psk: { identity: "src-b", key: keyB },
    };
    const asC: ConnectSecurity = {
      kind: "tls",
      ca: asA.ca,
      psk: { identity: "src-c", key: keyC },
    };
    const otherCa = await connectSecurityFromDir(other);
    assert.equal(otherCa.kind, "tls");
    if (otherCa.kind !== "tls") return;
    // Trusts the receiver, but its client certificate is another CA's.
    const foreignCert: ConnectSecurity = {
      kind: "tls",
      ca: asA.ca,
      client: otherCa.client,
    };
    const to = { hostname: "127.0.0.1", port: r.port };
    let main: ChannelConn | null = null;
    try {
      main = await connectChannel(to, asA);
      const link = new SourceLink(main);
      const welcome = await link.hello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: MiB(2),
        pageSize: 4096,
        codecs: [{ id: 0, name: "raw" }],
        vm: "sim",
        policy: "p",
        channels: 2,
        channelConnections: true,
      });
      const join = welcome.channelJoin!;
      assert.equal(join.ports.length, 2);
      const port0 = { hostname: "127.0.0.1", port: join.ports[0] };
      const good = { session: join.session, token: join.token, channel: 0 };
      const flip = (hex: string) => (hex[0] === "0" ? "1" : "0") + hex.slice(1);
      const refused = async (
        security: ConnectSecurity,
        j: typeof good,
        words: RegExp,
      ) =>
        await assert.rejects(
          connectAndJoin(port0, security, j, 5000),
          (e: Error) => words.test(e.message),
        );
      await refused(
        asA,
        { ...good, token: flip(good.token) },
        /No session [0-9a-f]{32} with that token waits/,
      );
      await refused(
        asA,
        { ...good, session: flip(good.session) },
        /No session [0-9a-f]{32} with that token waits/,
      );
      await refused(
        asA,
        { ...good, channel: 1 },
        /This port takes channel 0 of session [0-9a-f]{32}, not channel 1/,
      );
      await refused(
        asB,
        good,
        /authenticated as "src-b", but session [0-9a-f]{32}'s source as "src-a"/,
      );
      await refused(asC, good, /"src-c" is not authorised/);
      await refused(foreignCert, good, /client certificate is not trusted/);
      // No client certificate at all, though AUTH claims one.
      const bare = tls.connect({
        host: "127.0.0.1",
        port: port0.port,
        ca: [asA.ca],
        minVersion: "TLSv1.3",
        checkServerIdentity: () => undefined,
      });
      await new Promise((resolve, reject) => {
        bare.once("secureConnect", resolve);
        bare.once("error", reject);
      });
      const streams = socketStreams(bare);
      const w = streams.writable.getWriter();
      await w.write(
        encodeAuthMessage({
          type: "auth",
          method: "certificate",
          identity: "",
          proof: new Uint8Array(),
        }),
      );
      const answer = await readAuthMessage(
        streams.readable,
        5000,
        "the answer",
        "receiver",
      );
      assert.equal(answer.type, "refuse");
      assert.match(
        answer.type === "refuse" ? answer.reason : "",
        /No client certificate was presented/,
      );
      bare.destroy();
      // Plain TCP to a TLS port: the handshake fails, nothing is read.
      const plain = await Deno.connect(port0);
      await plain.write(new TextEncoder().encode("HK not TLS"));
      const reply = new Uint8Array(64);
      await plain.read(reply).catch(() => null);
      plain.close();
      // None of them reached memory, and the session still waits for its channels.
      assert.ok(r.sink()!.memory.every((b) => b === 0));
      assert.ok(
        events.filter((e) => e.type === "channelRefused").length >= 7,
        JSON.stringify(events),
      );
      assert.equal(events.some((e) => e.type === "channelJoined"), false);
      // The session's own source joins both channels with the token.
      const joined = await Promise.all(
        [0, 1].map((channel) =>
          connectAndJoin(
            { hostname: "127.0.0.1", port: join.ports[channel] },
            asA,
            { ...good, channel },
            5000,
          )
        ),
      );
      await link.abort("test over");
      const outcome = await r.received;
      assert.equal(outcome.aborted, true);
      for (const j of joined) j.conn.close();
    } finally {
      main?.close();
      r.close();
      await Deno.remove(dir, { recursive: true });
      await Deno.remove(other, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "channel connections: their TLS read buffers count against the receiver's budget: a session they do not fit beside its memory is refused before any port listens",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    const security = await listenSecurityFromDir(dir, ["src-a"]);
    const connect = await connectSecurityFromDir(dir);
    const listener = await listenChannel(AT, security);
    // The memory (4 MiB) and one channel's read buffer (4 MiB) fit; two do not.
    const budget = new ReceiveBudget(MiB(4) + MiB(4));
    const events: ReceiverEvent[] = [];
    const received = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          createSink: (h) =>
            new SimMemorySink({
              pageSize: h.pageSize,
              pageCount: h.memoryBytes / h.pageSize,
            }),
          budget,
          channelConnections: {
            hostname: "127.0.0.1",
            security,
            identity: conn.identity,
          },
          onEvent: (e) => events.push(e),
        });
      } finally {
        conn.close();
      }
    })();
    received.catch(() => {});
    await using vm = await SimVm.create({
      memoryBytes: MiB(4),
      workload: "unique",
    });
    const to = { hostname: "127.0.0.1", port: listener.addr.port };
    try {
      const conn = await connectChannel(to, connect);
      await assert.rejects(
        migrate({
          plan: compile(policy("b").switchover(when.rounds(2))),
          source: vm,
          conn,
          channels: 2,
          channelConnections: { to, security: connect },
        }).finally(() => conn.close()),
        /Receiver refused the migration: The TLS read buffer of each of 2 channel connections \(4\.00 MiB each\) needs 8\.00 MiB, over this receiver's budget/,
      );
      await assert.rejects(received, /over this receiver's budget/);
      assert.equal(vm.paused, false);
      assert.equal(events.some((e) => e.type === "hello"), false);
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "channel connections: a channel that never joins fails the session within the join timeout, and the memory is discarded",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await receiver(INSECURE_PLAIN, { joinTimeoutMs: 300 });
    const to = { hostname: "127.0.0.1", port: r.port };
    const main = await connectChannel(to, INSECURE_PLAIN);
    try {
      const link = new SourceLink(main);
      const welcome = await link.hello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: MiB(1),
        pageSize: 4096,
        codecs: [{ id: 0, name: "raw" }],
        vm: "sim",
        policy: "p",
        channels: 2,
        channelConnections: true,
      });
      // Channel 0 joins; channel 1 never does.
      const j = await connectAndJoin(
        { hostname: "127.0.0.1", port: welcome.channelJoin!.ports[0] },
        INSECURE_PLAIN,
        { ...welcome.channelJoin!, channel: 0 },
        5000,
      );
      await assert.rejects(
        r.received,
        /No connection joined channel 1 of session [0-9a-f]{32} within 300 ms/,
      );
      assert.equal(r.sink()!.state, "discarded");
      j.conn.close();
    } finally {
      main.close();
      r.close();
    }
  },
});

Deno.test({
  name:
    "channel connections: a channel connection cut mid-migration fails it cleanly: the source VM runs on, the receiver discards",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    const listen = await listenSecurityFromDir(dir, ["src-a"]);
    const connect = await connectSecurityFromDir(dir);
    const r = await receiver(listen);
    await using vm = await SimVm.create({
      memoryBytes: MiB(64),
      workload: "random",
      seed: 5,
    });
    const to = { hostname: "127.0.0.1", port: r.port };
    try {
      const conn = await connectChannel(to, connect);
      let cut = false;
      const failed = await migrate({
        // 20 MB/s: the first round takes seconds, the cut lands inside it.
        plan: compile(
          policy("slow").bandwidth("160Mbit").switchover(when.rounds(3)),
        ),
        source: vm,
        conn,
        channels: 2,
        channelConnections: { to, security: connect },
        onProgress: (p) => {
          if (!cut && p.pagesDone > 1000) {
            cut = true;
            // Channel 1's Worker dies with its connection.
            channels!.kill(1);
          }
        },
        onChannels: (c) => channels = c,
      }).then(
        () => null,
        (e: Error) => e,
      ).finally(() => conn.close());
      assert.ok(cut, "the cut happened");
      assert.ok(failed instanceof MigrationError, String(failed));
      assert.equal(vm.paused, false);
      // The receiver learns it from a lost channel connection (the cut one,
      // or another the failing source closed), or from the source's ABORT.
      const outcome = await r.received.catch((e: Error) => e);
      assert.ok(
        outcome instanceof Error
          ? /Channel [01]'s connection (was lost|closed before its last round)/
            .test(outcome.message)
          : outcome.aborted,
        String(outcome instanceof Error ? outcome : JSON.stringify(outcome)),
      );
      assert.equal(r.sink()!.state, "discarded");
    } finally {
      r.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
let channels: { kill(channel: number): void } | null = null;

Deno.test({
  name:
    "channel connections: a receiver that fails mid-migration closes every channel connection; the source stops at once with the receiver's words, its VM running",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    const security = await listenSecurityFromDir(dir, ["src-a"]);
    const connect = await connectSecurityFromDir(dir);
    const listener = await listenChannel(AT, security);
    let sink: SimMemorySink | null = null;
    const received = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          createSink: (h) =>
            sink = new SimMemorySink({
              pageSize: h.pageSize,
              pageCount: h.memoryBytes / h.pageSize,
            }),
          channelConnections: {
            hostname: "127.0.0.1",
            security,
            identity: conn.identity,
          },
          // The destination gives up after the first round.
          onEvent: (e) => {
            if (e.type === "round") throw new Error("destination went away");
          },
        });
      } finally {
        conn.close();
      }
    })();
    received.catch(() => {});
    await using vm = await SimVm.create({
      memoryBytes: MiB(16),
      workload: "unique",
      dirtyRate: 2000,
    });
    const to = { hostname: "127.0.0.1", port: listener.addr.port };
    try {
      const conn = await connectChannel(to, connect);
      const failed = await withDeadline(
        migrate({
          plan: compile(policy("f").switchover(when.rounds(30))),
          source: vm,
          conn,
          channels: 2,
          channelConnections: { to, security: connect },
        }).then(() => null, (e: Error) => e).finally(() => conn.close()),
        "the source's failure",
        180_000,
      );
      assert.ok(failed instanceof MigrationError, String(failed));
      assert.match(failed.message, /destination went away/);
      assert.equal(vm.paused, false);
      await assert.rejects(received, /destination went away/);
      assert.equal(sink!.state, "discarded");
    } finally {
      listener.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "channel connections: a resumable session takes them: WELCOME grants a resume id beside channelJoin, and RESUMED a fresh token on fresh ports (the old token refused there)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const listener = await listenChannel(AT, INSECURE_PLAIN);
    const registry = new ResumeRegistry();
    const events: ReceiverEvent[] = [];
    const sessions: Promise<unknown>[] = [];
    const serving = (async () => {
      for (;;) {
        let conn: ChannelConn;
        try {
          conn = await listener.accept();
        } catch {
          return;
        }
        const s = receiveMigration(conn, {
          createSink: (h) =>
            new SimMemorySink({
              pageSize: h.pageSize,
              pageCount: h.memoryBytes / h.pageSize,
            }),
          resume: { registry, identity: conn.identity },
          channelConnections: {
            hostname: "127.0.0.1",
            security: INSECURE_PLAIN,
            identity: conn.identity,
          },
          onEvent: (e) => events.push(e),
        }).finally(() => conn.close());
        s.catch(() => {});
        sessions.push(s);
      }
    })();
    const to = { hostname: "127.0.0.1", port: listener.addr.port };
    const joined: ChannelConn[] = [];
    const first = await connectChannel(to, INSECURE_PLAIN);
    let second: ChannelConn | null = null;
    let resumedLink: SourceLink | null = null;
    try {
      const welcome = await new SourceLink(first).hello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: MiB(1),
        pageSize: 4096,
        codecs: [{ id: 0, name: "raw" }],
        vm: "sim",
        policy: "p",
        channels: 2,
        resumeMs: 20_000,
        channelConnections: true,
      });
      assert.match(
        welcome.session ?? "",
        /^[0-9a-f]{32}$/,
        "WELCOME granted no resume id",
      );
      const before = welcome.channelJoin;
      assert.ok(before, "WELCOME granted no channelJoin beside the resume id");
      for (const channel of [0, 1]) {
        const j = await connectAndJoin(
          { hostname: "127.0.0.1", port: before.ports[channel] },
          INSECURE_PLAIN,
          { session: before.session, token: before.token, channel },
          5000,
        );
        joined.push(j.conn);
      }
      // The session's connection is lost: the session parks.
      first.close();
      await withDeadline(
        (async () => {
          while (!events.some((e) => e.type === "parked")) {
            await new Promise((r) => setTimeout(r, 20));
          }
        })(),
        "the parked session",
        10_000,
      );
      second = await connectChannel(to, INSECURE_PLAIN);
      resumedLink = new SourceLink(second);
      const resumed = await resumedLink.resume(welcome.session!);
      assert.deepEqual(resumed.channelPages, [0, 0], "pages held per channel");
      const after = resumed.channelJoin;
      assert.ok(after, "RESUMED names no channelJoin");
      assert.equal(
        after.session,
        before.session,
        "the channel session id changed",
      );
      assert.notEqual(
        after.token,
        before.token,
        "RESUMED's token is not fresh",
      );
      for (const c of [0, 1]) {
        assert.ok(
          !before.ports.includes(after.ports[c]),
          `channel ${c}'s port is not fresh`,
        );
      }
      // The lost connections' token no longer joins.
      await assert.rejects(
        connectAndJoin(
          { hostname: "127.0.0.1", port: after.ports[0] },
          INSECURE_PLAIN,
          { session: before.session, token: before.token, channel: 0 },
          5000,
        ),
        /Receiver refused channel 0's connection: No session [0-9a-f]{32} with that token waits/,
      );
      const j = await connectAndJoin(
        { hostname: "127.0.0.1", port: after.ports[0] },
        INSECURE_PLAIN,
        { session: after.session, token: after.token, channel: 0 },
        5000,
      );
      joined.push(j.conn);
      // Ends the session at once (it would park again for its grace).
      await resumedLink.abort("the test is over");
    } finally {
      for (const c of [...joined, first, ...(second ? [second] : [])]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      listener.close();
      await serving;
      await Promise.allSettled(sessions);
    }
  },
});

Deno.test({
  name:
    "channel connections: a channel connection that takes no more bytes (a receiver that stopped reading it) fails the source at its reply deadline, its VM running",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A receiver by hand: it grants channel connections, joins both, then
    // never reads them.
    const main = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const ports = [0, 1].map(() =>
      Deno.listen({ hostname: "127.0.0.1", port: 0 })
    );
    const held: Deno.Conn[] = [];
    const session = "0123456789abcdef0123456789abcdef";
    const token = "fedcba9876543210fedcba9876543210";
    const receiver = (async () => {
      const conn = await main.accept();
      held.push(conn);
      const reader = new FrameReader(conn.readable);
      const writer = new FrameWriter(conn.writable);
      const hello = decodeHello((await reader.next())!.payload);
      assert.equal(hello.channelConnections, true);
      await writer.write(
        FrameType.WELCOME,
        0,
        encodeWelcome({
          protocol: PROTOCOL_VERSION,
          accepted: true,
          channelJoin: {
            session,
            token,
            ports: ports.map((l) => (l.addr as Deno.NetAddr).port),
          },
        }),
      );
      await Promise.all(ports.map(async (l) => {
        const c = await l.accept();
        held.push(c);
        const r = new FrameReader(c.readable);
        const join = decodeJoin((await r.next())!.payload);
        await new FrameWriter(c.writable).write(
          FrameType.JOINED,
          0,
          encodeJoined({ channel: join.channel }),
        );
        // ... and nothing is read from here on.
      }));
    })();
    receiver.catch(() => {});
    await using vm = await SimVm.create({
      memoryBytes: MiB(64),
      workload: "random",
      seed: 2,
    });
    const to = {
      hostname: "127.0.0.1",
      port: (main.addr as Deno.NetAddr).port,
    };
    try {
      const conn = await connectChannel(to, INSECURE_PLAIN);
      const failed = await withDeadline(
        migrate({
          plan: compile(
            policy("stall").switchover(when.rounds(3)).deadlines({
              reply: ms(800),
            }),
          ),
          source: vm,
          conn,
          channels: 2,
          channelConnections: { to, security: INSECURE_PLAIN },
        }).then(() => null, (e: Error) => e).finally(() => conn.close()),
        "the source's failure",
        180_000,
      );
      assert.ok(failed instanceof MigrationError, String(failed));
      assert.match(
        failed.message,
        /Channel [01]'s connection took no bytes for 800 ms \(the reply deadline\)/,
      );
      assert.equal(vm.paused, false);
    } finally {
      for (const c of held) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      main.close();
      for (const l of ports) l.close();
    }
  },
});
