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
import { resumeGraceArgs } from "./_resume_args.ts";
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
  /**
   * How long the process is given to print its `{"listening":...}` line
   * (default 20 s; a cold Deno start with its type-check takes seconds).
   */
  readonly startTimeoutMs?: number;
}

/**
 * A resident process and the JSON lines it prints: `{"listening":...}` once
 * it listens, then one per migration.
 */
class Resident {
  readonly #child: Deno.ChildProcess;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #buffer = "";
  /**
   * A read still under way: one that a timed-out {@link next} started is
   * taken up by the next call, so the text it brings is never dropped.
   */
  #reading: Promise<ReadableStreamReadResult<string>> | null = null;
  #ended = false;

  /** The last {@link STDERR_TAIL} characters of stderr, for a start that failed. */
  #stderr = "";
  /** Settles once stderr ended (the process exited, or closed it) or {@link close} stopped reading it. */
  readonly #stderrDone: Promise<void>;
  /** Stops reading stderr: a child the process left behind may hold it open. */
  readonly #stderrStop = new AbortController();

  constructor(argv: readonly string[]) {
    this.#child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    // Drained for as long as the process runs (a full pipe would stall it);
    // only the tail is kept, to name why a start failed.
    this.#stderrDone = this.#child.stderr.pipeThrough(new TextDecoderStream())
      .pipeTo(
        new WritableStream({
          write: (text) => {
            this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
          },
        }),
        { signal: this.#stderrStop.signal },
      ).catch(() => {});
  }

  /**
   * Waits for the listening line; throws, with the process stopped, when
   * the process ended first (naming its exit status, its error and the
   * rest of stderr's tail) or `timeoutMs` passed. `what` names the
   * process, `argv` its command.
   */
  async started(
    what: string,
    argv: readonly string[],
    timeoutMs: number,
  ): Promise<void> {
    if (await this.#line(timeoutMs, (o) => "listening" in o) !== null) return;
    const command = ` (${argv.join(" ")})`;
    if (!this.#ended) {
      await this.close();
      throw new Error(
        `${what} printed no {"listening":...} line within ${timeoutMs} ms${this.#failure().rest}${command}`,
      );
    }
    // stdout ended: the process exits, or closed it and is stopped.
    const status = await Promise.race([
      this.#child.status,
      new Promise<null>((r) => setTimeout(r, EXIT_WAIT_MS, null)),
    ]);
    if (status === null) await this.close();
    else await this.#settle();
    const how = status === null
      ? "closed its stdout"
      : status.signal !== null
      ? `was killed by ${status.signal}`
      : `exited with code ${status.code}`;
    const { error, rest } = this.#failure();
    throw new Error(
      `${what} ${how} before it listened${error}${rest}${command}`,
    );
  }

  /**
   * stderr's tail as `: ERROR` (the tunnel's last line,
   * `{"ok":false,"error":...}`, when it printed one) and ` (stderr: …)`
   * for the rest; empty strings for what is not there.
   */
  #failure(): { error: string; rest: string } {
    const lines = this.#stderr.trimEnd().split("\n");
    let error = "";
    try {
      const o = JSON.parse(lines.at(-1) ?? "");
      if (o?.ok === false && typeof o.error === "string") {
        error = `: ${o.error}`;
        lines.pop();
      }
    } catch { /* no JSON line: all of it is the rest */ }
    const rest = lines.join("\n").trim();
    return { error, rest: rest === "" ? "" : ` (stderr: ${rest})` };
  }

  /** Stops reading stdout and stderr once the process exited. */
  async #settle(): Promise<void> {
    await this.#lines.cancel().catch(() => {});
    await Promise.race([
      this.#stderrDone,
      new Promise((r) => setTimeout(r, EXIT_WAIT_MS)),
    ]);
  }

  /** The next migration's JSON line, or null when the process ended or `timeoutMs` passed. */
  next(timeoutMs: number): Promise<Record<string, unknown> | null> {
    // The listening line says the process is up; no migration's.
    return this.#line(timeoutMs, (o) => !("listening" in o && !("ok" in o)));
  }

  async #line(
    timeoutMs: number,
    wanted: (o: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown> | null> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const nl = this.#buffer.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        if (!line.startsWith("{")) continue;
        const o = JSON.parse(line);
        if (wanted(o)) return o;
        continue;
      }
      if (this.#ended) return null;
      const left = deadline - performance.now();
      if (left <= 0) return null;
      this.#reading ??= this.#lines.read();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#reading,
        new Promise<null>((res) => timer = setTimeout(res, left, null)),
      ]);
      clearTimeout(timer);
      if (r === null) return null; // the read stays under way
      this.#reading = null;
      if (r.done) {
        this.#ended = true;
        return null;
      }
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
    this.#stderrStop.abort();
    await this.#stderrDone;
  }
}

/** How much of a resident process's stderr a failed start quotes. */
const STDERR_TAIL = 2000;
/** How long a process whose stdout ended is given to exit. */
const EXIT_WAIT_MS = 2000;
/** How long a resident process is given to print its listening line. */
const START_TIMEOUT_MS = 20_000;

function script(options: ResidentCommand): string[] {
  const main = new URL("../../scripts/tunnel.ts", import.meta.url).pathname;
  return [
    ...(options.wrap ?? []),
    ...(options.command ?? [Deno.execPath(), "run", "-A", main]),
  ];
}

/** Options of {@link startResidentSender}. */
export interface ResidentSenderOptions extends ResidentCommand {
  /** The unix socket QEMU migrates into (or give `serve`). */
  readonly socket?: string;
  /**
   * Instead of `socket`: the TCP `HOST:PORT` QEMU migrates into
   * (`migrate "tcp:HOST:PORT"`, e.g. libvirt's `migrate_uri`
   * `tcp://127.0.0.1:PORT`). Local to the source: no TLS on it.
   */
  readonly serve?: string;
  /** The resident receiver, `HOST:PORT`. */
  readonly to: string;
  /** Codec chain names. */
  readonly codecs: readonly string[];
  /** Link pacing in bytes per second. */
  readonly bandwidth?: number | null;
  /** Channels. */
  readonly channels?: number;
  /**
   * Resume a lost link within this many ms (`--resume-grace`; the resident
   * receiver must resume too, {@link ResidentReceiverOptions.resumeGraceMs},
   * or the link stays a plain one); absent or 0: a lost link fails that
   * migration.
   */
  readonly resumeGraceMs?: number;
  /** How the sender authenticates and encrypts (`--tls-dir …` or `--insecure-plain`). */
  readonly security: SecurityFlags;
}

/** The source's resident tunnel. */
export interface ResidentSender {
  /** The `migrate` URI: `unix:` the socket, or `tcp:HOST:PORT`. */
  readonly uri: string;
  /** The next migration's verdict (at most `timeoutMs`, default 30 s). */
  verdict(timeoutMs?: number): Promise<StreamVerdict>;
  /**
   * The next migration's JSON line as the sender printed it (its stream
   * statistics: `wireBytes`, `streamBytes`, `digest`, ...), or null when
   * none came within `timeoutMs`; {@link verdictOf} turns it into the
   * verdict. Use either this or {@link verdict} per migration: each
   * consumes the line.
   */
  next(timeoutMs?: number): Promise<Record<string, unknown> | null>;
  /** The tunnel process's id (its CPU is the migration's source CPU). */
  readonly pid: number;
  /** Stops the process. */
  close(): Promise<void>;
}

/**
 * Starts the source's resident tunnel; resolves once it listens (its
 * `{"listening":...}` line, printed once its socket is open), so QEMU can
 * migrate into {@link ResidentSender.uri} at once.
 *
 * @throws {Error} when the process exits before it listens (naming its exit
 * status and the tail of its stderr), or prints no listening line within
 * `startTimeoutMs` (default 20 s; it is stopped).
 */
export async function startResidentSender(
  options: ResidentSenderOptions,
): Promise<ResidentSender> {
  if ((options.socket === undefined) === (options.serve === undefined)) {
    throw new TypeError(
      "startResidentSender needs exactly one of socket (a unix path) and serve (HOST:PORT)",
    );
  }
  const tcp = options.serve === undefined ? null : hostPort(options.serve);
  const startMs = startTimeout(options);
  if (options.socket !== undefined) {
    await Deno.remove(options.socket).catch(() => {});
  }
  const where = tcp === null ? `unix:${options.socket}` : options.serve!;
  const argv = [
    ...script(options),
    "qemu",
    "send",
    "--serve",
    where,
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
  argv.push(...resumeGraceArgs(options.resumeGraceMs));
  const proc = new Resident(argv);
  // Its own word, not a look at the socket: under `wrap` (`ip netns exec`)
  // the listener is in another network namespace, whose /proc/net/tcp this
  // process does not see; the line comes once the listener is open.
  await proc.started(
    `The resident tunnel sender for "${where}"`,
    argv,
    startMs,
  );
  return {
    uri: tcp === null ? `unix:${options.socket}` : `tcp:${options.serve}`,
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
    next: (timeoutMs = VERDICT_TIMEOUT_MS) => proc.next(timeoutMs),
    close: () => proc.close(),
  };
}

function hostPort(text: string): { hostname: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535)) {
    throw new TypeError(
      `Cannot serve QEMU's migration on "${text}": expected HOST:PORT`,
    );
  }
  return { hostname: m[1], port };
}

/** Options of {@link startResidentReceiver}. */
export interface ResidentReceiverOptions extends ResidentCommand {
  /** Where the tunnel listens for the sender, `HOST:PORT`. */
  readonly listen: string;
  /**
   * The unix socket the destination QEMU listens on (`migrate-incoming
   * "unix:PATH"`), or `tcp:HOST:PORT` where it listens on TCP (e.g. a
   * libvirt destination's `listen_address` and port).
   */
  readonly incoming: string;
  /**
   * Carry QEMU's return path back to the source (`--return-path`; libvirt
   * turns the capability on): needed when the source QEMU has
   * `return-path` on, else it waits at completion for ever. The stream's
   * end is then not held until the digests compare.
   */
  readonly returnPath?: boolean;
  /**
   * Keep a session whose link was lost this many ms for its sender to
   * resume (`--resume-grace`): the destination QEMU's socket stays open
   * meanwhile; absent or 0: no session is resumable.
   */
  readonly resumeGraceMs?: number;
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

/**
 * Starts the destination's resident tunnel; resolves once it listens (its
 * `{"listening":...}` line).
 *
 * @throws {Error} as {@link startResidentSender}: when the process exits
 * before it listens, or does not listen within `startTimeoutMs`.
 */
export async function startResidentReceiver(
  options: ResidentReceiverOptions,
): Promise<ResidentReceiver> {
  const startMs = startTimeout(options);
  const argv = [
    ...script(options),
    "qemu",
    "receive",
    "--listen",
    options.listen,
    "--to-qemu",
    incomingArg(options.incoming),
    ...(options.returnPath ? ["--return-path"] : []),
    ...resumeGraceArgs(options.resumeGraceMs),
    ...securityArgs(options.security, "receiver"),
  ];
  const proc = new Resident(argv);
  await proc.started(
    `The resident tunnel receiver for "${options.listen}"`,
    argv,
    startMs,
  );
  return {
    incomingUri: options.incoming.startsWith("tcp:")
      ? options.incoming
      : `unix:${options.incoming}`,
    next: (timeoutMs = VERDICT_TIMEOUT_MS) => proc.next(timeoutMs),
    close: () => proc.close(),
  };
}

/**
 * The wait for the listening line.
 *
 * @throws {RangeError} on a wait that is no whole number of ms above 0.
 */
function startTimeout(options: ResidentCommand): number {
  const ms = options.startTimeoutMs ?? START_TIMEOUT_MS;
  if (!Number.isSafeInteger(ms) || ms <= 0) {
    throw new RangeError(
      `Bad start timeout "${ms}" for a resident tunnel: expected a whole number of milliseconds above 0`,
    );
  }
  return ms;
}

/** `--to-qemu`'s word for `incoming`: `HOST:PORT` for `tcp:HOST:PORT`, else `unix:PATH`. */
function incomingArg(incoming: string): string {
  return incoming.startsWith("tcp:")
    ? incoming.slice("tcp:".length)
    : `unix:${incoming}`;
}
