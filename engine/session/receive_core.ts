/**
 * The one receiving session core, whatever the destination: the handshake
 * (protocol version, page size, memory and channel limits, codec
 * negotiation), each channel's CODEC and BATCH frames to its decode Worker,
 * per-channel round accounting, ABORT and ERROR, and the rule that a
 * failed session tells the source why and discards what it received. What
 * happens at the end — a memory digest, a rebuilt hypervisor stream — is the
 * {@link ReceiveMode}'s: sim memory (`memory_mode.ts`), the QEMU stream and
 * the Xen stream rebuilders are three modes over this core.
 *
 * @module
 */

import type { Codec } from "../codecs/codec.ts";
import {
  CodecError,
  LinkLostError,
  MigrationError,
  WireError,
} from "../errors.ts";
import { formatBytes } from "../format.ts";
import { MAX_CHANNELS, PAGE_SIZE } from "../plan.ts";
import {
  type ChannelConnEvent,
  DecoderPool,
  type DecoderPoolOptions,
} from "../pipeline/decoder_pool.ts";
import type { ChannelPools } from "../pipeline/channel_pools.ts";
import { hex } from "../digest.ts";
import {
  DEFAULT_READ_BUFFER_BYTES,
  type ListenSecurity,
} from "../transport/secure/mod.ts";
import type { DecodeGpu, DecodeReply } from "../pipeline/_messages.ts";
import { type ReceiveGpuReport, receiveGpuReport } from "./receive_gpu.ts";
import type { WireConn } from "../wire/duplex.ts";
import {
  type Frame,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
} from "../wire/frame.ts";
import { negotiateCodecs } from "../wire/negotiate.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  type ChannelJoin,
  type CodecSetup,
  decodeAbort,
  decodeCodec,
  decodeError,
  decodeHello,
  decodeResume,
  decodeRoundEnd,
  encodeCommitted,
  encodeError,
  encodeResumed,
  encodeStarting,
  encodeWelcome,
  type Hello,
  PROTOCOL_VERSION,
  type Result,
  type RoundEnd,
} from "../wire/messages.ts";
import type { ReceiveBudget, Reservation } from "./budget.ts";
import { bestEffort } from "./best_effort.ts";
import { Watchdog } from "./watchdog.ts";
import { within } from "./_within.ts";
import {
  type ResumableSession,
  type ResumeRegistry,
  SessionEndedError,
} from "./resume_registry.ts";

/** Default largest memory a receiver accepts: 64 GiB. */
export const DEFAULT_MAX_MEMORY_BYTES: number = 64 * 1024 ** 3;

/** Default time from connecting to a whole HELLO: 10 s. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Default time the source may take to send each next whole frame once the
 * session runs: 2 minutes. A source never pauses that long (each round
 * sends while it runs, and a hypervisor stream's quiet spells — a
 * destination `xl` building its domain — last seconds), while an idle or a
 * trickling peer is cut off.
 */
export const DEFAULT_FRAME_TIMEOUT_MS = 120_000;

/** The shortest interval between two STARTING frames, whatever HELLO asks. */
const MIN_KEEPALIVE_MS = 20;

/** Default most decoder state (dedup stores, zstd windows) one session may make the receiver hold: 1 GiB. */
export const DEFAULT_MAX_CODEC_STATE_BYTES: number = 1024 ** 3;

/**
 * Most rounds that may be open at once (ended by some channels, not yet by
 * all). A source ends round r on every channel before it starts r + 1, so
 * two suffice; the bound keeps a peer from growing the bookkeeping.
 */
const MAX_OPEN_ROUNDS = 2;

/** How decoded pages reach a mode's destination. */
export interface SinkChannels {
  /** Destination memory the decode Workers write into (with `touched`). */
  readonly memory?: SharedArrayBuffer;
  /** One byte per page, 1 once written with non-zero bytes. */
  readonly touched?: SharedArrayBuffer;
  /** Otherwise: each decoded batch, in its channel's order. */
  readonly onPages?: (
    channel: number,
    pages: Extract<DecodeReply, { type: "pages" }>,
  ) => void;
}

/** What a mode may do with the session while it handles a frame. */
export interface SessionControl {
  /** The HELLO the session accepted. */
  readonly hello: Hello;
  /** The decode Workers. */
  readonly pool: DecoderPool;
  /** Sends a frame to the source. */
  reply(type: FrameType, payload: Uint8Array, round?: number): Promise<void>;
  /** Frame bytes read so far, every connection of the session together. */
  readonly bytesRead: number;
  /**
   * Resolves with the pages applied so far, every channel and connection
   * together, once every channel has finished what it was given.
   */
  syncPages(): Promise<number>;
  /** Stream offset of the frame being handled. */
  readonly at: number;
  /** Rounds whose ROUND_END every channel has sent, so far. */
  readonly roundsDone: number;
  /** No more CODEC, BATCH or ROUND_END frames may come (e.g. after FINAL). */
  closePages(): void;
}

/** A destination: how a session opens it, its end frames, and how it is thrown away. */
export interface ReceiveMode<R> {
  /** A word for errors, e.g. `"memory"`, `"QEMU stream"`. */
  readonly what: string;
  /** What HELLO's `stream` must say: `"memory"` (absent) or a stream format's name. */
  readonly stream: string;
  /** Frame types this mode handles (beside the core's). */
  readonly frames: readonly FrameType[];
  /**
   * HELLO was accepted by the core's checks: open the destination and say
   * how pages reach it. Throwing refuses the session with that message.
   */
  open(hello: Hello): Promise<SinkChannels>;
  /**
   * The verification scheme WELCOME names, chosen from HELLO's `verify`
   * (called after {@link open}); absent or undefined: none named.
   */
  verify?(hello: Hello): string | undefined;
  /**
   * Whether the session takes the commit protocol that HELLO offers
   * (`hello.commit`; called after {@link open}): WELCOME says so, and the
   * mode commits its destination only on the source's COMMIT. Absent or
   * false: the mode ends as it always did.
   */
  commit?(hello: Hello): boolean;
  /**
   * Commit protocol: the verified RESULT the mode sent and now waits for
   * COMMIT on; null otherwise. While it has one, a lost connection parks
   * the session (when resumable) as during pre-copy, and a RESUME is
   * answered with it in RESUMED.
   */
  verdict?(): Result | null;
  /** The whole digest (hex) of what the mode committed; null while it has not. */
  committed?(): string | null;
  /** Called once WELCOME is sent (a mode may start sending to the source then). */
  started?(s: SessionControl): void;
  /** One of {@link frames}; returns the session's result when it ends. */
  frame(frame: Frame, s: SessionControl): Promise<R | null>;
  /** Called once when the session fails or is aborted: drop what was received. */
  discard(error: unknown): Promise<void>;
  /** What the session waits for next, in words (for "Connection closed before ..."). */
  waiting(): string;
}

/** Progress of a receiving session, for logs and progress bars. */
export type ReceiveEvent =
  | { readonly type: "hello"; readonly hello: Hello }
  | {
    /** Every channel sent its ROUND_END of this round. */
    readonly type: "round";
    readonly round: number;
    /** The source's accounting, summed over channels. */
    readonly roundEnd: RoundEnd;
    readonly bytesReceived: number;
  }
  | { readonly type: "abort"; readonly reason: string }
  | {
    /**
     * The connection was lost before FINAL, or (commit protocol) after a
     * verified RESULT: the session waits for a RESUME.
     */
    readonly type: "parked";
    /** What the session waits for: `"FINAL"` in pre-copy, `"COMMIT"` after its RESULT. */
    readonly waiting: string;
    /** The session id a RESUME must name. */
    readonly session: string;
    /** Pages applied per channel, which RESUMED will report. */
    readonly channelPages: readonly number[];
    /** Why the connection ended. */
    readonly reason: string;
  }
  | {
    /** A RESUME took the session over on a new connection. */
    readonly type: "resumed";
    readonly channelPages: readonly number[];
  }
  | {
    /** Per-channel connections: channel `channel`'s connection joined. */
    readonly type: "channelJoined";
    readonly channel: number;
    readonly remote: string;
  }
  | {
    /**
     * Per-channel connections: a connection to channel `channel`'s port
     * was refused (its security handshake or its JOIN), told why and closed.
     */
    readonly type: "channelRefused";
    readonly channel: number;
    readonly message: string;
  };

/**
 * Per-channel connections, on a receiver: where channel connections are
 * taken and how they are checked (the same as the session's connection).
 */
export interface ChannelConnectionsOptions {
  /** The host the receiver listens on; each channel listens on a port of its own there. */
  readonly hostname: string;
  /** The receiver's security: each channel connection passes the same handshake. */
  readonly security: ListenSecurity;
  /** Who this session's connection authenticated as (null over plain TCP): channel connections must be the same. */
  readonly identity: string | null;
  /** Most milliseconds from WELCOME until every channel joined (default: the handshake timeout). */
  readonly joinTimeoutMs?: number;
  /** Each TLS channel connection's read buffer (default 4 MiB), reserved in the budget for the session. */
  readonly readBufferBytes?: number;
}

/** Options of {@link receiveSession}. */
export interface ReceiveSessionOptions {
  /** Largest `memoryBytes` a HELLO may announce (default 64 GiB). */
  readonly maxMemoryBytes?: number;
  /** Most channels a HELLO may ask for (default 64). */
  readonly maxChannels?: number;
  /** Codecs this receiver knows (default: the registry's). */
  readonly codecs?: readonly Codec[];
  /** Called for each {@link ReceiveEvent}; an exception fails the session. */
  readonly onEvent?: (event: ReceiveEvent) => void;
  /** Most milliseconds from the start of the session to a whole HELLO (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /**
   * Most milliseconds the source may take to send each next whole frame
   * (default 2 minutes): an idle peer and one that trickles bytes alike
   * fail the session with an error that says what it waited for.
   */
  readonly frameTimeoutMs?: number;
  /** Most bytes of decoder state the session's CODEC frames may ask for, all channels (default 1 GiB). */
  readonly maxCodecStateBytes?: number;
  /**
   * A budget shared with the receiver's other sessions: the memory HELLO
   * announces and the decoder state CODEC frames ask for are reserved in it
   * before they are allocated, and given back when the session ends.
   */
  readonly budget?: ReceiveBudget;
  /**
   * Resumable sessions: the receiver's registry, shared by its connections,
   * and the source identity this connection authenticated as (null over
   * plain TCP). Without it HELLO's `resumeMs` is ignored and RESUME refused.
   */
  readonly resume?: {
    readonly registry: ResumeRegistry;
    readonly identity: string | null;
    /** Take only a RESUME on this connection: a HELLO is refused (a receiver that serves one migration). */
    readonly only?: boolean;
  };
  /**
   * Grant per-channel connections when HELLO offers them (a session into
   * shared memory only): each channel's decode Worker takes its own
   * connection, authenticated as this one, and reads it itself. A
   * resumable session parks on a lost channel connection too; on resume
   * every channel joins again (fresh Workers and ports, a fresh token).
   * Absent: every channel stays inside `conn`.
   */
  readonly channelConnections?: ChannelConnectionsOptions;
  /**
   * Where the decode Workers come from and go back to after a session that
   * ended well (a resident receiver's, kept between sessions); absent: they
   * are started per session and closed after it.
   */
  readonly pools?: ChannelPools;
  /**
   * Decode on the GPU (`receive_gpu.ts`): the decode Workers' settings, as
   * `decodeGpuOf` makes them; absent: the CPU decodes.
   */
  readonly gpu?: DecodeGpu;
}

/** How a session ended without failing. */
export type SessionOutcome<R> =
  | {
    readonly aborted: false;
    readonly joined?: false;
    readonly result: R;
    readonly hello: Hello;
    /** Times a RESUME carried the session on over a new connection. */
    readonly resumes: number;
    /** Its decode Workers' GPU: which, and how many pages it decoded. */
    readonly gpu: ReceiveGpuReport;
  }
  | {
    /**
     * This connection carried on another session (its first frame was
     * RESUME) until that session ended or lost it too; the session's own
     * call reports its outcome.
     */
    readonly aborted: false;
    readonly joined: true;
    /** The session id. */
    readonly session: string;
    readonly hello: null;
  }
  | {
    readonly aborted: true;
    readonly reason: string;
    readonly hello: Hello | null;
    /** Pages applied before the abort. */
    readonly pagesApplied: number;
  };

type Phase = "hello" | "session";

/**
 * Serves one session on `conn` with `mode`. Resolves when the mode returns
 * a result or the source aborts; rejects (after sending ERROR, unless the
 * source failed first, and discarding) on any violation, codec error, mode
 * error or lost connection. The connection is closed when it settles.
 *
 * A resumable session (HELLO asked for it and `options.resume` is given)
 * whose connection is lost before FINAL parks instead: it applies what came
 * whole, forgets its decoders' state, and waits the grace for a RESUME on a
 * new connection from the same identity, then carries on there.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   PROTOCOL_VERSION,
 *   SimMemorySink,
 * } from "@hakobu/hakobu";
 * import { memoryMode } from "./memory_mode.ts";
 * import { receiveSession } from "./receive_core.ts";
 * import { SourceLink } from "./source_link.ts";
 *
 * const [conn, destination] = memoryDuplex();
 * const received = receiveSession(
 *   destination,
 *   memoryMode({
 *     createSink: () => new SimMemorySink({ pageSize: 4096, pageCount: 4 }),
 *   }),
 *   {},
 * );
 * // A source that says hello, then gives up.
 * const link = new SourceLink(conn);
 * await link.hello({
 *   protocol: PROTOCOL_VERSION,
 *   memoryBytes: 4 * 4096,
 *   pageSize: 4096,
 *   codecs: [{ id: 0, name: "raw" }],
 *   vm: "sim",
 *   policy: "p",
 *   channels: 1,
 * });
 * await link.abort("operator");
 * const outcome = await received;
 * assert.equal(outcome.aborted, true);
 * assert.equal(outcome.aborted && outcome.reason, "operator");
 * ```
 */
export async function receiveSession<R>(
  conn: WireConn,
  mode: ReceiveMode<R>,
  options: ReceiveSessionOptions = {},
): Promise<SessionOutcome<R>> {
  let reader = new FrameReader(conn.readable, {
    ownPayload: (t) => t === FrameType.BATCH,
    // BATCH payloads go to the pool's channels, which give their buffers back
    payloadBuffer: (n) => pool?.payloadBuffer(n) ?? new Uint8Array(n),
  });
  let writer = new FrameWriter(conn.writable);
  const emit = options.onEvent ?? (() => {});
  let phase: Phase = "hello";
  let hello: Hello | null = null;
  let pool: DecoderPool | null = null;
  const startPool = (o: DecoderPoolOptions): DecoderPool =>
    options.pools?.decoder(o) ?? DecoderPool.start(o);
  /** Pages decoded on the GPU by the pools of connections lost before this one. */
  let gpuPagesBefore = 0;
  /** The session ended with its mode's result: only then is its pool given back. */
  let endedWell = false;
  // One promise for the whole session (a new one per frame would pile up
  // waiters in the pool, one per frame read).
  let poolFailed: Promise<never> | null = null;
  let peerFailed = false;
  const modeFrames = new Set<number>(mode.frames);
  // round accounting: per round, the channels that ended it and the sums
  const rounds = new Map<number, { channels: Set<number>; sum: RoundEnd }>();
  let roundsDone = 0;
  let at = 0;
  let pagesClosed = false;
  const watchdog = new Watchdog();
  const handshakeMs = options.handshakeTimeoutMs ??
    DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const frameMs = options.frameTimeoutMs ?? DEFAULT_FRAME_TIMEOUT_MS;
  const maxState = options.maxCodecStateBytes ??
    DEFAULT_MAX_CODEC_STATE_BYTES;
  const reservations: Reservation[] = [];
  // decoder state asked for so far, by channel and codec id
  const codecState = new Map<string, number>();
  let stateBytes = 0;
  let negotiated: Map<number, Codec> | null = null;
  // Resumable sessions: the registry's entry, the pages each channel
  // applied on earlier connections (by decoders since closed), frame bytes
  // read on them, and how the current connection is let go.
  let resumable: ResumableSession | null = null;
  let heldBefore: number[] = [];
  let bytesBefore = 0;
  let resumes = 0;
  let release: (() => void) | null = null;
  let linkLost = false;
  // A RESUME took the session from a connection still open here (half-open).
  let takenOver = false;
  let sinkChannels: SinkChannels | null = null;
  // The commit protocol was negotiated (WELCOME said so).
  let commit = false;
  // Per-channel connections (WELCOME's channelJoin): frame bytes read on
  // each, each channel's final round, ROUND_ENDs held back while the
  // open-round bound is full, and whether the loop waits for a frame (a
  // channel's progress then re-arms the frame timeout).
  let channelJoin: ChannelJoin | null = null;
  let channelBytes: number[] = [];
  let channelFinal: (number | null)[] = [];
  let finalsLeft = 0;
  let allFinal: (() => void) | null = null;
  const heldEnds: { channel: number; end: RoundEnd; at: number }[] = [];
  let awaitingFrame = false;
  const channelBytesRead = () => channelBytes.reduce((a, b) => a + b, 0);
  // A resumable session's channel connection that was lost (the link's
  // failure, not the source's): the loop parks the session on it.
  let channelLoss: WireError | null = null;
  let loseChannel: ((e: WireError) => void) | null = null;
  let channelLost: Promise<never> | null = null;
  const watchChannels = () => {
    channelLoss = null;
    channelLost = new Promise<never>((_, reject) => loseChannel = reject);
    channelLost.catch(() => {});
  };

  // Replies come from the loop and from a mode's own tasks: one at a time.
  let replies: Promise<void> = Promise.resolve();
  const reply = (type: FrameType, payload: Uint8Array, round = 0) => {
    // On this connection: a reply queued before a RESUME never reaches the next.
    const w = writer;
    const p = replies.then(() => w.write(type, round, payload));
    replies = p.catch(() => {});
    return p;
  };
  const control = (h: Hello, p: DecoderPool): SessionControl => ({
    hello: h,
    pool: p,
    reply,
    get bytesRead() {
      return bytesBefore + reader.bytesRead + channelBytesRead();
    },
    async syncPages() {
      return heldBefore.reduce((a, b) => a + b, 0) + await p.sync();
    },
    get at() {
      return at;
    },
    get roundsDone() {
      return roundsDone;
    },
    closePages() {
      pagesClosed = true;
    },
  });

  watchdog.arm(
    handshakeMs,
    () =>
      new WireError(
        `No HELLO within ${handshakeMs} ms of connecting (${reader.bytesRead} bytes came): the peer is idle or too slow`,
        reader.bytesRead,
      ),
  );
  const armFrame = () =>
    watchdog.arm(
      frameMs,
      () =>
        new WireError(
          `No frame within ${frameMs} ms while waiting for ${mode.waiting()} (${reader.bytesRead} bytes read${
            channelJoin ? `, ${channelBytesRead()} on channel connections` : ""
          }): the source is idle or too slow`,
          reader.bytesRead,
        ),
    );

  /** A CODEC frame of `channel`: within the session's decoder-state limit and budget, or refused. */
  const admitCodec = (channel: number, setup: CodecSetup, at: number) => {
    const bytes = codecStateBytes(setup, negotiated!, hello!, at);
    const key = `${channel}:${setup.id}`;
    const total = stateBytes - (codecState.get(key) ?? 0) + bytes;
    if (total > maxState) {
      throw new MigrationError(
        `CODEC frame at offset ${at} asks for ${
          formatBytes(bytes)
        } of "${setup.name}" decoder state on channel ${channel}: the session would hold ${
          formatBytes(total)
        }, over its limit of ${formatBytes(maxState)}`,
      );
    }
    if (options.budget && bytes > (codecState.get(key) ?? 0)) {
      reservations.push(options.budget.reserve(
        bytes - (codecState.get(key) ?? 0),
        `"${setup.name}" decoder state on channel ${channel}`,
      ));
    }
    codecState.set(key, Math.max(bytes, codecState.get(key) ?? 0));
    stateBytes = [...codecState.values()].reduce((a, b) => a + b, 0);
  };

  /** Channel `channel` ended `end.round` (the round was admitted): the round ends once every channel did. */
  const endRound = (channel: number, end: RoundEnd, at: number) => {
    let r = rounds.get(end.round);
    if (!r) {
      r = {
        channels: new Set(),
        sum: { round: end.round, pages: 0, rawBytes: 0, wireBytes: 0 },
      };
      rounds.set(end.round, r);
    }
    if (r.channels.has(channel)) {
      throw new WireError(
        `Channel ${channel} ended round ${end.round} twice (offset ${at})`,
        at,
      );
    }
    r.channels.add(channel);
    r.sum = {
      round: end.round,
      pages: r.sum.pages + end.pages,
      rawBytes: r.sum.rawBytes + end.rawBytes,
      wireBytes: r.sum.wireBytes + end.wireBytes,
    };
    if (r.channels.size === hello!.channels) {
      rounds.delete(end.round);
      roundsDone++;
      emit({
        type: "round",
        round: end.round,
        roundEnd: r.sum,
        bytesReceived: reader.bytesRead + channelBytesRead(),
      });
    }
  };

  /**
   * A channel connection's ROUND_END: counted, and the channel reads on;
   * or, while the open-round bound is full (a channel may run rounds ahead
   * of a slower one), held back with its channel until a round ends.
   */
  const connRoundEnd = (channel: number, end: RoundEnd, at: number) => {
    heldEnds.push({ channel, end, at });
    for (let i = 0; i < heldEnds.length;) {
      const e = heldEnds[i];
      if (!rounds.has(e.end.round) && rounds.size >= MAX_OPEN_ROUNDS) {
        i++;
        continue;
      }
      heldEnds.splice(i, 1);
      endRound(e.channel, e.end, e.at);
      if (e.end.final) {
        channelFinal[e.channel] = e.end.round;
        if (--finalsLeft === 0) allFinal?.();
      }
      pool!.go(e.channel);
      i = 0; // a round that ended may let an earlier-held one in
    }
  };

  const onConnEvent = (channel: number, e: ChannelConnEvent) => {
    // A channel that moves keeps the session's frame timeout at bay.
    if (awaitingFrame && e.type !== "refused") armFrame();
    switch (e.type) {
      case "codecAsk":
        if (pagesClosed) {
          throw new WireError(
            `Unexpected CODEC frame at offset ${e.at} of channel ${channel}'s connection: the source already sent its last pages`,
            e.at,
          );
        }
        admitCodec(channel, e.setup, e.at);
        pool!.go(channel);
        return;
      case "roundEnd":
        connRoundEnd(channel, e.end, e.at);
        return;
      case "progress":
        channelBytes[channel] = e.bytes;
        return;
      case "joined":
        emit({ type: "channelJoined", channel, remote: e.remote });
        return;
      case "refused":
        emit({ type: "channelRefused", channel, message: e.message });
        return;
      case "lost": {
        const error = new WireError(e.message);
        // Not resumable, or past the last pages: the session fails, as
        // a lost session connection fails it.
        if (!resumable || pagesClosed || !loseChannel) throw error;
        if (channelLoss) return;
        channelLoss = error;
        loseChannel(error);
        return;
      }
    }
  };

  try {
    for (;;) {
      if (phase === "session") armFrame();
      linkLost = false;
      const r = reader;
      const next = r.next().catch((e: unknown) => {
        // A reset, or the stream ending inside a frame: the link is gone.
        if (!(e instanceof WireError) || r.ended) linkLost = true;
        throw e instanceof WireError ? e : connectionLost(
          e,
          phase === "hello" ? "HELLO" : mode.waiting(),
          r.bytesRead,
        );
      });
      next.catch(() => {}); // it may lose the race below
      let frame: Frame | null;
      try {
        awaitingFrame = true;
        frame = pool
          ? await Promise.race([
            next,
            watchdog.expired,
            poolFailed!,
            ...(channelLost ? [channelLost] : []),
          ])
          : await Promise.race([next, watchdog.expired]);
        awaitingFrame = false;
        if (frame === null) {
          linkLost = true;
          throw new WireError(
            phase === "session" && mode.verdict?.()
              ? `Connection closed before COMMIT: the ${mode.what} verified, but its source never committed it`
              : `Connection closed before ${
                phase === "hello" ? "HELLO" : mode.waiting()
              }: the ${mode.what} is incomplete`,
            reader.bytesRead,
          );
        }
      } catch (error) {
        awaitingFrame = false;
        watchdog.disarm();
        const lost = linkLost ||
          (channelLoss !== null && error === channelLoss);
        if (
          !lost || !resumable || phase !== "session" ||
          (pagesClosed && !mode.verdict?.())
        ) {
          throw error;
        }
        await park(error);
        continue;
      }
      watchdog.disarm();
      at = reader.bytesRead - HEADER_BYTES - frame.length;
      if (phase === "hello" && frame.type === FrameType.RESUME) {
        if (!options.resume) {
          throw new MigrationError(
            "This receiver does not resume sessions: RESUME refused",
          );
        }
        const { session } = decodeResume(frame.payload);
        try {
          await options.resume.registry.claim(
            session,
            options.resume.identity,
            { reader, writer, release: () => {} },
          );
        } catch (e) {
          // A session that committed on COMMIT: its source lost COMMITTED.
          if (!(e instanceof SessionEndedError) || e.committed === null) {
            throw e;
          }
          await reply(
            FrameType.COMMITTED,
            encodeCommitted({ digest: e.committed }),
          );
        }
        return { aborted: false, joined: true, session, hello: null };
      }
      if (phase === "hello") {
        if (frame.type === FrameType.HELLO && options.resume?.only) {
          throw new MigrationError(
            "This receiver takes no new migration now: it serves one, and only resumes it",
          );
        }
        if (frame.type !== FrameType.HELLO) {
          throw new WireError(
            `Unexpected ${
              frameTypeName(frame.type)
            } frame at offset ${at}: expected HELLO`,
            at,
          );
        }
        hello = decodeHello(frame.payload);
        negotiated = checkHello(hello, options);
        if ((hello.stream ?? "memory") !== mode.stream) {
          throw new MigrationError(
            `HELLO announces ${
              hello.stream
                ? `a ${hello.stream} stream`
                : "a migration into memory"
            }, but this receiver takes ${
              mode.stream === "memory"
                ? "a migration into memory"
                : `a ${mode.stream} stream`
            }`,
          );
        }
        if (options.budget) {
          reservations.push(options.budget.reserve(
            hello.memoryBytes,
            `The memory of "${hello.vm}"`,
          ));
        }
        const channels = await mode.open(hello);
        sinkChannels = channels;
        pool = startPool({
          channels: hello.channels,
          pageSize: PAGE_SIZE,
          pageCount: hello.memoryBytes / PAGE_SIZE,
          codecs: [...negotiated.values()].map((c) => ({
            id: c.id,
            name: c.name,
          })),
          memory: channels.memory,
          touched: channels.touched,
          onPages: channels.onPages,
          gpu: options.gpu,
          onConnEvent,
        });
        poolFailed = pool.failed();
        poolFailed.catch(() => {});
        commit = hello.commit === true && mode.commit?.(hello) === true;
        // Per-channel connections: into shared memory only.
        const cc = options.channelConnections;
        if (
          hello.channelConnections === true && cc !== undefined &&
          channels.memory !== undefined
        ) {
          reserveChannelBuffers(cc, hello);
          // WELCOME names the Workers' ports: it waits for their start,
          // which the source is told about (STARTING) as it goes.
          channelJoin = await keptAlive(
            listenForChannels(cc, hello, pool, null),
            hello,
          );
        }
        if (
          options.resume && hello.resumeMs &&
          options.resume.registry.maxGraceMs > 0
        ) {
          resumable = options.resume.registry.open(
            options.resume.identity,
            hello.resumeMs,
          );
          heldBefore = new Array(hello.channels).fill(0);
          detachOnTakeover();
          // A lost channel connection parks the session too.
          if (channelJoin) watchChannels();
        }
        await reply(
          FrameType.WELCOME,
          encodeWelcome({
            protocol: PROTOCOL_VERSION,
            accepted: true,
            ...(resumable
              ? { session: resumable.id, resumeMs: resumable.graceMs }
              : {}),
            verify: mode.verify?.(hello),
            ...(commit ? { commit: true } : {}),
            ...(channelJoin ? { channelJoin } : {}),
          }),
        );
        phase = "session";
        emit({ type: "hello", hello });
        mode.started?.(control(hello, pool));
        continue;
      }
      const h = hello!;
      const p = pool!;
      if (
        pagesClosed &&
        (frame.type === FrameType.CODEC || frame.type === FrameType.BATCH ||
          frame.type === FrameType.ROUND_END)
      ) {
        throw new WireError(
          `Unexpected ${
            frameTypeName(frame.type)
          } frame at offset ${at}: the source already sent its last pages`,
          at,
        );
      }
      if (
        channelJoin &&
        (frame.type === FrameType.CODEC || frame.type === FrameType.BATCH ||
          frame.type === FrameType.ROUND_END)
      ) {
        throw new WireError(
          `Unexpected ${
            frameTypeName(frame.type)
          } frame at offset ${at} on the session's connection: its channels have connections of their own`,
          at,
        );
      }
      if (channelJoin && frame.type === FrameType.FINAL) {
        await channelsEnded(frame, at);
      }
      switch (frame.type) {
        case FrameType.CODEC: {
          checkChannel(frame, h, at);
          const setup = decodeCodec(frame.payload);
          admitCodec(frame.channel, setup, at);
          p.codec(frame.channel, setup, at);
          continue;
        }
        case FrameType.BATCH:
          checkChannel(frame, h, at);
          await p.batch(frame.channel, frame.round, frame.payload, at);
          continue;
        case FrameType.ROUND_END: {
          checkChannel(frame, h, at);
          const end = decodeRoundEnd(frame.payload);
          if (end.round !== frame.round) {
            throw new WireError(
              `ROUND_END frame at offset ${at} is inconsistent: its JSON says round "${end.round}", its header round ${frame.round}`,
              at,
            );
          }
          if (!rounds.has(end.round) && rounds.size >= MAX_OPEN_ROUNDS) {
            throw new WireError(
              `Channel ${frame.channel} ended round ${end.round} at offset ${at} while rounds ${
                [...rounds.keys()].join(", ")
              } still wait for other channels: a source ends each round on every channel first`,
              at,
            );
          }
          endRound(frame.channel, end, at);
          continue;
        }
        case FrameType.ABORT: {
          const { reason } = decodeAbort(frame.payload);
          const pagesApplied = await control(h, p).syncPages().catch(() => 0);
          await mode.discard(new MigrationError(`Source aborted: ${reason}`));
          emit({ type: "abort", reason });
          resumable?.close(
            `the source aborted it: ${reason}`,
            mode.committed?.() ?? null,
          );
          return { aborted: true, reason, hello: h, pagesApplied };
        }
        case FrameType.ERROR: {
          peerFailed = true;
          throw new MigrationError(
            `Source failed: ${decodeError(frame.payload).message}`,
          );
        }
      }
      if (modeFrames.has(frame.type)) {
        const result = await mode.frame(frame, control(h, p));
        if (result !== null) {
          const committed = mode.committed?.() ?? null;
          resumable?.close(
            committed === null
              ? `it ended (${mode.what} received, not committed)`
              : `it ended (${mode.what} received and committed)`,
            committed,
          );
          endedWell = true;
          const gpu = receiveGpuReport(
            options.gpu,
            p.gpu,
            gpuPagesBefore + p.gpuPages,
          );
          return { aborted: false, result, hello: h, resumes, gpu };
        }
        continue;
      }
      throw new WireError(
        `Unexpected ${
          frameTypeName(frame.type)
        } frame at offset ${at} in a ${mode.what} session`,
        at,
      );
    }
  } catch (error) {
    // The last words get one best-effort budget in all (a lost source's
    // link may take no byte and report nothing), so that the verdict
    // follows the failure within seconds.
    // With the commit protocol the source is told, in so many words, that
    // this memory is discarded and never committed: it may resume its VM.
    const discarded = error instanceof SessionEndedError
      ? error.committed === null
      : commit && (mode.committed?.() ?? null) === null;
    if (!peerFailed) {
      await bestEffort(
        replies.then(() => sendError(writer, error, discarded)),
      );
    }
    // A mode that opened nothing yet drops nothing, but a stream mode still
    // aborts its output.
    await mode.discard(error).catch(() => {});
    resumable?.close(
      `it failed: ${error instanceof Error ? error.message : String(error)}`,
      mode.committed?.() ?? null,
    );
    throw error;
  } finally {
    watchdog.close();
    for (const r of reservations) r.release();
    if (pool && endedWell && options.pools) options.pools.giveBack(pool);
    else pool?.close();
    await bestEffort(writer.close());
    await bestEffort(reader.cancel());
    // (assigned in park(), which TypeScript does not follow)
    (release as (() => void) | null)?.();
  }

  /** Each TLS channel connection's read buffer (0 over plain TCP). */
  function channelReadBuffer(cc: ChannelConnectionsOptions): number {
    return cc.security.kind === "tls"
      ? cc.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES
      : 0;
  }

  /**
   * Per-channel connections: the TLS read buffers of every channel's
   * connection, reserved in the budget once for the session (the
   * connections a resume makes reuse the reservation: at most one per
   * channel is open at a time).
   */
  function reserveChannelBuffers(
    cc: ChannelConnectionsOptions,
    h: Hello,
  ): void {
    const readBuffer = channelReadBuffer(cc);
    if (options.budget && readBuffer > 0) {
      reservations.push(options.budget.reserve(
        readBuffer * h.channels,
        `The TLS read buffer of each of ${h.channels} channel connections (${
          formatBytes(readBuffer)
        } each)`,
      ));
    }
  }

  /**
   * `work`, the start of what WELCOME waits for (the channel Workers), at
   * most the frame timeout; meanwhile a STARTING to the source at least
   * every `h.keepAliveMs` (no more often than {@link MIN_KEEPALIVE_MS})
   * when HELLO asked for them, so that a source with a short reply
   * deadline waits for a slow start (a cold module cache) and still tells
   * a silent receiver from a busy one.
   */
  async function keptAlive<T>(work: Promise<T>, h: Hello): Promise<T> {
    const since = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (h.keepAliveMs !== undefined) {
      const every = Math.max(MIN_KEEPALIVE_MS, h.keepAliveMs);
      const tick = () => {
        timer = setTimeout(() => {
          // A lost link fails WELCOME's write next.
          reply(
            FrameType.STARTING,
            encodeStarting({
              elapsedMs: Math.round(performance.now() - since),
            }),
          ).catch(() => {});
          tick();
        }, every);
      };
      tick();
    }
    try {
      return Number.isFinite(frameMs)
        ? await within(
          work,
          frameMs,
          () =>
            new MigrationError(
              `The receiver's ${h.channels} channel Workers did not start within ${frameMs} ms (the frame timeout)`,
            ),
        )
        : await work;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Per-channel connections: each channel's Worker listens on a port of
   * its own; returns WELCOME's (or RESUMED's) `channelJoin`: the session's
   * channel id (`session`, or a new one) and a fresh token.
   */
  async function listenForChannels(
    cc: ChannelConnectionsOptions,
    h: Hello,
    p: DecoderPool,
    joinSession: string | null,
  ): Promise<ChannelJoin> {
    const readBuffer = channelReadBuffer(cc);
    const session = joinSession ??
      hex(crypto.getRandomValues(new Uint8Array(16)));
    const token = hex(crypto.getRandomValues(new Uint8Array(16)));
    channelBytes = new Array(h.channels).fill(0);
    channelFinal = new Array(h.channels).fill(null);
    finalsLeft = h.channels;
    allFinal = null;
    heldEnds.length = 0;
    const ports = await p.listen((channel) => ({
      hostname: cc.hostname,
      security: cc.security,
      session,
      token,
      channel,
      identity: cc.identity,
      joinTimeoutMs: cc.joinTimeoutMs ?? handshakeMs,
      authTimeoutMs: handshakeMs,
      ...(readBuffer > 0 ? { readBufferBytes: readBuffer } : {}),
    }), frameMs);
    return { session, token, ports };
  }

  /**
   * FINAL, with per-channel connections: waits (within the frame timeout)
   * until every channel's connection ended its last round, which must be
   * FINAL's; every page before it is then applied.
   */
  async function channelsEnded(frame: Frame, at: number): Promise<void> {
    if (finalsLeft > 0) {
      const ended = new Promise<void>((r) => allFinal = r);
      armFrame();
      awaitingFrame = true;
      try {
        // A channel lost now fails the session: FINAL came, the VM is
        // paused at the source, and only pre-copy resumes.
        await Promise.race([
          ended,
          watchdog.expired,
          poolFailed!,
          ...(channelLost ? [channelLost] : []),
        ]);
      } finally {
        awaitingFrame = false;
        watchdog.disarm();
      }
    }
    const other = channelFinal.findIndex((r) => r !== frame.round);
    if (other >= 0) {
      throw new WireError(
        `FINAL frame at offset ${at} ends round ${frame.round}, but channel ${other} ended its connection with round ${
          channelFinal[other]
        }`,
        at,
      );
    }
  }

  /** A RESUME for this session while a connection still carries it: let that one go. */
  function detachOnTakeover(): void {
    const r = reader;
    resumable!.onTakeover(() => {
      linkLost = true;
      takenOver = true;
      r.cancel(
        new LinkLostError("A RESUME took the session over", {
          side: "source",
          peer: null,
          phase: "pre-copy (taken over by a RESUME)",
        }),
      ).catch(
        () => {},
      );
    });
  }

  /**
   * The connection was lost before FINAL: applies what came whole, drops
   * the decoders (their state is not trusted across the cut), and waits the
   * grace for a RESUME; then carries on on its connection with fresh
   * decoders, after telling the source what each channel holds.
   *
   * @throws the loss, or the grace passing, when the session cannot go on.
   */
  async function park(lost: unknown): Promise<void> {
    const session = resumable!;
    const h = hello!;
    // Channel connections stop reading first, so that the counts below
    // are final: no page is applied after them.
    if (channelJoin) pool!.halt();
    const counts = await Promise.race([pool!.syncChannels(), poolFailed!]);
    heldBefore = heldBefore.map((n, c) => n + counts[c]);
    gpuPagesBefore += pool!.gpuPages;
    pool!.close();
    pool = null;
    poolFailed = null;
    bytesBefore += reader.bytesRead + channelBytesRead();
    channelBytes = channelBytes.map(() => 0);
    const reason = `${
      takenOver
        ? "A RESUME took the session over from a connection still open here (half-open): "
        : ""
    }${lost instanceof Error ? lost.message : String(lost)}`;
    takenOver = false;
    // The dead connection's last words are not waited for.
    bestEffort(writer.close());
    bestEffort(reader.cancel());
    release?.();
    release = null;
    emit({
      type: "parked",
      session: session.id,
      waiting: mode.verdict?.() ? "COMMIT" : mode.waiting(),
      channelPages: heldBefore.slice(),
      reason,
    });
    let handover;
    try {
      handover = await session.park();
    } catch (e) {
      throw new MigrationError(
        `${reason}; ${e instanceof Error ? e.message : e}`,
        { cause: lost },
      );
    }
    reader = handover.reader;
    writer = handover.writer;
    release = handover.release;
    // Replies still queued for the lost connection are dropped with it.
    replies = Promise.resolve();
    resumes++;
    detachOnTakeover();
    rounds.clear();
    const sink = sinkChannels!;
    pool = DecoderPool.start({
      channels: h.channels,
      pageSize: PAGE_SIZE,
      pageCount: h.memoryBytes / PAGE_SIZE,
      codecs: [...negotiated!.values()].map((c) => ({
        id: c.id,
        name: c.name,
      })),
      memory: sink.memory,
      touched: sink.touched,
      onPages: sink.onPages,
      gpu: options.gpu,
      onConnEvent,
    });
    poolFailed = pool.failed();
    poolFailed.catch(() => {});
    const verdict = mode.verdict?.() ?? null;
    // Channel connections join again: fresh Workers on fresh ports, a
    // fresh token (the lost connections' is void), the same session.
    if (channelJoin && !verdict) {
      channelJoin = await listenForChannels(
        options.channelConnections!,
        h,
        pool,
        channelJoin.session,
      );
      watchChannels();
    }
    await reply(
      FrameType.RESUMED,
      encodeResumed({
        channelPages: heldBefore,
        ...(verdict ? { result: verdict } : {}),
        ...(channelJoin && !verdict ? { channelJoin } : {}),
      }),
    );
    emit({ type: "resumed", channelPages: heldBefore.slice() });
  }
}

/** Checks a HELLO against this receiver; returns the negotiated codecs by id. */
function checkHello(
  hello: Hello,
  options: ReceiveSessionOptions,
): Map<number, Codec> {
  if (hello.protocol !== PROTOCOL_VERSION) {
    throw new MigrationError(
      `Unsupported protocol version "${hello.protocol}": this receiver speaks protocol ${PROTOCOL_VERSION}`,
    );
  }
  if (hello.pageSize !== PAGE_SIZE) {
    throw new MigrationError(
      `Unsupported page size "${hello.pageSize}": this receiver handles ${PAGE_SIZE}-byte pages`,
    );
  }
  const max = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
  if (hello.memoryBytes <= 0 || hello.memoryBytes % PAGE_SIZE !== 0) {
    throw new MigrationError(
      `Bad memory size "${hello.memoryBytes}": must be a positive multiple of the ${PAGE_SIZE}-byte page size`,
    );
  }
  if (hello.memoryBytes > max) {
    throw new MigrationError(
      `Memory size "${hello.memoryBytes}" is over this receiver's limit: at most ${max} bytes`,
    );
  }
  const maxChannels = Math.min(
    options.maxChannels ?? MAX_CHANNELS,
    MAX_CHANNELS,
  );
  if (hello.channels < 1 || hello.channels > maxChannels) {
    throw new MigrationError(
      `Unsupported channel count "${hello.channels}": this receiver takes 1 to ${maxChannels}`,
    );
  }
  return negotiateCodecs(hello.codecs, options.codecs);
}

/** Bytes of decoder state a CODEC frame asks for on one channel; refuses options the codec refuses. */
function codecStateBytes(
  setup: {
    id: number;
    name: string;
    options: Readonly<Record<string, unknown>>;
  },
  negotiated: Map<number, Codec>,
  hello: Hello,
  at: number,
): number {
  const codec = negotiated.get(setup.id);
  if (!codec || codec.name !== setup.name) {
    throw new WireError(
      `CODEC announces codec "${setup.name}" with id ${setup.id}, which HELLO did not negotiate`,
      at,
    );
  }
  if (!codec.decoderStateBytes) return 0;
  try {
    return codec.decoderStateBytes(codec.parseOptions(setup.options), {
      pageSize: PAGE_SIZE,
      pageCount: hello.memoryBytes / PAGE_SIZE,
      channels: hello.channels,
    });
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    throw new WireError(
      `CODEC announces codec "${setup.name}" with options it refuses: ${e.message}`,
      at,
    );
  }
}

function checkChannel(frame: Frame, hello: Hello, at: number): void {
  if (frame.channel >= hello.channels) {
    throw new WireError(
      `${
        frameTypeName(frame.type)
      } frame at offset ${at} is for channel ${frame.channel}, but HELLO announced ${hello.channels}`,
      at + 3,
    );
  }
}

/**
 * Tells the source why the session stops (the caller bounds the wait), and,
 * with the commit protocol, that the memory is discarded.
 */
async function sendError(
  writer: FrameWriter,
  error: unknown,
  discarded: boolean,
): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await writer.write(
    FrameType.ERROR,
    0,
    encodeError({ message, ...(discarded ? { discarded: true } : {}) }),
  );
}

/** A read that failed below the frame layer (a reset, a broken TLS record): the source is lost. */
function connectionLost(
  error: unknown,
  waiting: string,
  bytesRead: number,
): WireError {
  const detail = error instanceof Error ? error.message : String(error);
  return new WireError(
    `Connection to the source lost while waiting for ${waiting} (${bytesRead} bytes read): ${detail}`,
    bytesRead,
    { cause: error },
  );
}
