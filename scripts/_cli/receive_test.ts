/**
 * `hakobu receive` as a long-running server among bad peers: one session
 * held open mid-migration, an idle connection, one beyond `--max-sessions`,
 * a connection reset before it was accepted — and a real migration through
 * all of that, verified.
 */

import assert from "node:assert/strict";
import { withDeadline } from "../../engine/_precopy_testing.ts";
import {
  decodeError,
  encodeFrame,
  encodeHello,
  FrameReader,
  FrameType,
} from "../../engine/wire/mod.ts";
import { HAKOBU, hakobu, ROOT } from "./_cli_testing.ts";

const DEADLINE_MS = 60_000;

/** Reads frames until the receiver closes; returns their type names and ERROR messages. */
async function framesUntilClosed(conn: Deno.Conn): Promise<string[]> {
  const reader = new FrameReader(conn.readable);
  const out: string[] = [];
  for (;;) {
    const f = await withDeadline(reader.next(), "a frame or EOF", DEADLINE_MS)
      .catch((e) => {
        if (String(e).includes("Timed out")) throw e;
        return null; // reset by the receiver
      });
    if (!f) return out;
    out.push(
      f.type === FrameType.ERROR
        ? `ERROR ${decodeError(f.payload).message}`
        : String(f.type),
    );
  }
}

/** Connects and resets at once (SO_LINGER 0), as a client that dies does. */
async function resetConnection(port: number): Promise<void> {
  const py = [
    "import socket, struct, sys",
    "s = socket.socket()",
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))",
    "s.connect(('127.0.0.1', int(sys.argv[1])))",
    "s.close()",
  ].join("\n");
  const r = await new Deno.Command("python3", {
    args: ["-c", py, String(port)],
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
}

/** A `hakobu receive` subprocess, its output read as it comes. */
interface Served {
  readonly port: number;
  /** Everything printed on stdout so far. */
  stdout(): string;
  /** Waits until stdout matches `re`; returns the match. */
  untilLine(re: RegExp, what: string): Promise<string>;
  /** Sends a signal to the receiver process. */
  kill(signal: Deno.Signal): void;
  /** Stops it (SIGTERM) and waits for it. */
  stop(): Promise<void>;
}

/** Starts `hakobu receive --listen 127.0.0.1:0 --json` with `flags`. */
async function serveReceiver(flags: readonly string[]): Promise<Served> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      HAKOBU,
      "receive",
      "--insecure-plain",
      "--listen",
      "127.0.0.1:0",
      "--json",
      ...flags,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const untilLine = async (re: RegExp, what: string): Promise<string> => {
    await withDeadline(
      (async () => {
        while (!re.test(stdout)) {
          const { value, done } = await lines.read();
          if (done) throw new Error(`receiver exited: ${stdout}`);
          stdout += value;
        }
      })(),
      what,
      DEADLINE_MS,
    );
    return stdout.match(re)![0];
  };
  const port = Number(
    (await untilLine(/listening on [^:]+:(\d+)/, "the port")).split(":").at(-1),
  );
  return {
    port,
    stdout: () => stdout,
    untilLine,
    kill: (signal) => Deno.kill(child.pid, signal),
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await lines.cancel().catch(() => {});
      await child.status;
      await stderr;
    },
  };
}

Deno.test({
  name:
    "hakobu receive serves a migration beside a held session and an idle peer, refuses one beyond --max-sessions, survives a reset before accept",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const receiver = await serveReceiver([
      "--max-sessions",
      "2",
      "--handshake-timeout",
      "3000",
      "--frame-timeout",
      "60000",
    ]);
    const { port, untilLine } = receiver;
    const conns: Deno.Conn[] = [];
    try {
      // 1. A session that sends a valid HELLO, then nothing: it holds a slot.
      const held = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(held);
      const heldWriter = held.writable.getWriter();
      await heldWriter.write(encodeFrame(
        FrameType.HELLO,
        0,
        encodeHello({
          protocol: 2,
          memoryBytes: 16 * 4096,
          pageSize: 4096,
          codecs: [{ id: 0, name: "raw" }],
          vm: "held\nVERIFIED: forged",
          policy: "p",
          channels: 1,
        }),
      ));
      const heldReader = new FrameReader(held.readable);
      assert.equal(
        (await withDeadline(heldReader.next(), "WELCOME", DEADLINE_MS))?.type,
        FrameType.WELCOME,
      );
      // 2. An idle peer takes the second slot; 3. one more is refused.
      const idle = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(idle);
      await new Promise((r) => setTimeout(r, 200)); // accepted before the next
      const extra = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(extra);
      assert.deepEqual(await framesUntilClosed(extra), [
        "ERROR This receiver is serving its limit of 2 sessions (--max-sessions): try again later",
      ]);
      // 4. The idle one is cut off at the handshake timeout, and told.
      assert.deepEqual(await framesUntilClosed(idle), [
        "ERROR No HELLO within 3000 ms of connecting (0 bytes came): the peer is idle or too slow",
      ]);
      // 5. A connection reset while the receiver could not accept it.
      receiver.kill("SIGSTOP");
      try {
        await resetConnection(port);
      } finally {
        receiver.kill("SIGCONT");
      }
      // 6. A real migration, while `held` is still open.
      const migrated = await hakobu([
        "migrate",
        "--insecure-plain",
        "--from",
        "sim:memcached",
        "--mem",
        "64MiB",
        "--to",
        `127.0.0.1:${port}`,
        "--quiet",
      ]);
      assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout);
      const line = await untilLine(
        /\{[^\n]*"verified":true[^\n]*\n/,
        "the migration's result line",
      );
      assert.match(line, /"vm":"[^"]*memcached/);
      // `held` was served beside it all along: no ERROR came to it.
      held.close();
      conns.splice(conns.indexOf(held), 1);
      const closed = await untilLine(
        /\{"verified":false,"error":"Connection closed before[^\n]*\n/,
        "the held session's end",
      );
      assert.ok(closed);
      // The forged line never appears as a line of its own.
      assert.doesNotMatch(receiver.stdout(), /^VERIFIED: forged/m);
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await receiver.stop();
    }
  },
});

Deno.test({
  name:
    "hakobu receive: three migrations at once, beside a peer trickling its HELLO a byte at a time, all verify",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const receiver = await serveReceiver([
      "--max-sessions",
      "4",
      "--handshake-timeout",
      "120000",
    ]);
    const slow = await Deno.connect({
      hostname: "127.0.0.1",
      port: receiver.port,
    });
    let trickling = true;
    const hello = encodeFrame(
      FrameType.HELLO,
      0,
      encodeHello({
        protocol: 2,
        memoryBytes: 4096,
        pageSize: 4096,
        codecs: [{ id: 0, name: "raw" }],
        vm: "slowloris",
        policy: "p",
        channels: 1,
      }),
    );
    const loris = (async () => {
      for (let i = 0; trickling && i < hello.length; i++) {
        await slow.write(hello.subarray(i, i + 1)).catch(() => {});
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    try {
      const runs = await Promise.all(
        ["memcached", "postgres", "idle"].map((w) =>
          hakobu([
            "migrate",
            "--insecure-plain",
            "--from",
            `sim:${w}`,
            "--mem",
            "32MiB",
            "--to",
            `127.0.0.1:${receiver.port}`,
            "--quiet",
          ])
        ),
      );
      for (const r of runs) assert.equal(r.code, 0, r.stderr + r.stdout);
      await receiver.untilLine(
        /(\{[^\n]*"verified":true[^\n]*\n[^]*){3}/,
        "three verified results",
      );
      assert.ok(trickling, "the slow peer was still trickling");
      assert.doesNotMatch(receiver.stdout(), /slowloris/);
    } finally {
      trickling = false;
      await loris;
      slow.close();
      await receiver.stop();
    }
  },
});
