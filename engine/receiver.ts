/**
 * The receiving side of a native migration: one session on one connection,
 * from HELLO to RESULT, into a {@link MemorySink}. It is the receive core
 * (`session/receive_core.ts`: handshake, limits, channels, errors) with the
 * memory mode (`session/memory_mode.ts`: FINAL → READY, END → RESULT):
 * every BATCH is validated whole and decoded on its channel's Worker before
 * any page of it is written, and the sink is committed only when the
 * source's digest matches.
 *
 * @module
 */

import type { Codec } from "./codecs/codec.ts";
import { bestEffort } from "./session/best_effort.ts";
import type { MemorySink } from "./driver.ts";
import {
  type ChannelConnectionsOptions,
  type ReceiveEvent,
  receiveSession,
} from "./session/receive_core.ts";
import { type MemoryEvent, memoryMode } from "./session/memory_mode.ts";
import type { ReceiveBudget } from "./session/budget.ts";
import type { ResumeRegistry } from "./session/resume_registry.ts";
import type { WireConn } from "./wire/duplex.ts";
import type { Hello, RoundEnd } from "./wire/messages.ts";
import {
  decodeGpuOf,
  type ReceiveGpuReport,
  receiveGpuReport,
  type ReceiverGpuSettings,
} from "./session/receive_gpu.ts";

export {
  type ChannelConnectionsOptions,
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CODEC_STATE_BYTES,
  DEFAULT_MAX_MEMORY_BYTES,
} from "./session/receive_core.ts";
export { ReceiveBudget, type Reservation } from "./session/budget.ts";
export {
  DEFAULT_MAX_RESUME_GRACE_MS,
  type Handover,
  ResumableSession,
  ResumeRegistry,
  type ResumeRegistryOptions,
  SessionEndedError,
} from "./session/resume_registry.ts";
export type { MemoryEvent } from "./session/memory_mode.ts";
export {
  type DecodeGpu,
  type DecodeGpuInfo,
  DEFAULT_RECEIVER_GPU_BATCH,
  type ReceiveGpuReport,
  type ReceiverGpuSettings,
} from "./session/receive_gpu.ts";

/**
 * Progress of a receiving session, for logs and progress bars: the session
 * core's `hello` (HELLO accepted, sink created, WELCOME sent) and `abort`
 * (the source sent ABORT), each `round` once every channel sent its
 * ROUND_END, and the memory mode's `final` and `result`.
 */
export type ReceiverEvent =
  | Extract<
    ReceiveEvent,
    {
      type:
        | "hello"
        | "abort"
        | "parked"
        | "resumed"
        | "channelJoined"
        | "channelRefused";
    }
  >
  | {
    /** Every channel sent its ROUND_END of a round. */
    readonly type: "round";
    /** The source's accounting, summed over the channels. */
    readonly roundEnd: RoundEnd;
    /** Frame bytes read so far in the session. */
    readonly bytesReceived: number;
  }
  | MemoryEvent;

/** Options of {@link receiveMigration}. */
export interface ReceiverOptions {
  /**
   * Creates the destination memory once HELLO is accepted. Its `pageSize`
   * and `pageCount` must match the HELLO.
   */
  createSink(hello: Hello): MemorySink | Promise<MemorySink>;
  /** Largest `memoryBytes` a HELLO may announce (default 64 GiB). */
  maxMemoryBytes?: number;
  /** Most channels a HELLO may ask for (default 64). */
  maxChannels?: number;
  /**
   * Codecs this receiver accepts in HELLO (default: the registry's); the
   * channel Workers decode with the registry's implementations of them.
   */
  codecs?: readonly Codec[];
  /** Called for each {@link ReceiverEvent}; an exception fails the session. */
  onEvent?(event: ReceiverEvent): void;
  /** Most milliseconds from connecting to a whole HELLO (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Most milliseconds the source may take for each next whole frame (default 2 minutes). */
  frameTimeoutMs?: number;
  /** Most bytes of decoder state (dedup stores, zstd windows) the session may ask for (default 1 GiB). */
  maxCodecStateBytes?: number;
  /** A budget shared with other sessions: memory and decoder state are reserved in it first. */
  budget?: ReceiveBudget;
  /**
   * Resumable sessions: the receiver's registry (one for all its
   * connections) and the source identity this connection authenticated as
   * (`ChannelConn.identity`; null over plain TCP). A session whose HELLO
   * asks for it gets an id; when its connection is lost before FINAL it
   * waits for a RESUME naming that id from the same identity. Without it,
   * no session is resumable.
   */
  resume?: {
    registry: ResumeRegistry;
    identity: string | null;
    /** Take only a RESUME on this connection (a HELLO is refused). */
    only?: boolean;
  };
  /**
   * Take the commit protocol when HELLO offers it (default true): a
   * verified session commits the sink only on the source's COMMIT, and
   * resolves then. False behaves as a receiver from before the protocol
   * (commits at RESULT).
   */
  commit?: boolean;
  /**
   * Decode on the GPU (default `{ prefer: "cpu" }`): each decode Worker
   * opens its own device and decodes `rle` and `delta` sections on it,
   * byte for byte as the CPU decoders. The destination decides, not the
   * source's plan; the rules are the plan's `gpu()`: `auto` declines a
   * software adapter, `gpu` takes one, `require` fails instead of falling
   * back to the CPU. {@link ReceiveResult.gpu} says what ran where. Bad
   * settings reject with a `GpuError` before the session starts.
   */
  gpu?: ReceiverGpuSettings;
  /**
   * Grant per-channel connections when HELLO offers them: each channel's
   * decode Worker listens on a port of its own on `hostname`, takes one
   * connection that passes `security` as this one did (same identity) and
   * JOINs with the session's token, and decrypts and applies its frames on
   * its own thread. With `resume`, a lost channel connection parks the
   * session as a lost `conn` does, and the RESUME's connection gets every
   * channel to join again (fresh ports, a fresh token). Absent: every
   * channel stays inside `conn`.
   */
  channelConnections?: ChannelConnectionsOptions;
}

/** How a receiving session ended (when it did not fail). */
export interface ReceiveResult {
  /** Whether the destination digest equals the source's; the sink was committed iff true. */
  readonly verified: boolean;
  /**
   * The commit protocol was used: the sink was committed on the source's
   * COMMIT (not when RESULT was sent).
   */
  readonly commit: boolean;
  /** Whether the source sent ABORT; the sink (if any) was discarded. */
  readonly aborted: boolean;
  /** Pages applied to the sink, every channel together. */
  readonly pagesApplied: number;
  /** Frame bytes read from the source. */
  readonly bytesReceived: number;
  /** Rounds: those every channel ended, up to and including FINAL's. */
  readonly rounds: number;
  /** Memory size from HELLO (0 when aborted before HELLO). */
  readonly memoryBytes: number;
  /** Channels from HELLO. */
  readonly channels: number;
  /** VM description from HELLO. */
  readonly vm: string;
  /** Policy name from HELLO. */
  readonly policy: string;
  /** Destination digest, lower-case hex; `""` when aborted. */
  readonly digest: string;
  /** Digest ranges that differ from the source's, the first 64 (empty when verified). */
  readonly mismatched: readonly number[];
  /** How many digest ranges differ in all. */
  readonly differingRanges: number;
  /** Pages that differ in the listed ranges, the first 256 (empty when verified or only ranges were compared). */
  readonly mismatchedPages: readonly number[];
  /** How many pages of the listed ranges differ in all. */
  readonly differingPages: number;
  /** Bytes per digest range (0 when aborted). */
  readonly rangeBytes: number;
  /** How memory was hashed (`""` when aborted). */
  readonly scheme: string;
  /** Milliseconds from HELLO to the end of the session. */
  readonly durationMs: number;
  /** Times the session was resumed on a new connection after losing one. */
  readonly resumes: number;
  /**
   * This connection resumed another session (its first frame was RESUME)
   * and carried it until that session ended or lost it too: the session's
   * own call reports the outcome, and every other field here is empty.
   */
  readonly joined: boolean;
  /** The GPU the session decoded on, and its pages (`pagesDecoded` 0 when the CPU decoded all). */
  readonly gpu: ReceiveGpuReport;
}

/**
 * Receives one migration on `conn`: HELLO → WELCOME, then each channel's
 * CODEC/BATCH/ROUND_END frames, FINAL → READY, END → RESULT. See
 * `docs/wire-format.md`.
 *
 * On a protocol violation, a codec error, a sink error, an ERROR from the
 * source or the connection ending before END, it sends ERROR (when the
 * source did not fail first), discards the sink and rejects; it never
 * resolves as verified unless the digests match. The sink is committed
 * before RESULT `{verified: true}` is sent — or, with the commit protocol
 * (HELLO offers it), only when the source's COMMIT follows that RESULT,
 * answered with COMMITTED; a session that gets no COMMIT discards. When
 * the promise settles the connection is closed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   MiB,
 *   migrate,
 *   policy,
 *   receiveMigration,
 *   SimMemorySink,
 *   SimVm,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * // Port 0: the system picks a free port.
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const receiving = (async () => {
 *   using conn = await listener.accept();
 *   return await receiveMigration(conn, {
 *     createSink: (h) =>
 *       new SimMemorySink({
 *         pageSize: h.pageSize,
 *         pageCount: h.memoryBytes / h.pageSize,
 *       }),
 *   });
 * })();
 *
 * await using vm = await SimVm.create({
 *   memoryBytes: MiB(4),
 *   workload: "idle",
 * });
 * using conn = await Deno.connect({ port: listener.addr.port });
 * const plan = policy("p").switchover(when.rounds(3)).compile();
 * await migrate({ plan, source: vm, conn, channels: 1 });
 * const result = await receiving;
 * assert.equal(result.verified, true);
 * assert.equal(result.pagesApplied > 0, true);
 * ```
 *
 * @throws {WireError} on a protocol violation, {@link CodecError} on a bad
 *   page, {@link MigrationError} when HELLO is refused or the source failed.
 */
export async function receiveMigration(
  conn: WireConn,
  options: ReceiverOptions,
): Promise<ReceiveResult> {
  const emit = options.onEvent ?? (() => {});
  let gpu;
  try {
    gpu = decodeGpuOf(options.gpu);
  } catch (e) {
    // refused before the session: the connection still closes
    bestEffort(conn.readable.cancel());
    bestEffort(conn.writable.abort());
    throw e;
  }
  let started = performance.now();
  let bytesReceived = 0;
  let rounds = 0;
  const ended = new Set<number>();
  let finalRound = -1;
  const onCoreEvent = (e: ReceiveEvent) => {
    if (e.type === "hello") started = performance.now();
    if (e.type === "round") {
      rounds++;
      ended.add(e.roundEnd.round);
      bytesReceived = e.bytesReceived;
      emit({
        type: "round",
        roundEnd: e.roundEnd,
        bytesReceived: e.bytesReceived,
      });
    } else emit(e);
  };
  const outcome = await receiveSession(
    conn,
    memoryMode({
      createSink: options.createSink,
      commit: options.commit,
      onEvent: (e) => {
        if (e.type === "final") finalRound = e.round;
        emit(e);
      },
    }),
    {
      maxMemoryBytes: options.maxMemoryBytes,
      maxChannels: options.maxChannels,
      codecs: options.codecs,
      onEvent: onCoreEvent,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      frameTimeoutMs: options.frameTimeoutMs,
      maxCodecStateBytes: options.maxCodecStateBytes,
      budget: options.budget,
      resume: options.resume,
      gpu,
      channelConnections: options.channelConnections,
    },
  );
  const hello = outcome.hello;
  const base = {
    memoryBytes: hello?.memoryBytes ?? 0,
    channels: hello?.channels ?? 0,
    vm: hello?.vm ?? "",
    policy: hello?.policy ?? "",
    durationMs: performance.now() - started,
  };
  // A session that ended without a verdict compared nothing.
  const noVerdict = {
    verified: false,
    digest: "",
    mismatched: [],
    differingRanges: 0,
    mismatchedPages: [],
    differingPages: 0,
    rangeBytes: 0,
    scheme: "",
    resumes: 0,
    commit: false,
    gpu: receiveGpuReport(gpu, [], 0),
  };
  if (outcome.aborted) {
    return {
      ...base,
      ...noVerdict,
      joined: false,
      aborted: true,
      pagesApplied: outcome.pagesApplied,
      bytesReceived,
      rounds,
    };
  }
  if (outcome.joined) {
    return {
      ...base,
      ...noVerdict,
      joined: true,
      aborted: false,
      pagesApplied: 0,
      bytesReceived: 0,
      rounds: 0,
    };
  }
  const r = outcome.result;
  return {
    ...base,
    resumes: outcome.resumes,
    joined: false,
    verified: r.verified,
    commit: r.commit,
    aborted: false,
    pagesApplied: r.pagesApplied,
    bytesReceived: r.bytesReceived,
    // FINAL names the last round, which a source may or may not have ended
    // with ROUND_END as well (precopy does; it is not required)
    rounds: rounds + (finalRound >= 0 && !ended.has(finalRound) ? 1 : 0),
    digest: r.digest,
    mismatched: r.mismatched,
    differingRanges: r.differingRanges,
    mismatchedPages: r.mismatchedPages,
    differingPages: r.differingPages,
    rangeBytes: r.rangeBytes,
    scheme: r.scheme,
    gpu: outcome.gpu,
  };
}
