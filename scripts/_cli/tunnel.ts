/**
 * What `tunnel.ts FORMAT send|receive` does once its flags are parsed
 * (`tunnel_cli.ts` parses them): carry a hypervisor's migration stream
 * through hakobu's channels and codecs, one migration per process, or one
 * per connection for the resident QEMU modes (`--serve`, `--to-qemu`).
 *
 * @module
 */

import type { Address } from "../../engine/transport/address.ts";
import type { WireConn } from "../../engine/wire/duplex.ts";
import { acceptNext } from "../../engine/transport/accept.ts";
import { connectRetrying } from "../../engine/transport/address.ts";
import {
  connectChannelRetrying,
  type ConnectSecurity,
  listenChannel,
  type ListenSecurity,
} from "../../engine/transport/secure/mod.ts";
import {
  type ByteReader,
  largeReads,
} from "../../engine/transport/read_stream.ts";
import { growPipe } from "../../engine/transport/pipe_size.ts";
import type { StreamFormat } from "../../engine/stream/format.ts";
import { qemuFormat } from "../../engine/stream/qemu_format.ts";
import {
  DEFAULT_MAX_PAGES,
  xenFormat,
} from "../../engine/stream/xen_format.ts";
import { sendStream, type StreamStats } from "../../engine/stream/send.ts";
import { receiveStream } from "../../engine/stream/receive.ts";
import { ChannelPools } from "../../engine/pipeline/channel_pools.ts";
import {
  type Admitted,
  StreamResumeServer,
} from "../../engine/stream/resume_receiver.ts";
import type { StreamResumeOptions } from "../../engine/stream/resume_source.ts";
import type { Endpoint } from "./options.ts";
import { reportRefused } from "./security_options.ts";
import { traceTunnel } from "../../engine/stream/_trace.ts";
import { defaultChannels } from "../../engine/default_channels.ts";

/** How long a sender retries its connection to the receiving tunnel. */
const CONNECT_TIMEOUT_MS = 20_000;
/**
 * The hypervisor's stream as the sender reads it: 1 MiB slabs (largeReads'
 * default) reused in turn. sendStream keeps no view of a chunk once it
 * asked for the next but one (it asks for one chunk ahead), so a ring of 2
 * would do; 4 leaves a margin, and 4 MiB of slabs instead of a fresh one per
 * MiB.
 */
function hypervisorReads(reader: ByteReader): ReadableStream<Uint8Array> {
  return largeReads(reader, undefined, { ring: 4 });
}

/** A sender's channel pools, its encode Workers started at once. */
function senderPools(
  options: Pick<TunnelSendOptions, "channels" | "batchPages">,
): ChannelPools {
  const pools = new ChannelPools();
  pools.warm({
    encoders: options.channels ?? defaultChannels(),
    batchPages: options.batchPages,
  });
  return pools;
}

/**
 * A receiver's channel pools, its decode Workers started at once: as many
 * as this host has cores, a sender's default (a sender of another count
 * gets its own). `once`: the receiver serves one session, which takes the
 * warm pool whole or shrunk to its sender's count (`shrink`), as a pool
 * that does not fit would never be used.
 */
function receiverPools(once: boolean): ChannelPools {
  const pools = new ChannelPools({ shrink: once });
  pools.warm({ decoders: defaultChannels() });
  return pools;
}

/** Options of {@link tunnelSend}. */
export interface TunnelSendOptions {
  /** The stream's format. */
  readonly format: "qemu" | "xen";
  /** The receiving tunnel. */
  readonly to: Address;
  /** The codec chain (raw is added last). */
  readonly codecs: readonly string[];
  /** Link pacing in bytes per second; absent: unpaced. */
  readonly bandwidth?: number;
  /** Channels (default: the core count). */
  readonly channels?: number;
  /** Pages per channel batch (default 256). */
  readonly batchPages?: number;
  /** Most stream bytes read ahead of the destination (default 8 MiB; 0: no bound). */
  readonly maxLeadBytes?: number;
  /** Xen: the pfn bound (default {@link DEFAULT_MAX_PAGES}). */
  readonly maxPages?: number;
  /** QEMU, resident: serve each connection on this socket as one migration. */
  readonly serve?: Endpoint;
  /** How the link to the receiving tunnel is authenticated and encrypted. */
  readonly security: ConnectSecurity;
  /**
   * Resume a lost link within this many milliseconds (reconnecting, with
   * the same credentials, to the same receiving tunnel, which must resume
   * too); absent or 0: a lost link fails the migration.
   */
  readonly resumeGraceMs?: number;
}

/**
 * The sending side: the stream on stdin (xl's replies go to stdout), or,
 * with `serve`, each connection on that socket; resolves with the
 * statistics (never, when serving).
 */
export async function tunnelSend(
  options: TunnelSendOptions,
): Promise<StreamStats> {
  const format: StreamFormat = options.format === "xen"
    ? xenFormat(options.maxPages ?? DEFAULT_MAX_PAGES)
    : qemuFormat;
  const grace = options.resumeGraceMs ?? 0;
  const resume: StreamResumeOptions | undefined = grace > 0
    ? {
      graceMs: grace,
      reconnect: () =>
        connectChannelRetrying(
          options.to,
          options.security,
          Math.min(CONNECT_TIMEOUT_MS, grace),
        ),
    }
    : undefined;
  const send = {
    format,
    codecs: options.codecs.map((name) => ({ name })),
    bandwidth: options.bandwidth ?? null,
    channels: options.channels,
    batchPages: options.batchPages,
    maxLeadBytes: options.maxLeadBytes,
    ...(resume ? { resume } : {}),
  };
  if (options.serve !== undefined) {
    if (options.serve.transport === "unix") {
      await Deno.remove(options.serve.path).catch(() => {});
    }
    const local = options.serve;
    // The channel Workers start once and serve every migration in turn;
    // they start now, so the first migration does not wait for them.
    const pools = senderPools(options);
    return await serve(
      localListener(local),
      local.transport === "unix"
        ? `unix:${local.path}`
        : `${local.hostname}:${local.port}`,
      async (qemu) => {
        traceTunnel("send hypervisor connected");
        const conn = await connectChannelRetrying(
          options.to,
          options.security,
          CONNECT_TIMEOUT_MS,
        );
        traceTunnel("send receiver connected");
        try {
          // QEMU's return path (libvirt turns it on): what the destination
          // QEMU writes back comes as BACK frames and goes to the source's.
          return await sendStream(
            hypervisorReads(qemu),
            conn,
            {
              ...send,
              back: halfCloseWritable(qemu),
              pools,
            },
          );
        } finally {
          conn.close();
        }
      },
    );
  }
  // The channel Workers load while the connection is made and the
  // hypervisor sets its migration up (QEMU's first byte comes hundreds of
  // milliseconds after it started this process, under TCG).
  const pools = senderPools(options);
  try {
    const conn = await connectChannelRetrying(
      options.to,
      options.security,
      CONNECT_TIMEOUT_MS,
    );
    // QEMU's or xl's pipe: up to 1 MiB per read instead of 64 KiB
    growPipe(0);
    return await sendStream(
      hypervisorReads(Deno.stdin),
      conn,
      {
        ...send,
        pools,
        ...(options.format === "xen" ? { back: Deno.stdout.writable } : {}),
      },
    );
  } finally {
    pools.close();
  }
}

/** Options of {@link tunnelReceive}. */
export interface TunnelReceiveOptions {
  /** The stream's format. */
  readonly format: "qemu" | "xen";
  /** Where to listen for the sending tunnel. */
  readonly listen: Address;
  /** QEMU, resident: feed each session into QEMU's `migrate-incoming` socket. */
  readonly toQemu?: Endpoint;
  /**
   * QEMU, with `toQemu`: carry QEMU's return path (what the destination
   * QEMU writes back goes to the source QEMU), which libvirt turns on. The
   * source then waits for the destination to load the whole stream before
   * it ends it, so the stream's end cannot be held until the digests
   * compare: a corrupted stream is caught by the verdict after the fact,
   * and by QEMU's own checks, not before the destination reads its end.
   */
  readonly returnPath?: boolean;
  /** Xen: the command that gets the rebuilt stream (default `xl migrate-receive`). */
  readonly command?: readonly string[];
  /**
   * Who may send: only a connection that passed it reaches the session, so
   * no byte of an unauthenticated peer reaches QEMU or `xl`.
   */
  readonly security: ListenSecurity;
  /**
   * Keep a session whose link was lost this many milliseconds for its
   * source to resume (its hypervisor's pipe open), when the sending tunnel
   * asks; absent or 0: no session is resumable.
   */
  readonly resumeGraceMs?: number;
}

/** Frame timeout of a resumable session: the default plus the grace (it waits through a cut). */
function frameTimeout(server: StreamResumeServer | null): number | undefined {
  return server ? 120_000 + server.maxGraceMs : undefined;
}

/**
 * The receiving side: takes one connection and writes the rebuilt stream to
 * stdout (QEMU) or into the command's stdin (Xen; its stdout goes back to
 * the source); with `toQemu`, serves one session per connection.
 */
export async function tunnelReceive(
  options: TunnelReceiveOptions,
): Promise<StreamStats> {
  const { listen } = options;
  const server = (options.resumeGraceMs ?? 0) > 0
    ? new StreamResumeServer({
      maxGraceMs: options.resumeGraceMs,
      onEvent: (e) =>
        console.error(
          e.type === "refused"
            ? `refused a RESUME: ${e.message}`
            : e.type === "parked"
            ? `session ${e.session}: link lost (${e.reason}); waiting for its RESUME`
            : `session ${e.session}: resumed`,
        ),
    })
    : null;
  if (options.format === "qemu" && options.toQemu !== undefined) {
    const qemuAt = options.toQemu;
    const listener = await listenChannel(listen, options.security, {
      onRefused: reportRefused,
    });
    // The decode Workers start once and serve every session in turn; they
    // start now, so the first session does not wait for them.
    const pools = receiverPools(false);
    return await serve(
      listener,
      `${listener.addr.hostname}:${listener.addr.port}`,
      async (conn) => {
        traceTunnel("receive source connected");
        const admitted = await admit(server, conn);
        if (admitted.kind !== "session") return null; // a RESUME
        try {
          // QEMU listens once `migrate-incoming` was issued: wait for it.
          const qemu = await connectEndpoint(qemuAt, CONNECT_TIMEOUT_MS);
          traceTunnel("receive destination connected");
          try {
            return await receiveStream(admitted.conn, {
              format: "qemu",
              out: qemu.writable,
              pools,
              frameTimeoutMs: frameTimeout(server),
              ...(options.returnPath
                ? { back: qemu.readable, holdLast: false }
                : {}),
            });
          } finally {
            try {
              qemu.close();
            } catch { /* closed with its stream */ }
          }
        } finally {
          await admitted.done("ended");
        }
      },
    );
  }
  // One session: the first connection that authenticates. xl is started
  // only then. Resumable, the listener stays open for its RESUMEs. The
  // decode Workers load while it waits.
  const pools = receiverPools(true);
  try {
    return await receiveSession(options, server, listen, pools);
  } finally {
    pools.close();
  }
}

/** The one-session receiver's listen, accept and session (see {@link tunnelReceive}). */
async function receiveSession(
  options: TunnelReceiveOptions,
  server: StreamResumeServer | null,
  listen: Address,
  pools: ChannelPools,
): Promise<StreamStats> {
  const listener = await listenChannel(listen, options.security, {
    onRefused: reportRefused,
  });
  let admitted: Admitted;
  for (;;) {
    admitted = await admit(server, await listener.accept());
    if (admitted.kind === "session") break;
  }
  const session = admitted;
  let ended = false;
  const resumes = server
    ? (async () => {
      while (!ended) {
        let next;
        try {
          next = await listener.accept();
        } catch {
          return; // closed
        }
        void server.admit(next, next.identity ?? null, { hello: false });
      }
    })()
    : null;
  if (!server) listener.close();
  try {
    return await receiveOne(
      options,
      session.conn,
      frameTimeout(server),
      pools,
    );
  } finally {
    await session.done("ended");
    ended = true;
    try {
      listener.close();
    } catch { /* closed */ }
    await resumes;
  }
}

/** The first frame of an authenticated connection, through the resume server when there is one. */
function admit(
  server: StreamResumeServer | null,
  conn: Awaited<
    ReturnType<Awaited<ReturnType<typeof listenChannel>>["accept"]>
  >,
): Promise<Admitted> {
  if (server) return server.admit(conn, conn.identity ?? null);
  return Promise.resolve({
    kind: "session",
    conn,
    session: null,
    done: () => Promise.resolve(),
  });
}

/** One session into stdout (QEMU) or the command's stdin (Xen). */
async function receiveOne(
  options: TunnelReceiveOptions,
  conn: WireConn,
  frameTimeoutMs: number | undefined,
  pools: ChannelPools,
): Promise<StreamStats> {
  if (options.format === "qemu") {
    growPipe(1);
    return await receiveStream(conn, {
      format: "qemu",
      out: Deno.stdout.writable,
      frameTimeoutMs,
      pools,
    });
  }
  const cmd = options.command?.length
    ? options.command
    : ["xl", "migrate-receive"];
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  // xl talks between its messages: the stream goes through as it comes.
  return await receiveStream(conn, {
    format: "xen",
    out: child.stdin,
    back: child.stdout,
    holdLast: false,
    exited: child.status.then((s) => s.code),
    frameTimeoutMs,
    pools,
  });
}

function reportAcceptFailure(e: Error): void {
  console.error(`accept failed, still listening: ${e.message}`);
}

async function connectEndpoint(
  at: Endpoint,
  timeoutMs: number,
): Promise<Deno.Conn> {
  if (at.transport === "tcp") return await connectRetrying(at, timeoutMs);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await Deno.connect({ transport: "unix", path: at.path });
    } catch (e) {
      if (performance.now() > deadline) {
        throw new Error(
          `Cannot connect to "unix:${at.path}" within ${timeoutMs} ms: ${
            (e as Error).message
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * `conn`'s writing half as a stream whose close only shuts that half
 * (`closeWrite`), so the stream read from `conn` still ends with EOF.
 */
function halfCloseWritable(conn: Deno.Conn): WritableStream<Uint8Array> {
  return new WritableStream({
    async write(chunk) {
      for (let off = 0; off < chunk.length;) {
        off += await conn.write(chunk.subarray(off));
      }
    },
    close: () => conn.closeWrite().catch(() => {}),
  });
}

/** QEMU's local socket (the source's `--serve`): local, so no TLS. */
function localListener(at: Endpoint): { accept(): Promise<Deno.Conn> } {
  const listener = at.transport === "unix"
    ? Deno.listen({ transport: "unix", path: at.path })
    : Deno.listen({ hostname: at.hostname, port: at.port });
  return { accept: () => acceptNext<Deno.Conn>(listener, reportAcceptFailure) };
}

/**
 * Resident: accepts connections from `listener` for ever and runs `session`
 * on each (concurrently), printing `{"listening":LABEL}` on stdout at once
 * (what a caller waits for before it points a sender or QEMU here), then
 * one JSON line per session. A failed session is a line with `ok: false`;
 * the server goes on.
 */
async function serve<C extends { close(): void }>(
  listener: { accept(): Promise<C> },
  label: string,
  session: (conn: C) => Promise<StreamStats | null>,
): Promise<never> {
  console.error(`serving on ${label}`);
  console.log(JSON.stringify({ listening: label }));
  let n = 0;
  for (;;) {
    // A connection reset or refused is no reason to stop serving.
    const conn = await listener.accept();
    const id = ++n;
    session(conn).then(
      (stats) => {
        // null: a connection that carried on another session (RESUME)
        if (stats) {
          console.log(JSON.stringify({ ok: true, session: id, ...stats }));
        }
      },
      (e) =>
        console.log(
          JSON.stringify({
            ok: false,
            session: id,
            error: String((e as Error).message ?? e),
          }),
        ),
    ).finally(() => {
      try {
        conn.close();
      } catch { /* closed with its streams */ }
    });
  }
}
