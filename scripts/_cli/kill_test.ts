/**
 * Either process of a real migration killed (SIGKILL) at a random moment
 * after the source authenticated the receiver (fast-check):
 *
 * - the receiver killed, over plain TCP and over TLS: the source exits 1
 *   naming the receiver (its address) and the phase it was lost in, never
 *   VERIFIED and never hanging — or, killed between COMMIT and COMMITTED,
 *   exits 3 saying the outcome is unknown and the VM stays paused;
 * - the source killed, over plain TCP and over TLS: the receiver prints a
 *   failure verdict for that source within seconds, never VERIFIED,
 *   discards the destination memory, gives its budget back and serves the
 *   next migration.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ReceiverProcess } from "../_receiver_process.ts";
import { HAKOBU, hakobu } from "./_cli_testing.ts";
import { generateCredentials } from "../../engine/transport/secure/generate.ts";

/**
 * A 64 MiB memcached migration paced to 200 Mbit/s: about a second from the
 * session's start to its end, so kills 0–1.5 s after it land in every
 * phase, its end included.
 */
function migrateArgs(port: number, security: string[]): string[] {
  return [
    "run",
    "-A",
    HAKOBU,
    "migrate",
    ...security,
    "--from",
    "sim:memcached",
    "--mem",
    "64MiB",
    "--dirty-rate",
    "4000",
    "--bandwidth",
    "200Mbit",
    "--to",
    `127.0.0.1:${port}`,
    "--json",
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Credentials for the TLS cases; the source's "authenticated receiver"
// line marks the moment its session exists on both sides.
const PKI = await Deno.makeTempDir({ prefix: "hakobu-kill-pki-" });
await generateCredentials(PKI, { receiverNames: ["127.0.0.1"] });
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(PKI, { recursive: true });
  } catch { /* gone */ }
});

/** The security flags of each transport, and the line a source prints once the receiver holds its session. */
function transportOf(
  transport: "plain" | "tls",
): { security: string[]; sessionLine: RegExp } {
  return transport === "tls"
    ? {
      security: ["--tls-dir", PKI],
      sessionLine: /authenticated receiver "127\.0\.0\.1" over TLS/,
    }
    : {
      security: ["--insecure-plain"],
      sessionLine: /connected to receiver 127\.0\.0\.1:\d+ over plain TCP/,
    };
}

for (const transport of ["plain", "tls"] as const) {
  const { security, sessionLine } = transportOf(transport);
  Deno.test(`the receiver killed at a random moment (${transport}): the source exits 1 naming the receiver and the phase, within its deadlines`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1500 }),
        async (killAfterMs) => {
          await using receiver = await ReceiverProcess.start([
            ...security,
            "--once",
          ]);
          const source = new Deno.Command(Deno.execPath(), {
            args: migrateArgs(receiver.port, security),
            stdout: "piped",
            stderr: "piped",
          }).spawn();
          const stdout = new Response(source.stdout).text();
          const lines = source.stderr.pipeThrough(new TextDecoderStream())
            .getReader();
          let stderr = await untilText(lines, sessionLine);
          await sleep(killAfterMs);
          try {
            Deno.kill(receiver.pid, "SIGKILL");
          } catch { /* it had finished: the migration was quicker */ }
          const started = performance.now();
          for (;;) {
            const { value, done } = await lines.read();
            if (done) break;
            stderr += value;
          }
          const { code } = await source.status;
          const waitedMs = performance.now() - started;
          const out = await stdout;
          if (code === 0) {
            // The kill came after the verdict: then it really verified.
            assert.equal(JSON.parse(out).verified, true);
            return;
          }
          if (code === 3) {
            // The kill came between COMMIT and COMMITTED: nobody can tell
            // whether the receiver committed, and the VM stays paused.
            assert.match(
              stderr,
              /hakobu: Outcome unknown: COMMIT was sent .*The VM stays PAUSED at the source/,
            );
            return;
          }
          assert.equal(code, 1, stderr);
          assert.doesNotMatch(out + stderr, /VERIFIED/);
          // Which side failed (the receiver, by its address) and when.
          const receiverAt = `127\\.0\\.0\\.1:${receiver.port}`;
          assert.match(
            stderr,
            new RegExp(
              `hakobu: (The receiver ${receiverAt} (closed|reset) the connection|The connection to the receiver ${receiverAt} failed) ` +
                `during (the handshake|round \\d+|stop-and-copy \\(round \\d+\\)|verification)`,
            ),
            stderr,
          );
          // Well inside the policy's 60 s reply deadline: a dead peer is seen at once.
          assert.ok(
            waitedMs < 30_000,
            `the source took ${waitedMs} ms to give up`,
          );
        },
      ),
      { numRuns: 3, endOnFailure: true },
    );
  });
}

/** The receiver's frame timeout in the source-killed cases. */
const FRAME_TIMEOUT_MS = 3000;
/**
 * Longest wait for the killed source's verdict before the test calls it
 * lost: the frame timeout, the last words' 2 s budgets (at most 6 s) and
 * room for a loaded machine. Only a hang reaches it.
 */
const VERDICT_DEADLINE_MS = FRAME_TIMEOUT_MS + 6000 + 15_000;

/** Resolves with `p`, or fails naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(
          () => reject(new Error(`No ${what} within ${ms} ms`)),
          ms,
        )
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads `stream` until `pattern` appears; returns all read so far (the stream stays locked). */
async function untilText(
  reader: ReadableStreamDefaultReader<string>,
  pattern: RegExp,
): Promise<string> {
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`Ended before ${pattern}: ${text}`);
    text += value;
  }
  return text;
}

for (const transport of ["plain", "tls"] as const) {
  const { security, sessionLine } = transportOf(transport);
  Deno.test(`the source killed at a random moment (${transport}): the receiver's verdict names it lost, it discards and serves the next migration`, async () => {
    // One receiver for every case: it must survive each kill. Its budget
    // fits the killed VM (64 MiB and its decoder state) but not beside the
    // next one (32 MiB): that fits only if the killed session gave its
    // memory back.
    await using receiver = await ReceiverProcess.start([
      ...security,
      "--frame-timeout",
      String(FRAME_TIMEOUT_MS),
      "--max-total-mem",
      "80MiB",
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3000 }),
        async (killAfterMs) => {
          // 64 MiB, three quarters random bytes, paced to 50 Mbit/s: round 0
          // alone takes about 8 s, so every kill lands before FINAL.
          const source = new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "-A",
              HAKOBU,
              "migrate",
              ...security,
              "--from",
              "sim:random",
              "--mem",
              "64MiB",
              "--bandwidth",
              "50Mbit",
              "--to",
              `127.0.0.1:${receiver.port}`,
              "--json",
            ],
            stdout: "null",
            stderr: "piped",
          }).spawn();
          const stderr = source.stderr.pipeThrough(new TextDecoderStream())
            .getReader();
          try {
            await untilText(stderr, sessionLine);
            await sleep(killAfterMs);
            source.kill("SIGKILL");
          } finally {
            await stderr.cancel().catch(() => {});
            await source.status;
          }
          const { line } = await within(
            receiver.verdict(),
            VERDICT_DEADLINE_MS,
            "verdict on the killed source",
          );
          const verdict = JSON.parse(line);
          assert.equal(verdict.verified, false, line);
          assert.match(
            verdict.error,
            /Connection closed before|Connection to the source lost|Truncated stream|No frame within/,
            line,
          );
          // It names the lost source: its address, and over TLS its identity.
          assert.match(verdict.peer, /^127\.0\.0\.1:\d+$/, line);
          assert.equal(
            verdict.identity,
            transport === "tls" ? "hakobu-source" : null,
            line,
          );
          // A kill before HELLO leaves no destination memory at all.
          assert.ok(
            verdict.destination === "discarded" ||
              (verdict.destination === "none" &&
                /before HELLO/.test(verdict.error)),
            line,
          );
          // Still serving, with the killed session's budget given back.
          const next = await hakobu([
            "migrate",
            ...security,
            "--from",
            "sim:idle",
            "--mem",
            "32MiB",
            "--to",
            `127.0.0.1:${receiver.port}`,
            "--json",
            "--quiet",
          ]);
          assert.equal(next.code, 0, next.stderr);
          const served = await within(
            receiver.verdict(),
            VERDICT_DEADLINE_MS,
            "verdict on the next migration",
          );
          assert.equal(served.verified, true, served.line);
        },
      ),
      { numRuns: 4, endOnFailure: true },
    );
  });
}
