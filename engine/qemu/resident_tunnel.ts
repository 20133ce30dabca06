/**
 * The resident QEMU tunnel from a program: {@link startResidentSender}
 * starts `scripts/tunnel.ts qemu send --serve unix:PATH` once, and each
 * QEMU `migrate "unix:PATH"` is then one migration through it, paying no
 * Deno start; {@link startResidentReceiver} starts `qemu receive --to-qemu
 * unix:PATH` on the destination, which feeds each session into the
 * destination QEMU's `migrate-incoming "unix:PATH"` socket. Each side prints
 * one JSON line per migration; the sender's is the verdict `migrateQemu`'s
 * `verify` takes.
 *
 * @example
 * ```ts
 * import {
 *   migrateQemu,
 *   policy,
 *   QmpClient,
 *   startResidentReceiver,
 *   startResidentSender,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * // Needs two hosts with QEMU: the doc tests type-check this function and do
 * // not call it.
 * async function migrateThroughResidentTunnels(
 *   source: QmpClient,
 *   dstQmp: QmpClient,
 * ) {
 *   const plan = policy("p").switchover(when.rounds(30)).compile();
 *   const dst = await startResidentReceiver({
 *     listen: "10.77.0.2:4445",
 *     incoming: "/run/hakobu/in.sock",
 *     security: { tlsDir: "/etc/pki/hakobu", tlsAuthz: ["src-host"] },
 *   });
 *   const src = await startResidentSender({
 *     socket: "/run/hakobu/out.sock",
 *     to: "10.77.0.2:4445",
 *     codecs: ["zero", "zstd"],
 *     security: { tlsDir: "/etc/pki/hakobu" },
 *   });
 *   await dstQmp.migrateIncoming(dst.incomingUri);
 *   return await migrateQemu({
 *     plan,
 *     source,
 *     uri: src.uri,
 *     verify: () => src.verdict(),
 *   });
 * }
 * ```
 *
 * @module
 */

import type { StreamVerdict } from "./policy_driver.ts";
import { VERDICT_TIMEOUT_MS, verdictOf } from "./exec_tunnel.ts";
import {
  securityArgs,
  type SecurityFlags,
} from "../transport/secure/security.ts";

/** How to run the tunnel script: the words before `qemu send|receive`, and an optional wrapper (e.g. `ip netns exec NS`). */
export interface ResidentCommand {
  /** Default: this Deno running this checkout's `scripts/tunnel.ts`. */
  readonly command?: readonly string[];
  /** Words put before the command (e.g. `["ip", "netns", "exec", "hkb-src"]`). */
  readonly wrap?: readonly string[];
}

/** A resident process and the JSON lines it prints, one per migration. */
class Resident {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(argv: readonly string[]) {
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** The next JSON line, or null when the process ended or `timeoutMs` passed. */
  async next(timeoutMs: number): Promise<Record<string, unknown> | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line.startsWith("{")) return JSON.parse(line);
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) return null;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#lines.read(),
        new Promise<null>((res) => timer = setTimeout(res, left, null)),
      ]);
      clearTimeout(timer);
      if (r === null) return null;
      if (r.done) return null;
      this.#buffer += r.value;
    }
  }

  /** The process id (of the tunnel itself when `ip netns exec` wraps it: it execs). */
  get pid(): number {
    return this.#child.pid;
  }

  async close(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* exited */ }
    await this.#lines.cancel().catch(() => {});
    await this.#child.status;
  }
}

function script(options: ResidentCommand): string[] {
  const main = new URL("../../scripts/tunnel.ts", import.meta.url).pathname;
  return [
    ...(options.wrap ?? []),
    ...(options.command ?? [Deno.execPath(), "run", "-A", main]),
  ];
}

/** Options of {@link startResidentSender}. */
export interface ResidentSenderOptions extends ResidentCommand {
  /** The unix socket QEMU migrates into. */
  readonly socket: string;
  /** The resident receiver, `HOST:PORT`. */
  readonly to: string;
  /** Codec chain names. */
  readonly codecs: readonly string[];
  /** Link pacing in bytes per second. */
  readonly bandwidth?: number | null;
  /** Channels. */
  readonly channels?: number;
  /** How the sender authenticates and encrypts (`--tls-dir …` or `--insecure-plain`). */
  readonly security: SecurityFlags;
}

/** The source's resident tunnel. */
export interface ResidentSender {
  /** The `migrate` URI: `unix:` the socket. */
  readonly uri: string;
  /** The next migration's verdict (at most `timeoutMs`, default 30 s). */
  verdict(timeoutMs?: number): Promise<StreamVerdict>;
  /** The tunnel process's id (its CPU is the migration's source CPU). */
  readonly pid: number;
  /** Stops the process. */
  close(): Promise<void>;
}

/**
 * Starts the source's resident tunnel; resolves once its socket exists.
 *
 * @throws {Error} when the socket does not appear within 20 s.
 */
export async function startResidentSender(
  options: ResidentSenderOptions,
): Promise<ResidentSender> {
  await Deno.remove(options.socket).catch(() => {});
  const argv = [
    ...script(options),
    "qemu",
    "send",
    "--serve",
    `unix:${options.socket}`,
    "--to",
    options.to,
    "--codecs",
    options.codecs.join(","),
    ...securityArgs(options.security, "source"),
  ];
  if (options.bandwidth != null) {
    argv.push("--bandwidth", String(options.bandwidth));
  }
  if (options.channels !== undefined) {
    argv.push("--channels", String(options.channels));
  }
  const proc = new Resident(argv);
  const deadline = performance.now() + 20_000;
  while (!(await Deno.stat(options.socket).then(() => true, () => false))) {
    if (performance.now() > deadline) {
      await proc.close();
      throw new Error(
        `The resident tunnel sender did not open "${options.socket}" within 20 s (${
          argv.join(" ")
        })`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    uri: `unix:${options.socket}`,
    pid: proc.pid,
    async verdict(timeoutMs = VERDICT_TIMEOUT_MS): Promise<StreamVerdict> {
      const line = await proc.next(timeoutMs);
      return line === null
        ? {
          verified: false,
          sourceDigest: "",
          destinationDigest: "",
          detail:
            `the resident tunnel sender reported no migration within ${timeoutMs} ms`,
        }
        : verdictOf(line);
    },
    close: () => proc.close(),
  };
}

/** Options of {@link startResidentReceiver}. */
export interface ResidentReceiverOptions extends ResidentCommand {
  /** Where the tunnel listens for the sender, `HOST:PORT`. */
  readonly listen: string;
  /** The unix socket the destination QEMU listens on (`migrate-incoming "unix:PATH"`). */
  readonly incoming: string;
  /** How the receiver authenticates its senders (`--tls-dir …` or `--insecure-plain`). */
  readonly security: SecurityFlags;
}

/** The destination's resident tunnel. */
export interface ResidentReceiver {
  /** What to give the destination QEMU's `migrate-incoming`. */
  readonly incomingUri: string;
  /** The next migration's line from the receiver (at most `timeoutMs`). */
  next(timeoutMs?: number): Promise<Record<string, unknown> | null>;
  /** Stops the process. */
  close(): Promise<void>;
}

/** Starts the destination's resident tunnel (it listens within a moment; senders retry). */
export function startResidentReceiver(
  options: ResidentReceiverOptions,
): Promise<ResidentReceiver> {
  const proc = new Resident([
    ...script(options),
    "qemu",
    "receive",
    "--listen",
    options.listen,
    "--to-qemu",
    `unix:${options.incoming}`,
    ...securityArgs(options.security, "receiver"),
  ]);
  return Promise.resolve({
    incomingUri: `unix:${options.incoming}`,
    next: (timeoutMs = VERDICT_TIMEOUT_MS) => proc.next(timeoutMs),
    close: () => proc.close(),
  });
}
