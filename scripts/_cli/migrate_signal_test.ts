/**
 * `hakobu migrate` stopped by a signal while it waits on a receiver that
 * never answers: in the handshake (SIGINT) and in stop-and-copy, the VM
 * paused, waiting for READY (SIGTERM). Each time the process ends promptly,
 * exit code 1, naming the signal, and tells the receiver (ABORT) when it can.
 */

import assert from "node:assert/strict";
import { withDeadline } from "../../engine/_precopy_testing.ts";
import {
  decodeAbort,
  encodeFrame,
  encodeWelcome,
  FrameReader,
  FrameType,
  PROTOCOL_VERSION,
} from "../../engine/wire/mod.ts";
import { HAKOBU, ROOT } from "./_cli_testing.ts";

const DEADLINE_MS = 60_000;

/**
 * A receiver that accepts one connection, answers HELLO with WELCOME only if
 * `welcome`, then reads frames and never answers again. `hello` and `final`
 * resolve when those frames came; `served` with ABORT's reason, if one came.
 */
function mute(welcome: boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let sawFinal!: () => void;
  const final = new Promise<void>((r) => sawFinal = r);
  let sawHello!: () => void;
  const hello = new Promise<void>((r) => sawHello = r);
  const served = (async () => {
    const conn = await listener.accept();
    listener.close();
    const reader = new FrameReader(conn.readable);
    let abort: string | null = null;
    try {
      for (let f = await reader.next(); f; f = await reader.next()) {
        if (f.type === FrameType.HELLO && welcome) {
          const w = conn.writable.getWriter();
          await w.write(
            encodeFrame(
              FrameType.WELCOME,
              0,
              encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
            ),
          );
          w.releaseLock();
        }
        if (f.type === FrameType.HELLO) sawHello();
        if (f.type === FrameType.FINAL) sawFinal();
        if (f.type === FrameType.ABORT) abort = decodeAbort(f.payload).reason;
      }
    } catch { /* the source went away */ }
    try {
      conn.close();
    } catch { /* closed */ }
    return abort;
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    hello,
    final,
    served,
  };
}

function startMigrate(port: number): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      HAKOBU,
      "migrate",
      "--insecure-plain",
      "--from",
      "sim:memcached",
      "--mem",
      "16MiB",
      "--to",
      `127.0.0.1:${port}`,
      "--policy",
      "examples/policies/default.ts",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/**
 * Runs `hakobu migrate` against a {@link mute} receiver, sends `signal` once
 * the receiver saw `at`, and checks that the migration ends with exit code 1
 * and `message`, which the receiver also got as ABORT's reason.
 */
async function interrupt(
  at: "HELLO" | "FINAL",
  signal: Deno.Signal,
  message: string,
): Promise<void> {
  const receiver = mute(at === "FINAL");
  const child = startMigrate(receiver.port);
  const stderr = new Response(child.stderr).text();
  const stdout = new Response(child.stdout).text();
  // It listens for signals before it connects: once HELLO came, it waits.
  await withDeadline(
    at === "HELLO" ? receiver.hello : receiver.final,
    `${at} at the receiver`,
    DEADLINE_MS,
  );
  child.kill(signal);
  const { code } = await withDeadline(
    child.status,
    "migrate's exit",
    DEADLINE_MS,
  );
  const err = await stderr;
  await stdout;
  assert.equal(code, 1, err);
  assert.ok(err.includes(message), err);
  assert.equal(
    await withDeadline(receiver.served, "the receiver", DEADLINE_MS),
    message,
    "the receiver was told",
  );
}

Deno.test("hakobu migrate: SIGINT while the receiver never answers HELLO ends it, naming the signal", async () => {
  await interrupt("HELLO", "SIGINT", "Migration aborted: interrupted (SIGINT)");
});

Deno.test("hakobu migrate: SIGTERM in stop-and-copy, waiting for READY, ends it, naming the signal; the receiver is told", async () => {
  await interrupt(
    "FINAL",
    "SIGTERM",
    "Migration aborted: terminated (SIGTERM)",
  );
});
