/**
 * What the backends share: reading a `HOST:PORT` target, insisting on the
 * link's security, and hakobu's stream tunnel as a hypervisor's transport
 * (the plan's round-0 codec chain on its channels and pacing).
 *
 * @module
 */

import type { Plan } from "../plan.ts";
import { type ExecTunnel, execTunnel } from "../qemu/exec_tunnel.ts";
import type { StreamStats } from "../stream/send.ts";
import { Steering } from "../steering.ts";
import { type Address, parseAddress } from "../transport/address.ts";
import type { SecurityFlags } from "../transport/secure/security.ts";
import { BackendError, type BackendMigrateOptions } from "./backend.ts";

/** `target` as `HOST:PORT`, or a {@link BackendError} naming the backend's target forms. */
export function hostPort(
  target: string,
  backend: string,
  targetForm: string,
): Address {
  try {
    return parseAddress(target, "destination");
  } catch (e) {
    throw new BackendError(
      `${(e as Error).message} (a ${backend} source migrates to ${targetForm})`,
      { field: "target" },
    );
  }
}

/** The link's security, or a {@link BackendError} saying how to give it. */
export function requireSecurity(
  options: BackendMigrateOptions,
  source: string,
  target: string,
): SecurityFlags {
  if (options.security) return options.security;
  throw new BackendError(
    `No connection security chosen for the link from "${source}" to "${target}": pass TLS credentials (--tls-dir DIR; make one with 'hakobu tls init DIR') or, on a trusted network only, ask for plain TCP (--insecure-plain)`,
    { field: "security" },
  );
}

/** The names of the codec chain the plan picks for round 0 (the tunnel's chain: each codec with its default options). */
export function round0Codecs(plan: Plan): string[] {
  const stats = new Steering(plan).stats({
    round: 0,
    bytesSent: 0,
    rawBytesSent: 0,
    wireRate: plan.bandwidth ?? 0,
  });
  return plan.codecsFor(stats).map((c) => c.name);
}

/**
 * hakobu's stream tunnel sender for one migration, as a command the
 * hypervisor's source writes its stream into (`uri`: `exec:...`).
 */
export async function streamTunnel(
  format: "qemu" | "xen",
  plan: Plan,
  to: Address,
  security: SecurityFlags,
): Promise<ExecTunnel> {
  const main = new URL("../../scripts/tunnel.ts", import.meta.url).pathname;
  return await execTunnel({
    to: to.hostname.includes(":")
      ? `[${to.hostname}]:${to.port}`
      : `${to.hostname}:${to.port}`,
    codecs: round0Codecs(plan),
    bandwidth: plan.bandwidth,
    channels: plan.channels,
    // A policy that resumes makes the tunnel resume its link too.
    resumeGraceMs: plan.resume?.graceMs,
    security,
    command: [Deno.execPath(), "run", "-A", main, format],
  });
}

/** The tunnel's part of a report, in one sentence (the summary's `tunnel` line). */
export function tunnelNote(
  stats:
    | Pick<StreamStats, "wireBytes" | "streamBytes" | "pages" | "zeroPages">
    | null,
  format: string,
): string {
  return stats
    ? `${stats.wireBytes} bytes on the hakobu wire for a ${stats.streamBytes}-byte ${format} stream (${stats.pages} pages, ${stats.zeroPages} zero)`
    : "no statistics (the tunnel did not finish)";
}
