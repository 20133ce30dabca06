/**
 * The hakobu tunnel as QEMU's `exec:` migration transport, with its verdict:
 * {@link execTunnel} builds the `migrate` URI that runs
 * `scripts/tunnel.ts qemu send` as QEMU's child and sends the child's one JSON line
 * of statistics to a file; {@link ExecTunnel.verdict} waits for that line
 * and turns it into the {@link StreamVerdict} that `migrateQemu`'s `verify`
 * option takes.
 *
 * @example
 * ```ts
 * import { execTunnel, migrateQemu, QmpClient } from "@hakobu/hakobu";
 *
 * // Needs a running QEMU and a receiving tunnel at 10.77.0.2:4445: the doc
 * // tests type-check this function and do not call it.
 * async function migrateThroughTunnel(
 *   plan: Parameters<typeof migrateQemu>[0]["plan"],
 * ) {
 *   const source = await QmpClient.connect("/tmp/src.qmp");
 *   const tunnel = await execTunnel({
 *     to: "10.77.0.2:4445",
 *     codecs: ["zero", "lz4"],
 *     security: { tlsDir: "/etc/pki/hakobu" }, // TLS, QEMU's credential layout
 *   });
 *   const report = await migrateQemu({
 *     plan,
 *     source,
 *     uri: tunnel.uri, // "exec:" a tunnel sender QEMU writes its stream to
 *     verify: () => tunnel.verdict(),
 *   });
 *   return report.verification; // "stream-digest": the rebuilt stream matched
 * }
 * ```
 *
 * @module
 */

import type { StreamVerdict } from "./policy_driver.ts";
import type { StreamStats } from "../stream/send.ts";
import { resumeGraceArgs } from "./_resume_args.ts";
import {
  securityArgs,
  type SecurityFlags,
} from "../transport/secure/security.ts";

/**
 * How long a tunnel's verdict is awaited by default, in ms: the sender's
 * line comes once QEMU's stream has ended and the receiver has answered.
 */
export const VERDICT_TIMEOUT_MS = 30_000;

/** Options of {@link execTunnel}. */
export interface ExecTunnelOptions {
  /** The receiving tunnel, `HOST:PORT`. */
  readonly to: string;
  /** Codec chain names, e.g. `["zero", "lz4"]`. */
  readonly codecs: readonly string[];
  /** Link pacing in bytes per second, or null/absent for unpaced. */
  readonly bandwidth?: number | null;
  /** Channels (default: the tunnel's, the core count). */
  readonly channels?: number;
  /**
   * Resume a lost link within this many ms (`--resume-grace`; the
   * receiving tunnel must resume too, or the link stays a plain one);
   * absent or 0: a lost link fails the migration.
   */
  readonly resumeGraceMs?: number;
  /**
   * How the tunnel sender authenticates and encrypts (`--tls-dir …` or
   * `--insecure-plain`); `null` passes neither, for a `command` from a
   * checkout older than authentication.
   */
  readonly security: SecurityFlags | null;
  /**
   * The command before `send ...` (default: this Deno running this
   * checkout's `scripts/tunnel.ts qemu`), e.g. another checkout's.
   */
  readonly command?: readonly string[];
}

/** A tunnel for one QEMU migration. */
export interface ExecTunnel {
  /** The `migrate` URI: `exec:` the tunnel, its stats line to a file. */
  readonly uri: string;
  /** The file the sender writes its JSON line into. */
  readonly statsFile: string;
  /**
   * Waits (at most `timeoutMs`, default 30 s) for the sender's line and
   * returns what it compared. A sender that failed or never wrote its line
   * gives `verified: false` with the reason. The caller removes
   * {@link statsFile} when done with it.
   */
  verdict(timeoutMs?: number): Promise<StreamVerdict>;
  /** The sender's statistics once {@link verdict} has read them (null before, or when it failed). */
  readonly stats: StreamStats | null;
}

/**
 * Prepares an `exec:` tunnel for one migration (creates its stats file).
 *
 * @param options Destination, codecs, pacing and the command to run.
 * @throws {RangeError} on a `resumeGraceMs` that is no whole number of ms, 0 or more.
 */
export async function execTunnel(
  options: ExecTunnelOptions,
): Promise<ExecTunnel> {
  const main = new URL("../../scripts/tunnel.ts", import.meta.url).pathname;
  const command = options.command ??
    [Deno.execPath(), "run", "-A", main, "qemu"];
  const args = [
    ...command,
    "send",
    "--to",
    options.to,
    "--codecs",
    options.codecs.join(","),
    ...(options.security ? securityArgs(options.security, "source") : []),
  ];
  if (options.bandwidth != null) {
    args.push("--bandwidth", String(options.bandwidth));
  }
  if (options.channels !== undefined) {
    args.push("--channels", String(options.channels));
  }
  args.push(...resumeGraceArgs(options.resumeGraceMs));
  const statsFile = await Deno.makeTempFile({
    prefix: "hakobu-tunnel-",
    suffix: ".json",
  });
  let stats: StreamStats | null = null;
  return {
    uri: `exec:${args.map(shellQuote).join(" ")} 2>${shellQuote(statsFile)}`,
    statsFile,
    get stats() {
      return stats;
    },
    async verdict(timeoutMs = VERDICT_TIMEOUT_MS): Promise<StreamVerdict> {
      const line = await waitForLine(statsFile, timeoutMs);
      if (line === null) {
        return noVerdict(
          `the tunnel sender wrote no statistics within ${timeoutMs} ms`,
        );
      }
      if (line.ok === true) stats = line as unknown as StreamStats;
      return verdictOf(line);
    },
  };
}

/**
 * The verdict in a tunnel sender's JSON line (`{ok, verified, digest,
 * peerDigest, ...}`): verified only when the sender itself found both
 * digests equal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verdictOf } from "@hakobu/hakobu";
 *
 * const failed = verdictOf({ ok: false, error: "link cut" });
 * assert.equal(failed.verified, false);
 * assert.equal(failed.detail, "the tunnel sender failed: link cut");
 * const digest = "ab".repeat(16); // XXH3-128, hex
 * const line = { ok: true, verified: true, digest, peerDigest: digest };
 * assert.equal(verdictOf(line).verified, true);
 * ```
 */
export function verdictOf(line: Record<string, unknown>): StreamVerdict {
  if (line.ok !== true) {
    return noVerdict(`the tunnel sender failed: ${String(line.error)}`);
  }
  const ours = String(line.digest ?? "");
  const theirs = String(line.peerDigest ?? "");
  const verified = line.verified === true && ours.length === 32 &&
    ours === theirs;
  return {
    verified,
    sourceDigest: ours,
    destinationDigest: theirs,
    detail: verified
      ? `the rebuilt stream's XXH3-128 ${
        ours.slice(0, 16)
      }… equals the source stream's (${line.streamBytes} bytes), checked by both tunnel ends`
      : `the tunnel's digests differ: source ${ours || "none"}, destination ${
        theirs || "none"
      }`,
  };
}

function noVerdict(detail: string): StreamVerdict {
  return { verified: false, sourceDigest: "", destinationDigest: "", detail };
}

/** The last JSON line of `file` once one with an `ok` field is there, or null at the deadline. */
async function waitForLine(
  file: string,
  timeoutMs: number,
): Promise<Record<string, unknown> | null> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const text = await Deno.readTextFile(file).catch(() => "");
    for (const line of text.split("\n").reverse()) {
      if (!line.startsWith("{")) continue;
      try {
        const o = JSON.parse(line);
        if (typeof o === "object" && o !== null && "ok" in o) return o;
      } catch { /* a line still being written */ }
    }
    if (performance.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Quotes a word for `sh -c` (QEMU runs `exec:` through `/bin/sh -c`). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:,=@+-]+$/.test(s)
    ? s
    : `'${s.replaceAll("'", `'\\''`)}'`;
}
