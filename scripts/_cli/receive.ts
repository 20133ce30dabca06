import { hex } from "../../engine/digest.ts";
import { formatBytes, formatDuration } from "../../engine/format.ts";
import { mismatchText } from "../../engine/report.ts";
import {
  ReceiveBudget,
  receiveMigration,
  type ReceiveResult,
  type ReceiverGpuSettings,
  ResumeRegistry,
} from "../../engine/receiver.ts";
import { decodeGpuOf } from "../../engine/session/receive_gpu.ts";
import { bestEffort } from "../../engine/session/best_effort.ts";
import { SimMemorySink } from "../../engine/sim/mod.ts";
import { parseAddress } from "../../engine/transport/address.ts";
import {
  type ChannelConn,
  listenChannel,
  type ListenSecurity,
} from "../../engine/transport/secure/mod.ts";
import { reportRefused } from "./security_options.ts";
import { FrameWriter } from "../../engine/wire/frame_writer.ts";
import { FrameType } from "../../engine/wire/frame.ts";
import { encodeError } from "../../engine/wire/messages.ts";

/** Default most sessions served at once. */
export const DEFAULT_MAX_SESSIONS = 4;

/** Options of `hakobu receive`. */
export interface ReceiveCommandOptions {
  listen: string;
  /** TLS credentials and allow-list, or plain TCP (asked for by name). */
  security: ListenSecurity;
  /** Serve one migration, then exit (0 only if it verified). */
  once?: boolean;
  /** Largest memory one HELLO may announce. */
  maxMemoryBytes: number;
  /**
   * Memory and decoder state all sessions in progress may hold together
   * (default {@link maxMemoryBytes}: concurrent sessions share what one
   * could have).
   */
  maxTotalMemoryBytes?: number;
  /** Most sessions at once (default 4); a connection beyond is refused with an ERROR frame. */
  maxSessions?: number;
  /** Most milliseconds from connecting to a whole HELLO. */
  handshakeTimeoutMs?: number;
  /** Most milliseconds the source may take for each next whole frame. */
  frameTimeoutMs?: number;
  /**
   * Most milliseconds a session whose connection was lost during pre-copy
   * is kept for its source to resume it (default 2 minutes; 0: no session
   * is resumable). The source's policy asks for its own grace, which this
   * caps.
   */
  resumeGraceMs?: number;
  /**
   * Decode rle and delta sections on the GPU (`--gpu auto|gpu|cpu`,
   * `--gpu-require`; default the CPU): as `receiveMigration`'s `gpu`.
   */
  gpu?: ReceiverGpuSettings;
  json?: boolean;
  onListening?: (addr: Deno.NetAddr) => void;
  /** Stops accepting; sessions in progress are finished first. */
  signal?: AbortSignal;
}

/**
 * Listens for migrations and receives each into simulated destination
 * memory, several at once, each isolated: a session that fails, stalls or
 * asks too much ends alone, and a connection reset before it was accepted
 * does not stop the receiver. Returns the exit code: 0 when every migration
 * verified.
 */
export async function receiveCommand(
  opts: ReceiveCommandOptions,
): Promise<number> {
  const addr = parseAddress(opts.listen, "listen address");
  // bad GPU settings fail here, before the receiver listens
  decodeGpuOf(opts.gpu);
  const maxSessions = opts.maxSessions ?? DEFAULT_MAX_SESSIONS;
  if (!Number.isSafeInteger(maxSessions) || maxSessions < 1) {
    throw new RangeError(
      `Bad session limit "${maxSessions}": expected a positive integer`,
    );
  }
  const budget = new ReceiveBudget(
    opts.maxTotalMemoryBytes ?? opts.maxMemoryBytes,
  );
  const registry = new ResumeRegistry({ maxGraceMs: opts.resumeGraceMs });
  // A peer that fails TLS or its authentication is reported and never
  // served; its bytes reach no session.
  const listener = await listenChannel(addr, opts.security, {
    authTimeoutMs: opts.handshakeTimeoutMs,
    onRefused: reportRefused,
    // Each TLS connection's read buffer is memory a source makes it hold.
    budget,
  });
  const local = listener.addr;
  // The first line names the real port (useful with port 0); scripts read it.
  console.log(`listening on ${local.hostname}:${local.port}`);
  opts.onListening?.(local);
  let stopping = false;
  const stop = () => {
    stopping = true;
    try {
      listener.close();
    } catch { /* already closed */ }
  };
  opts.signal?.addEventListener("abort", stop, { once: true });
  let failures = 0;
  const sessions = new Set<Promise<void>>();
  // --once: the first connection's session; later connections may only
  // resume it, and the receiver stops when it ends.
  let first: Promise<boolean> | null = null;
  while (!stopping) {
    let conn: ChannelConn;
    try {
      // A connection reset while it waited in the backlog (os error 107)
      // is that peer's problem: keep serving the others.
      conn = await listener.accept();
    } catch (error) {
      if (stopping) break;
      throw error;
    }
    // A parked session holds no connection: its RESUME must get in.
    if (sessions.size - registry.parked >= maxSessions) {
      refuse(
        conn,
        `This receiver is serving its limit of ${maxSessions} sessions (--max-sessions): try again later`,
      );
      continue;
    }
    const served = serve(conn, opts.once === true && first !== null);
    const session: Promise<void> = served.then((ok) => {
      if (!ok) failures++;
    }).finally(() => sessions.delete(session));
    sessions.add(session);
    if (opts.once && first === null) {
      first = served;
      // Without resumable sessions nothing else is taken; with them, RESUMEs
      // are until the session ends.
      if (registry.maxGraceMs === 0) stop();
      else served.finally(stop);
    }
  }
  opts.signal?.removeEventListener("abort", stop);
  await Promise.all(sessions);
  if (first) return (await first) ? 0 : 1;
  return failures === 0 ? 0 : 1;

  /**
   * Receives one migration on `conn` and prints its outcome; true if
   * verified (or if the connection carried on another session, which
   * reports for itself).
   */
  async function serve(
    conn: ChannelConn,
    resumeOnly: boolean,
  ): Promise<boolean> {
    const peer = conn.identity === null
      ? conn.remote
      : `${conn.remote} (${conn.identity})`;
    let result: ReceiveResult;
    let sink: SimMemorySink | null = null;
    try {
      result = await receiveMigration(conn, {
        maxMemoryBytes: opts.maxMemoryBytes,
        handshakeTimeoutMs: opts.handshakeTimeoutMs,
        frameTimeoutMs: opts.frameTimeoutMs,
        gpu: opts.gpu,
        budget,
        resume: { registry, identity: conn.identity, only: resumeOnly },
        // A source that offers per-channel connections gets them: each
        // channel's Worker listens on a port of its own on this host, behind
        // the same security, and counts in this session's budget.
        channelConnections: {
          hostname: local.hostname,
          security: opts.security,
          identity: conn.identity,
          joinTimeoutMs: opts.handshakeTimeoutMs,
        },
        onEvent: (e) => {
          if (e.type === "channelRefused" && !opts.json) {
            console.error(
              `refused a connection to channel ${e.channel} of ${peer}'s session: ${e.message}`,
            );
          }
          if (e.type === "parked" && !opts.json) {
            console.error(
              `connection from ${peer} lost before ${e.waiting} (${e.reason}): the session waits for its source to resume it`,
            );
          }
        },
        createSink: (hello) =>
          sink = new SimMemorySink({
            pageSize: hello.pageSize,
            pageCount: hello.memoryBytes / hello.pageSize,
          }),
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // What became of the destination memory: "discarded" after a
      // failure, "none" when the session failed before HELLO made any.
      const destination = (sink as SimMemorySink | null)?.state ?? "none";
      if (opts.json) {
        console.log(
          JSON.stringify({
            verified: false,
            error: message,
            peer: conn.remote,
            identity: conn.identity,
            destination,
          }),
        );
      } else {
        console.error(
          `migration from ${peer} failed: ${message} (destination memory: ${destination})`,
        );
      }
      return false;
    } finally {
      try {
        conn.close();
      } catch { /* already closed by the peer */ }
    }
    if (result.joined) {
      if (!opts.json) console.error(`${peer} resumed its migration`);
      return true;
    }
    if (opts.json) {
      console.log(JSON.stringify({ ...result, identity: conn.identity }));
    } else {
      const state = result.aborted
        ? "ABORTED"
        : result.verified
        ? "VERIFIED"
        : "NOT VERIFIED";
      // vm and policy were cleaned when decoded (wire/peer_text.ts).
      console.log(
        `${state}: ${result.vm} from ${peer} (${
          formatBytes(result.memoryBytes)
        }) policy "${result.policy}", ` +
          `${result.pagesApplied} pages in ${result.rounds} rounds, ${
            formatBytes(result.bytesReceived)
          } received ` +
          `in ${formatDuration(result.durationMs)}, digest ${
            result.digest || hex(new Uint8Array())
          }${
            result.verified && result.commit
              ? ", committed on the source's COMMIT"
              : ""
          }`,
      );
      // what decoded on the GPU, or why nothing did, when it was asked for
      if (decodeGpuOf(opts.gpu) && !result.aborted) {
        console.log(`  GPU: ${result.gpu.note}`);
      }
      if (!result.verified && result.differingRanges > 0) {
        console.log(
          `  ${
            mismatchText({
              rangeBytes: result.rangeBytes,
              ranges: result.mismatched,
              differingRanges: result.differingRanges,
              pages: result.mismatchedPages,
              differingPages: result.differingPages,
            })
          }`,
        );
      }
    }
    return result.verified;
  }
}

/** Tells a connection why it is not served (best effort, 2 s at most), then closes it. */
function refuse(conn: ChannelConn, message: string): void {
  const writer = new FrameWriter(conn.writable);
  bestEffort(
    writer.write(FrameType.ERROR, 0, encodeError({ message }))
      .then(() => writer.close()),
  ).finally(() => {
    try {
      conn.close();
    } catch { /* closed with the writer */ }
  });
}
