/**
 * hakobu's codecs in a libvirt-managed migration: {@link startLibvirtTunnel}
 * starts the QEMU stream tunnel's two resident ends so that
 * `virDomainMigrateToURI3` with the returned `migrate_uri` and
 * `listen_address` carries the QEMU stream through them:
 *
 * ```text
 * source QEMU --tcp://127.0.0.1:P--> tunnel sender (qemu send --serve 127.0.0.1:P)
 *   == hakobu channels, codecs, TLS ==> tunnel receiver (qemu receive --listen H:T)
 *   --tcp--> destination QEMU listening on LISTEN_ADDRESS:P (libvirt's listen_address)
 * ```
 *
 * libvirt itself still runs the migration (its Prepare/Perform/Finish
 * phases, the capabilities it sets on both QEMUs, job stats, max downtime,
 * max speed, abort): only the bytes between the two QEMUs change road. The
 * sender compares its stream's XXH3-128 with the one the receiver rebuilt:
 * {@link LibvirtTunnel.verdict}.
 *
 * In the lab (one machine, two libvirt daemons) both ends run here. On two
 * real hosts the same two processes run one on each host, each started
 * there (by the host's service manager, or over ssh):
 *
 * - destination host: `deno run -A scripts/tunnel.ts qemu receive --listen
 *   DST:T --to-qemu LISTEN_ADDRESS:P --return-path --tls-dir DIR
 *   [--tls-authz SRC]`
 *   (LISTEN_ADDRESS an address of the destination that no other host can
 *   reach, e.g. 127.0.0.1 there);
 * - source host: `deno run -A scripts/tunnel.ts qemu send --serve
 *   127.0.0.1:P --to DST:T --codecs zero,zstd --tls-dir DIR`;
 * - the migration: `migrate_uri` `tcp://127.0.0.1:P` (resolved by the
 *   source QEMU: the sender on the source host) and `listen_address`
 *   LISTEN_ADDRESS (used by the destination QEMU, which listens on port P of
 *   it), i.e. `virsh migrate --live --p2p --migrateuri tcp://127.0.0.1:P
 *   --listen-address LISTEN_ADDRESS DOMAIN DST_URI`.
 *
 * `hakobu migrate --tunnel-receiver DST:T --migration-port P
 * --listen-address LISTEN_ADDRESS` does the source host's part (the
 * sender, and the migration): {@link LibvirtTunnelOptions.remoteReceiver}.
 *
 * One connection is one migration: do not combine it with
 * `MigrateFlags.PARALLEL` (multifd opens several connections, each of which
 * the tunnel would take for a migration of its own) nor with libvirt's own
 * `COMPRESSED` (the stream's pages would no longer be pages hakobu can
 * encode: they would cross as opaque bytes).
 *
 * @module
 */

import { VERDICT_TIMEOUT_MS, verdictOf } from "../qemu/exec_tunnel.ts";
import type { StreamVerdict } from "../report.ts";
import {
  type ResidentCommand,
  type ResidentReceiver,
  type ResidentSender,
  startResidentReceiver,
  startResidentSender,
} from "../qemu/resident_tunnel.ts";
import type { SecurityFlags } from "../transport/secure/security.ts";

/** Options of {@link startLibvirtTunnel}. */
export interface LibvirtTunnelOptions {
  /** The codec chain, e.g. `["zero", "zstd"]` (raw is added last). */
  readonly codecs: readonly string[];
  /** Link pacing in bytes per second; null/absent: unpaced. */
  readonly bandwidth?: number | null;
  /** Channels between the two tunnel ends (default: the sender's core count). */
  readonly channels?: number;
  /** How the tunnel's link is authenticated and encrypted (both ends read it). */
  readonly security: SecurityFlags;
  /**
   * Resume a link lost mid-migration within this many ms: both ends take
   * `--resume-grace` (a receiver on the destination host, `remoteReceiver`,
   * must be started with it too, or the link stays a plain one); absent or
   * 0: a lost link fails the migration.
   */
  readonly resumeGraceMs?: number;
  /**
   * The migration port P: the source QEMU connects to `sourceHost:P`, the
   * destination QEMU listens on `destinationListen:P`. Default: a free
   * port here.
   */
  readonly port?: number;
  /** Where the sender listens for the source QEMU (default and only: `127.0.0.1`). */
  readonly sourceHost?: "127.0.0.1";
  /** libvirt's `listen_address` for the destination QEMU (default `127.0.0.2`). */
  readonly destinationListen?: string;
  /** The tunnel receiver's port on `receiverHost` (default: a free port here). */
  readonly tunnelPort?: number;
  /** Where the receiver listens for the sender (default `127.0.0.1`; the TLS name the sender checks unless `security.tlsName`). */
  readonly receiverHost?: string;
  /** How to run the tunnel script on either side (default: this Deno and checkout). */
  readonly command?: ResidentCommand;
  /**
   * `HOST:PORT` of a receiving tunnel already running on the destination
   * host (two real hosts: see the module's doc for its command line); then
   * only the sender starts here, and `port` and `destinationListen` must
   * be what that receiver's `--to-qemu` names.
   */
  readonly remoteReceiver?: string;
}

/** One migration's figures from the tunnel sender (its JSON line). */
export interface LibvirtTunnelStats {
  /** Bytes of QEMU's stream. */
  readonly streamBytes: number;
  /** hakobu frame bytes on the link between the tunnel ends. */
  readonly wireBytes: number;
  /** Page bodies that went through the channels. */
  readonly pages: number;
  /** Zero pages QEMU's stream carried as such. */
  readonly zeroPages: number;
  /** Rounds the stream parser counted. */
  readonly rounds: number;
  /** ms from the stream's first byte to its end. */
  readonly durationMs: number;
  /** Pages per codec name. */
  readonly codecPages: Readonly<Record<string, number>>;
  /** Why the stream parser fell back to opaque bytes, or null. */
  readonly fallbackReason: string | null;
}

/** The two running tunnel ends of {@link startLibvirtTunnel}. */
export interface LibvirtTunnel {
  /** `virDomainMigrateToURI3` parameters (`MigrateParams` fields). */
  readonly params: {
    /** `migrate_uri`: `tcp://127.0.0.1:P`. */
    readonly migrateUri: string;
    /** `listen_address`: where the destination QEMU listens. */
    readonly listenAddress: string;
  };
  /** The migration port P. */
  readonly port: number;
  /** The receiver's `HOST:PORT`. */
  readonly receiver: string;
  /**
   * The next migration's verdict: the source's and the rebuilt stream's
   * XXH3-128 compared by both ends (waits at most `timeoutMs`, default 30 s,
   * for the sender's line). Call once per migration, after it ended.
   */
  verdict(timeoutMs?: number): Promise<StreamVerdict>;
  /** The figures of the migration whose verdict was read last, or null (none read yet, or that migration failed). */
  stats(): LibvirtTunnelStats | null;
  /** Stops both ends. */
  close(): Promise<void>;
}

function freePort(hostname: string): number {
  const l = Deno.listen({ hostname, port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function num(v: unknown): number {
  return typeof v === "number" ? v : 0;
}

function statsOf(line: Record<string, unknown>): LibvirtTunnelStats {
  return {
    streamBytes: num(line.streamBytes),
    wireBytes: num(line.wireBytes),
    pages: num(line.pages),
    zeroPages: num(line.zeroPages),
    rounds: num(line.rounds),
    durationMs: num(line.durationMs),
    codecPages:
      (typeof line.codecPages === "object" && line.codecPages !== null
        ? line.codecPages
        : {}) as Record<string, number>,
    fallbackReason: typeof line.fallbackReason === "string"
      ? line.fallbackReason
      : null,
  };
}

/**
 * Starts the tunnel's receiver (listening for the sender, feeding the
 * destination QEMU at `destinationListen:P`) and its sender (serving the
 * source QEMU on `127.0.0.1:P`); resolves once the sender listens. Pass
 * `params` to the migration (`MigrateParams.migrateUri`/`listenAddress`),
 * then read {@link LibvirtTunnel.verdict}. Several migrations may go
 * through it one after the other (one verdict each).
 *
 * @throws {Error} when the sender does not listen within 20 s.
 */
export async function startLibvirtTunnel(
  options: LibvirtTunnelOptions,
): Promise<LibvirtTunnel> {
  const sourceHost = options.sourceHost ?? "127.0.0.1";
  const listenAddress = options.destinationListen ?? "127.0.0.2";
  const receiverHost = options.receiverHost ?? "127.0.0.1";
  const remote = options.remoteReceiver;
  if (remote !== undefined && options.port === undefined) {
    throw new Error(
      `A tunnel receiver on the destination (${remote}) feeds a destination QEMU port of its own (its --to-qemu): give that migration port too`,
    );
  }
  const port = options.port ?? freePort(sourceHost);
  const receiverAt = remote ??
    `${receiverHost}:${options.tunnelPort ?? freePort(receiverHost)}`;
  let receiver: ResidentReceiver | null = null;
  let sender: ResidentSender | null = null;
  try {
    receiver = remote !== undefined ? null : await startResidentReceiver({
      ...options.command,
      listen: receiverAt,
      incoming: `tcp:${listenAddress}:${port}`,
      // libvirt turns QEMU's return-path capability on (seen with libvirt
      // 9.0): the source QEMU waits at completion for the destination's
      // answers, which must come back through the tunnel.
      returnPath: true,
      resumeGraceMs: options.resumeGraceMs,
      security: options.security,
    });
    sender = await startResidentSender({
      ...options.command,
      serve: `${sourceHost}:${port}`,
      to: receiverAt,
      codecs: options.codecs,
      bandwidth: options.bandwidth,
      channels: options.channels,
      resumeGraceMs: options.resumeGraceMs,
      security: options.security,
    });
  } catch (e) {
    await sender?.close();
    await receiver?.close();
    throw e;
  }
  const s = sender;
  const r = receiver; // null: the destination host runs it
  let last: LibvirtTunnelStats | null = null;
  return {
    params: { migrateUri: `tcp://${sourceHost}:${port}`, listenAddress },
    port,
    receiver: receiverAt,
    async verdict(timeoutMs = VERDICT_TIMEOUT_MS): Promise<StreamVerdict> {
      // stats() speaks of this migration only, never of an earlier one.
      last = null;
      const line = await s.next(timeoutMs);
      if (line === null) {
        return {
          verified: false,
          sourceDigest: "",
          destinationDigest: "",
          detail:
            `the tunnel sender on ${sourceHost}:${port} reported no migration within ${timeoutMs} ms`,
        };
      }
      if (line.ok === true) last = statsOf(line);
      return verdictOf(line);
    },
    stats: () => last,
    async close(): Promise<void> {
      await s.close();
      await r?.close();
    },
  };
}
