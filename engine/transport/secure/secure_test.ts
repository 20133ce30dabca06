import assert from "node:assert/strict";
import tls from "node:tls";
import { join } from "node:path";
import { ChannelAuthError } from "./auth_error.ts";
import { connectChannel } from "./connect.ts";
import {
  connectSecurityFromDir,
  listenSecurityFromDir,
  TLS_FILES,
} from "./credentials.ts";
import type { ChannelConn } from "./channel_conn.ts";
import { type ChannelListener, listenChannel } from "./listen.ts";
import type { ConnectSecurity, ListenSecurity } from "./security.ts";
import { credentialsDir, readAll } from "./_testing.ts";
import { ReceiveBudget } from "../../session/budget.ts";
import { SourceLink } from "../../session/source_link.ts";
import { LinkLostError } from "../../errors.ts";
import { FrameType } from "../../wire/frame.ts";
import { FrameReader } from "../../wire/frame_reader.ts";
import { FrameWriter } from "../../wire/frame_writer.ts";
import { encodeWelcome, PROTOCOL_VERSION } from "../../wire/messages.ts";

const LOOPBACK = { hostname: "127.0.0.1", port: 0 };
/**
 * What a read buffer may hold over its limit: the bytes the TLS layer had
 * already decrypted when the TCP socket stopped (one TCP read: 64 KiB here).
 */
const SLACK_BYTES = 128 * 1024;

/** A TLS listener that records refusals. */
async function receiver(
  security: ListenSecurity,
  authTimeoutMs = 5000,
): Promise<
  {
    listener: ChannelListener;
    refusals: ChannelAuthError[];
    to: { hostname: string; port: number };
  }
> {
  const refusals: ChannelAuthError[] = [];
  const listener = await listenChannel(LOOPBACK, security, {
    authTimeoutMs,
    onRefused: (e) => refusals.push(e),
  });
  return {
    listener,
    refusals,
    to: { hostname: "127.0.0.1", port: listener.addr.port },
  };
}

async function until(ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("a source with a client certificate is authenticated as its CN; bytes cross both ways intact", async () => {
  const dir = await credentialsDir("src-cert");
  const { listener, to } = await receiver(await listenSecurityFromDir(dir));
  try {
    const [server, client] = await Promise.all([
      listener.accept(),
      connectChannel(to, await connectSecurityFromDir(dir)),
    ]);
    assert.equal(server.identity, "src-cert");
    assert.equal(client.identity, "localhost");
    // 4 MiB in 64 KiB writes of one reused buffer: a write must not keep a
    // reference to the caller's bytes.
    const buf = new Uint8Array(65536);
    const expected = new Uint8Array(64 * buf.length);
    const sending = (async () => {
      const w = client.writable.getWriter();
      for (let i = 0; i < 64; i++) {
        buf.fill(i * 3 + 1);
        expected.set(buf, i * buf.length);
        await w.write(buf);
      }
      await w.close();
    })();
    const got = await readAll(server.readable);
    await sending;
    assert.equal(got.length, expected.length);
    assert.deepEqual(got, expected);
    const w = server.writable.getWriter();
    await w.write(new TextEncoder().encode("RESULT"));
    await w.close();
    assert.equal(
      new TextDecoder().decode(await readAll(client.readable)),
      "RESULT",
    );
    server.close();
    client.close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Byte `offset` of the stream the fast source below sends. */
function patternByte(offset: number): number {
  return ((offset >>> 16) * 7 + 1 + (offset % 251)) & 255;
}

Deno.test("a source faster than its receiver's reader: the receiver holds at most its read buffer's limit, and every byte arrives intact", async () => {
  const dir = await credentialsDir("src-fast");
  const LIMIT = 256 * 1024;
  const TOTAL = 24 * 1024 * 1024;
  const listener = await listenChannel(
    LOOPBACK,
    await listenSecurityFromDir(dir),
    { readBufferBytes: LIMIT },
  );
  try {
    const [served, source] = await Promise.all([
      listener.accept(),
      connectChannel(
        { hostname: "127.0.0.1", port: listener.addr.port },
        await connectSecurityFromDir(dir),
      ),
    ]);
    const buffer = served.readBuffer!;
    assert.equal(buffer.limitBytes, LIMIT);
    assert.ok(buffer.bounded, "this Deno's node:tls hides its TCP handle");
    // The source writes as fast as the link takes it.
    const sending = (async () => {
      const w = source.writable.getWriter();
      const chunk = new Uint8Array(65536);
      for (let at = 0; at < TOTAL; at += chunk.length) {
        for (let i = 0; i < chunk.length; i++) chunk[i] = patternByte(at + i);
        await w.write(chunk);
      }
      await w.close();
    })();
    // The receiver reads slowly: a pause every few reads, and one long one.
    const reader = served.readable.getReader();
    let got = 0;
    let reads = 0;
    let mostSeen = 0;
    let bad = -1;
    for (;;) {
      mostSeen = Math.max(mostSeen, buffer.bytes);
      const { value, done } = await reader.read();
      if (done) break;
      for (let i = 0; i < value.length && bad < 0; i++) {
        if (value[i] !== patternByte(got + i)) bad = got + i;
      }
      got += value.length;
      if (++reads === 10) await new Promise((r) => setTimeout(r, 500));
      else if (reads % 8 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await sending;
    assert.equal(bad, -1, `byte ${bad} differs from what was sent`);
    assert.equal(got, TOTAL);
    // It had to stop the source (the reader was behind), and never held
    // more than the limit plus what the TLS layer had decrypted then.
    assert.ok(buffer.peakBytes >= mostSeen);
    assert.ok(
      buffer.peakBytes <= LIMIT + SLACK_BYTES,
      `held ${buffer.peakBytes} bytes, over ${LIMIT} + ${SLACK_BYTES}`,
    );
    assert.ok(buffer.stops > 0, "the socket never stopped reading");
    assert.equal(buffer.bytes, 0);
    served.close();
    source.close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each TLS connection's read buffer counts against the receiver's budget until it closes", async () => {
  const dir = await credentialsDir("src-budget");
  const budget = new ReceiveBudget(1024 * 1024);
  const refusals: ChannelAuthError[] = [];
  const bounded = await listenChannel(
    LOOPBACK,
    await listenSecurityFromDir(dir),
    {
      readBufferBytes: 768 * 1024,
      budget,
      onRefused: (e) => refusals.push(e),
    },
  );
  const at = { hostname: "127.0.0.1", port: bounded.addr.port };
  try {
    const security = await connectSecurityFromDir(dir);
    const [first] = await Promise.all([
      bounded.accept(),
      connectChannel(at, security),
    ]);
    assert.equal(budget.heldBytes, 768 * 1024);
    // A second buffer does not fit beside the first: that source is told why.
    await assert.rejects(
      connectChannel(at, security),
      (e) =>
        e instanceof ChannelAuthError &&
        /The TLS read buffer of 127\.0\.0\.1:\d+ \("src-budget"\) needs 768\.00 KiB, over this receiver's budget/
          .test(e.message),
    );
    await until(() => refusals.length === 1);
    // Closing the first gives its share back: the next source is served.
    first.close();
    await until(() => budget.heldBytes === 0);
    const [second] = await Promise.all([
      bounded.accept(),
      connectChannel(at, security),
    ]);
    assert.equal(budget.heldBytes, 768 * 1024);
    second.close();
    await until(() => budget.heldBytes === 0);
  } finally {
    bounded.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a receiver that closes its TLS connection mid-round: the source's error names the receiver and the round", async () => {
  const dir = await credentialsDir("src-lost");
  const { listener, to } = await receiver(await listenSecurityFromDir(dir));
  try {
    const [served, conn] = await Promise.all([
      listener.accept(),
      connectChannel(to, await connectSecurityFromDir(dir)),
    ]);
    const link = new SourceLink(conn);
    // The receiver's side: WELCOME to HELLO, then a few frames, then gone.
    const receiving = (async () => {
      const reader = new FrameReader(served.readable);
      const writer = new FrameWriter(served.writable);
      assert.equal((await reader.next())?.type, FrameType.HELLO);
      await writer.write(
        FrameType.WELCOME,
        0,
        encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
      );
      for (let i = 0; i < 4; i++) await reader.next();
      served.close();
    })();
    await link.hello({
      protocol: PROTOCOL_VERSION,
      memoryBytes: 1 << 20,
      pageSize: 4096,
      codecs: [{ id: 0, name: "raw" }],
      vm: "lost",
      policy: "p",
      channels: 1,
    });
    const payload = new Uint8Array(256 * 1024);
    const error = await (async () => {
      try {
        for (;;) {
          link.checkPeer();
          await link.write(FrameType.BATCH, 3, payload);
        }
      } catch (e) {
        return e;
      }
    })();
    await receiving;
    assert.ok(error instanceof LinkLostError, String(error));
    assert.match(
      error.message,
      new RegExp(
        `^The receiver 127\\.0\\.0\\.1:${to.port} (closed|reset) the connection during round 3 \\(.+\\)$`,
      ),
    );
    assert.equal(error.side, "receiver");
    assert.equal(error.peer, `127.0.0.1:${to.port}`);
    assert.equal(error.phase, "round 3");
    conn.close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pre-shared keys: the right key is accepted, a wrong one, an unknown identity and an unlisted identity are refused", async () => {
  const dir = await credentialsDir("src-a");
  const keys = new Map([
    ["src-a", new Uint8Array(32).fill(1)],
    ["src-b", new Uint8Array(32).fill(2)],
  ]);
  const base = await listenSecurityFromDir(dir) as Extract<
    ListenSecurity,
    { kind: "tls" }
  >;
  const { listener, refusals, to } = await receiver({
    ...base,
    clientCa: undefined,
    psk: keys,
    authz: ["src-a"],
  });
  const ca = await Deno.readTextFile(join(dir, TLS_FILES.ca));
  const source = (identity: string, fill: number): ConnectSecurity => ({
    kind: "tls",
    ca,
    psk: { identity, key: new Uint8Array(32).fill(fill) },
  });
  try {
    const [server, client] = await Promise.all([
      listener.accept(),
      connectChannel(to, source("src-a", 1)),
    ]);
    assert.equal(server.identity, "src-a");
    server.close();
    client.close();
    for (
      const [identity, fill, reason] of [
        [
          "src-a",
          9,
          /Pre-shared key authentication failed for identity "src-a"/,
        ],
        [
          "nobody",
          1,
          /Pre-shared key authentication failed for identity "nobody"/,
        ],
        ["src-b", 2, /Identity "src-b" is not authorised/],
      ] as const
    ) {
      await assert.rejects(
        connectChannel(to, source(identity, fill)),
        (e: Error) =>
          e instanceof ChannelAuthError &&
          /refused this source/.test(e.message) && reason.test(e.message),
      );
    }
    await until(() => refusals.length === 3);
    // A client certificate is not accepted by a PSK-only receiver.
    await assert.rejects(
      connectChannel(to, await connectSecurityFromDir(dir)),
      /does not accept client certificates/,
    );
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificates: an untrusted client, an untrusted receiver and a misnamed receiver all fail, naming why", async () => {
  const dir = await credentialsDir("src-a");
  const other = await credentialsDir("src-a"); // same names, another CA
  const { listener, refusals, to } = await receiver(
    await listenSecurityFromDir(dir),
  );
  try {
    // The other CA's client certificate: TLS completes, the receiver refuses.
    const foreign = await connectSecurityFromDir(other) as Extract<
      ConnectSecurity,
      { kind: "tls" }
    >;
    await assert.rejects(
      connectChannel(to, {
        ...foreign,
        ca: await Deno.readTextFile(join(dir, TLS_FILES.ca)),
      }),
      /refused this source: The client certificate is not trusted/,
    );
    // A source that trusts only the other CA does not trust this receiver.
    await assert.rejects(
      connectChannel(to, foreign),
      /TLS handshake with receiver .* failed/,
    );
    // The receiver's certificate names localhost and 127.0.0.1, not db.example.
    const mine = await connectSecurityFromDir(dir, {
      serverName: "db.example",
    });
    await assert.rejects(connectChannel(to, mine), /as "db\.example"\) failed/);
    await until(() => refusals.length >= 1);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});

Deno.test("a relayed PSK proof fails: the proof is bound to the TLS session it was made on", async () => {
  // The attacker holds a certificate the source trusts (here: the same CA's
  // receiver certificate, as a compromised second receiver would) and sits
  // between source and receiver, relaying every byte between two TLS sessions.
  const dir = await credentialsDir("src-a");
  const base = await listenSecurityFromDir(dir) as Extract<
    ListenSecurity,
    { kind: "tls" }
  >;
  const key = new Uint8Array(32).fill(5);
  const { listener, refusals, to } = await receiver({
    ...base,
    clientCa: undefined,
    psk: new Map([["src-a", key]]),
  });
  const ca = await Deno.readTextFile(join(dir, TLS_FILES.ca));
  const relay = tls.createServer(
    { cert: base.cert, key: base.key },
    (fromSource) => {
      const toReceiver = tls.connect({
        host: "127.0.0.1",
        port: to.port,
        ca: [ca],
        servername: "localhost",
      });
      fromSource.pipe(toReceiver);
      toReceiver.pipe(fromSource);
      fromSource.on("error", () => toReceiver.destroy());
      toReceiver.on("error", () => fromSource.destroy());
    },
  );
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
  const relayPort = (relay.address() as { port: number }).port;
  try {
    await assert.rejects(
      connectChannel({ hostname: "127.0.0.1", port: relayPort }, {
        kind: "tls",
        ca,
        psk: { identity: "src-a", key },
      }),
      /refused this source: Pre-shared key authentication failed/,
    );
    await until(() => refusals.length === 1);
    // Direct, the same key works.
    const [server, client] = await Promise.all([
      listener.accept(),
      connectChannel(to, { kind: "tls", ca, psk: { identity: "src-a", key } }),
    ]);
    assert.equal(server.identity, "src-a");
    server.close();
    client.close();
  } finally {
    relay.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a receiver without the key cannot pass itself off: the source checks the receiver's proof", async () => {
  const dir = await credentialsDir("src-a");
  const base = await listenSecurityFromDir(dir) as Extract<
    ListenSecurity,
    { kind: "tls" }
  >;
  // A receiver that accepts any AUTH and answers with a made-up proof.
  const fake = tls.createServer({ cert: base.cert, key: base.key }, (s) => {
    s.once("data", () => {
      const accept = new Uint8Array([
        0x48,
        0x4b,
        0x41,
        0x31,
        2,
        0,
        33,
        2,
        ...new Uint8Array(32).fill(7),
      ]);
      s.write(accept);
    });
  });
  await new Promise<void>((r) => fake.listen(0, "127.0.0.1", () => r()));
  const ca = await Deno.readTextFile(join(dir, TLS_FILES.ca));
  try {
    await assert.rejects(
      connectChannel(
        {
          hostname: "127.0.0.1",
          port: (fake.address() as { port: number }).port,
        },
        {
          kind: "tls",
          ca,
          psk: { identity: "src-a", key: new Uint8Array(32).fill(5) },
        },
      ),
      /does not hold the pre-shared key of "src-a"/,
    );
  } finally {
    fake.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("idle, plain-TCP and garbage peers are refused without holding up an honest source", async () => {
  const dir = await credentialsDir("src-a");
  const { listener, refusals, to } = await receiver(
    await listenSecurityFromDir(dir),
    800,
  );
  try {
    const idle = await Deno.connect(to); // never speaks
    const plain = await Deno.connect(to); // a plain-TCP hakobu source's HELLO
    await plain.write(new TextEncoder().encode("HKBU\x02\x00\x00\x00 not TLS"));
    // TLS, then bytes that are not a security handshake.
    const ca = await Deno.readTextFile(join(dir, TLS_FILES.ca));
    const garbage = await Deno.connectTls({ ...to, caCerts: [ca] });
    await garbage.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
    const [server, client] = await Promise.all([
      listener.accept(),
      connectChannel(to, await connectSecurityFromDir(dir)),
    ]);
    assert.equal(server.identity, "src-a");
    server.close();
    client.close();
    await until(() => refusals.length >= 3);
    const text = refusals.map((e) => e.message).join("\n");
    assert.match(text, /did not start the security handshake/);
    assert.match(text, /TLS handshake failed/);
    for (const c of [idle, plain, garbage]) {
      try {
        c.close();
      } catch { /* closed by the receiver */ }
    }
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("credentials: missing and malformed files are named", async () => {
  const dir = await credentialsDir("src-a");
  try {
    await assert.rejects(
      listenSecurityFromDir(join(dir, "nope")),
      /not found \(make one with: hakobu tls init/,
    );
    await Deno.writeTextFile(join(dir, TLS_FILES.psk), "src-a:abcd\n");
    await assert.rejects(
      listenSecurityFromDir(dir),
      /keys\.psk line 1: the key for "src-a" has 2 bytes, fewer than 16/,
    );
    await Deno.writeTextFile(
      join(dir, TLS_FILES.psk),
      `# keys\nsrc a:${"00".repeat(16)}\n`,
    );
    await assert.rejects(
      listenSecurityFromDir(dir),
      /keys\.psk line 2: Bad identity "src a"/,
    );
    await Deno.writeTextFile(
      join(dir, TLS_FILES.psk),
      `x:${"00".repeat(16)}\nx:${"11".repeat(16)}\n`,
    );
    await assert.rejects(listenSecurityFromDir(dir), /"x" is listed twice/);
    await Deno.remove(join(dir, TLS_FILES.psk));
    await Deno.writeTextFile(join(dir, TLS_FILES.serverKey), "not a key");
    await assert.rejects(
      listenSecurityFromDir(dir),
      /server-key\.pem is not a PEM key/,
    );
    await Deno.remove(join(dir, TLS_FILES.clientKey));
    await assert.rejects(
      connectSecurityFromDir(dir),
      /client-cert\.pem and client-key\.pem without the other/,
    );
    await Deno.remove(join(dir, TLS_FILES.ca));
    await assert.rejects(
      connectSecurityFromDir(dir),
      /ca-cert\.pem is missing: a source needs the CA/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a recorded handshake replayed byte for byte gets no session", async () => {
  const dir = await credentialsDir("src-a");
  const base = await listenSecurityFromDir(dir) as Extract<
    ListenSecurity,
    { kind: "tls" }
  >;
  const key = new Uint8Array(32).fill(3);
  const { listener, refusals, to } = await receiver({
    ...base,
    psk: new Map([["src-a", key]]),
  }, 1500);
  // A tap between source and receiver records what the source sent.
  const tap = Deno.listen(LOOPBACK);
  const recorded: Uint8Array[] = [];
  const tapping = (async () => {
    const fromSource = await tap.accept();
    const toReceiver = await Deno.connect(to);
    await Promise.all([
      fromSource.readable.pipeThrough(
        new TransformStream({
          transform(chunk, c) {
            recorded.push(chunk.slice());
            c.enqueue(chunk);
          },
        }),
      ).pipeTo(toReceiver.writable).catch(() => {}),
      toReceiver.readable.pipeTo(fromSource.writable).catch(() => {}),
    ]);
  })();
  const ca = await Deno.readTextFile(join(dir, TLS_FILES.ca));
  try {
    const [server, client] = await Promise.all([
      listener.accept(),
      connectChannel(
        { hostname: "127.0.0.1", port: (tap.addr as Deno.NetAddr).port },
        { kind: "tls", ca, psk: { identity: "src-a", key } },
      ),
    ]);
    const w = client.writable.getWriter();
    await w.write(new TextEncoder().encode("HELLO frame would follow"));
    await w.close();
    await readAll(server.readable);
    server.close();
    client.close();
    await tapping;
    assert.ok(recorded.length > 0);
    // Replay everything the source sent, on a fresh connection.
    const replay = await Deno.connect(to);
    for (const chunk of recorded) await replay.write(chunk);
    let delivered = false;
    listener.accept().then((c) => {
      delivered = true;
      c.close();
    }, () => {});
    await until(() => refusals.length === 1);
    assert.match(refusals[0].message, /TLS handshake failed/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(delivered, false);
    try {
      replay.close();
    } catch { /* closed by the receiver */ }
  } finally {
    tap.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a source killed while the receiver does not read: its stream still ends once the receiver reads on", async () => {
  const dir = await credentialsDir("src-killed");
  const { listener, to } = await receiver(await listenSecurityFromDir(dir));
  // The source, in a process of its own: authenticates, then sends without end.
  const module = (name: string) =>
    JSON.stringify(new URL(`./${name}`, import.meta.url).href);
  const source = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { connectChannel } from ${module("connect.ts")};
       import { connectSecurityFromDir } from ${module("credentials.ts")};
       const conn = await connectChannel(
         { hostname: "127.0.0.1", port: ${to.port} },
         await connectSecurityFromDir(${JSON.stringify(dir)}),
       );
       const writer = conn.writable.getWriter();
       const chunk = new Uint8Array(1 << 16);
       for (;;) await writer.write(chunk);`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  let served: ChannelConn | undefined;
  try {
    served = await listener.accept();
    const reader = served.readable.getReader();
    let bytes = 0;
    while (bytes < 1 << 20) {
      const { value, done } = await reader.read();
      assert.ok(!done, "the source stopped early");
      bytes += value.length;
    }
    // The receiver is busy elsewhere while the source sends on; then the
    // source dies (a TCP FIN after the bytes it had sent).
    await new Promise((r) => setTimeout(r, 1000));
    // Meanwhile its read buffer filled and the TCP socket stopped reading.
    assert.ok(served.readBuffer!.stops > 0, "the socket never stopped");
    assert.ok(
      served.readBuffer!.bytes >= served.readBuffer!.limitBytes,
      `holds ${served.readBuffer!.bytes} bytes`,
    );
    source.kill("SIGKILL");
    await source.status;
    // Reading on must come to the end of the stream (or a reset), not wait
    // for ever: Deno's node:tls never reports a peer lost while its socket
    // is paused, so the streams stop the TCP socket below it instead.
    const drained = (async () => {
      for (;;) {
        const { done } = await reader.read().catch(() => ({ done: true }));
        if (done) return "ended";
      }
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      drained,
      new Promise<string>((r) => timer = setTimeout(() => r("hung"), 30_000)),
    ]);
    clearTimeout(timer);
    assert.equal(outcome, "ended", "the killed source's stream never ended");
  } finally {
    try {
      source.kill("SIGKILL");
    } catch { /* killed above */ }
    await source.status;
    served?.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
