/**
 * The pre-copy engine, source side: the loop that sends every page, then the
 * pages dirtied meanwhile, round after round, until the plan says switch over
 * (pause, send the rest) or abort.
 *
 * A round is split over the plan's channels (`pipeline/partition.ts`: a pfn
 * always takes the same channel): each channel's Worker reads its pages out
 * of shared guest memory, batches, encodes and frames them on its own core,
 * while this thread only paces and writes the frames and keeps the score.
 * Each channel ends its part of a round with its own ROUND_END; the
 * receiver has the round when every channel has.
 *
 * @module
 */

import process from "node:process";
import { codecById, codecByName, codecNames } from "./codecs/registry.ts";
import {
  chooseScheme,
  DIGEST_SCHEMES,
  digestBytes,
  type DigestScheme,
  hex,
  type MemoryDigest,
  pageDigests,
  rangeCount,
  rootDigest,
  schemeRangeBytes,
} from "./digest.ts";
import type { SourceDriver } from "./driver.ts";
import {
  CommitUnknownError,
  LinkLostError,
  MigrationError,
  WireError,
} from "./errors.ts";
import { within } from "./session/_within.ts";
import {
  type Deadlines,
  type Decision,
  DEFAULT_DEADLINES,
  type Plan,
  type RoundStats,
} from "./plan.ts";
import {
  decidedRoundReport,
  type FinalRound,
  finalRoundReport,
  type RoundTraffic,
} from "./round_report.ts";
import {
  Steering,
  type SteeringCounters,
  type SteeringStep,
} from "./steering.ts";
import {
  type ChannelRoundReport,
  type CommitReport,
  type MemoryMismatch,
  type MigrationReport,
  mismatchText,
  type ResumeReport,
  type RoundReport,
} from "./report.ts";
import { type GpuEntry, openGpu } from "./gpu/device.ts";
import { EncoderPool } from "./pipeline/encoder_pool.ts";
import { channelOf, splitByChannel } from "./pipeline/partition.ts";
import { defaultChannels } from "./default_channels.ts";
import { type Recovered, SourceLink } from "./session/source_link.ts";
import { FrameType } from "./wire/frame.ts";
import type { Address } from "./transport/address.ts";
import type { ConnectSecurity } from "./transport/secure/mod.ts";
import {
  decodeCommitted,
  decodeDigestAsk,
  decodeReady,
  decodeResult,
  encodeCommit,
  encodeEnd,
  encodeFinal,
  encodePageDigests,
  encodeRoundEnd,
  PROTOCOL_VERSION,
  type Result,
  type Resumed,
  type Welcome,
} from "./wire/messages.ts";

/** A bidirectional byte stream, e.g. a `Deno.Conn`. */
export interface Duplex {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  readonly writable: WritableStream<Uint8Array>;
}

/** Progress within a migration, for progress bars. */
export interface MigrationProgress {
  /** Current round index. */
  readonly round: number;
  /** True during the stop-and-copy round. */
  readonly final: boolean;
  /** Pages sent so far in this round. */
  readonly pagesDone: number;
  /** Pages this round will send. */
  readonly pagesTotal: number;
  /** Wire bytes so far in the whole migration. */
  readonly wireBytes: number;
  /** Milliseconds since the migration started. */
  readonly elapsedMs: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Raw page bytes per second in this round so far. */
  readonly sendRate: number;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** The compiled policy. */
  readonly plan: Plan;
  /** The VM to migrate. */
  readonly source: SourceDriver;
  /** Connection to a receiver (`receiveMigration` on the other end). */
  readonly conn: Duplex;
  /**
   * Opens a new connection to the same receiver, authenticated as the same
   * source, for a plan that resumes ({@link Plan.resume}) after a lost
   * link. Without it a lost link fails the migration. The migration closes
   * the connections it opened this way.
   */
  readonly reconnect?: () => Promise<Duplex & { close?(): void }>;
  /** Called after each round. */
  readonly onRound?: (round: RoundReport) => void;
  /** Called often during a round (at most every 50 ms). */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Aborts the migration: the receiver is told, the source keeps running. */
  readonly signal?: AbortSignal;
  /** BATCH frames each channel may have on their way at once (default 4). */
  readonly queueFrames?: number;
  /** Channels; overrides the plan's `channels` (default: the plan's, else the core count). */
  readonly channels?: number;
  /** The WebGPU entry point (default `navigator.gpu`); tests pass `null` for "no adapter". */
  readonly gpu?: GpuEntry | null;
  /**
   * Called once the channel Workers started, with a handle that can stop one
   * as if it died (fault injection: a chaos experiment, or a test that the
   * source survives a lost channel).
   */
  readonly onChannels?: (channels: ChannelControl) => void;
  /**
   * Offer the commit protocol in HELLO (default true): after a verified
   * RESULT the source sends COMMIT and the receiver takes the memory as the
   * VM's only then. False behaves as a source from before the protocol
   * (interoperability tests).
   */
  readonly commit?: boolean;
  /**
   * Offer per-channel connections: when the receiver grants them (WELCOME's
   * `channelJoin`), each channel's Worker connects to the port it names on
   * `to`'s host with `security` (the same credentials as `conn`), joins
   * the session, and writes and encrypts its own frames, paced at its share
   * of the plan's bandwidth, so that encryption spreads over the channels'
   * cores. A receiver that does not grant them gets every channel inside
   * `conn`, as before. With a plan that resumes, a lost channel connection
   * is a lost link like `conn`'s: the source reconnects and every channel
   * joins again where RESUMED says (a fresh token); without one it fails
   * the migration, the VM running on at the source.
   */
  readonly channelConnections?: {
    /** The receiver's address, as dialled for `conn`. */
    readonly to: Address;
    /** The same security as `conn`'s. */
    readonly security: ConnectSecurity;
    /**
     * The port channel `channel` dials for the receiver's `port` (default:
     * `port` itself): a relay or a port forward between the two, e.g. a
     * test's fault proxy.
     */
    readonly portOf?: (channel: number, port: number) => number;
  };
}

/** What {@link MigrateOptions.onChannels} gets. */
export interface ChannelControl {
  /** Channels the migration runs. */
  readonly count: number;
  /** Stops channel `channel`'s Worker at once; the migration then fails. */
  kill(channel: number): void;
}

/**
 * Migrates a VM's memory to a receiver with a plan, live.
 *
 * Resolves with the report once the receiver has verified the memory
 * digest; rejects with {@link MigrationError} when the receiver refuses,
 * the link or a channel fails or the plan aborts (the source VM is left
 * running).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   MiB,
 *   migrate,
 *   policy,
 *   receiveMigration,
 *   SimMemorySink,
 *   SimVm,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * const plan = policy("p").switchover(when.rounds(3)).compile();
 * await using vm = await SimVm.create({
 *   memoryBytes: MiB(4),
 *   workload: "idle",
 * });
 * // An in-process receiver; over TCP, `conn` would be a `Deno.Conn`.
 * const [conn, destination] = memoryDuplex();
 * const received = receiveMigration(destination, {
 *   createSink: (h) =>
 *     new SimMemorySink({
 *       pageSize: h.pageSize,
 *       pageCount: h.memoryBytes / h.pageSize,
 *     }),
 * });
 * const report = await migrate({ plan, source: vm, conn, channels: 1 });
 * assert.equal(report.verified, true);
 * assert.ok(report.downtimeMs >= 0);
 * assert.equal((await received).verified, true);
 * ```
 */
export async function migrate(
  options: MigrateOptions,
): Promise<MigrationReport> {
  return await new SourceSession(options).run();
}

/**
 * Most milliseconds a failed stop-and-copy spends telling a receiver that
 * parked the session of the abort, on a new connection (the VM already runs
 * again at the source; this only ends the receiver's wait sooner).
 */
const ABORT_NOTICE_MS = 5000;

/** What one round put on the wire. */
interface RoundTally {
  pages: number;
  rawBytes: number;
  wireBytes: number;
  mix: Record<string, number>;
  codecs: string[];
  channels: ChannelRoundReport[];
}

class SourceSession {
  readonly #plan: Plan;
  readonly #source: SourceDriver;
  readonly #opts: MigrateOptions;
  #link: SourceLink;
  /** Wire bytes of the connections lost before this one. */
  #wireBefore = 0;
  /** Connections opened by `reconnect`, closed at the end. */
  readonly #opened: { close?(): void }[] = [];
  /** Pages handed to each channel so far, on every connection (a resumed session starts from what the receiver holds). */
  #channelPages: number[] = [];
  /**
   * Resumable sessions: per page, its index in its channel's pages when it
   * was last sent (Infinity: never, or lost); the receiver holds a page's
   * last version iff that index is below what its channel applied.
   */
  #sentAt: Float64Array | null = null;
  readonly #resumes: ResumeReport[] = [];
  /** Resumes tried (a failed one throws before it is reported). */
  #resuming = 0;
  /** The session id WELCOME gave (null: not resumable). */
  #session: string | null = null;
  /** The receiver took the commit protocol (WELCOME). */
  #commit = false;
  /** END was sent with the commit protocol: the verdict phase, whose errors are this session's own. */
  #verdictPhase = false;
  /**
   * COMMIT was written (or about to be): from here on the VM is never
   * resumed at the source, whatever happens.
   */
  #commitSent = false;
  /** Reconnections the verdict phase took. */
  #commitReconnects = 0;
  /** Each channel writes its own connection (WELCOME granted per-channel connections). */
  #perChannel = false;
  /** Wire bytes the channels wrote on their own connections. */
  #channelWire = 0;
  readonly #channels: number;
  readonly #dirty: Uint32Array;
  readonly #rounds: RoundReport[] = [];
  #pool: EncoderPool | null = null;
  /** The verification scheme WELCOME named; null: protocol 2's SHA-256 END. */
  #scheme: DigestScheme | null = null;
  #t0 = 0;
  /** Builds each decision point's stats and asks the plan (made when the run starts). */
  #steering!: Steering;
  #rawBytes = 0;
  #pagesSent = 0;
  #paused = false;
  #gpuNote = "";
  /** Ask the channels to encode on their GPU (an adapter the plan accepts was found). */
  #gpuWanted: { prefer: "gpu" | "auto"; batch: number } | undefined;
  #gpuAdapter: string | null = null;
  #gpuSoftware = false;
  #gpuPages = 0;
  /** Rejects when the caller's signal aborts (raced against waits). */
  readonly #aborted: Promise<never>;
  readonly #deadlines: Deadlines;
  /** Rejects once the policy's downtime bound passes (set while the VM is paused). */
  #downtimeOver: Promise<never> | null = null;
  #downtimeTimer: ReturnType<typeof setTimeout> | undefined;
  /** The downtime bound passed (a link that went silent at stop-and-copy, most likely). */
  #downtimePassed = false;
  /** READY came: the receiver is past FINAL, where a lost link fails its session rather than parking it. */
  #readyCame = false;

  constructor(opts: MigrateOptions) {
    this.#opts = opts;
    this.#plan = opts.plan;
    this.#source = opts.source;
    this.#deadlines = opts.plan.deadlines ?? DEFAULT_DEADLINES;
    this.#link = new SourceLink(opts.conn, {
      bandwidth: opts.plan.bandwidth,
      replyMs: this.#deadlines.replyMs,
    });
    const channels = opts.channels ?? opts.plan.channels ?? defaultChannels();
    if (!Number.isInteger(channels) || channels < 1 || channels > 64) {
      throw new MigrationError(
        `Invalid channel count "${channels}": expected an integer from 1 to 64`,
      );
    }
    this.#channels = channels;
    this.#dirty = new Uint32Array(opts.source.pageCount);
    this.#channelPages = new Array(channels).fill(0);
    this.#aborted = new Promise<never>((_, reject) => {
      const signal = opts.signal;
      const fail = () =>
        reject(
          new MigrationError(
            `Migration aborted: ${signal?.reason ?? "by the user"}`,
          ),
        );
      if (signal?.aborted) fail();
      else signal?.addEventListener("abort", fail, { once: true });
    });
    this.#aborted.catch(() => {});
  }

  async run(): Promise<MigrationReport> {
    const cpu0 = process.cpuUsage();
    const startedAt = new Date().toISOString();
    this.#t0 = performance.now();
    const source = this.#source;
    const plan = this.#plan;
    this.#steering = new Steering(plan, {
      memoryBytes: source.pageCount * source.pageSize,
      pageSize: source.pageSize,
    });
    try {
      this.#checkAbort();
      const welcome = await this.#race(this.#link.hello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: source.pageCount * source.pageSize,
        pageSize: source.pageSize,
        codecs: codecNames().map((name) => ({
          id: codecByName(name).id,
          name,
        })),
        vm: source.description,
        policy: plan.name,
        channels: this.#channels,
        ...(this.#resumeAsked() ? { resumeMs: plan.resume!.graceMs } : {}),
        verify: DIGEST_SCHEMES,
        ...(this.#opts.commit === false ? {} : { commit: true }),
        ...(this.#opts.channelConnections ? { channelConnections: true } : {}),
      }, { meanwhile: () => this.#startChannels() }));
      if (this.#opts.channelConnections && welcome.channelJoin) {
        await this.#connectChannels(welcome.channelJoin);
      }
      this.#commit = this.#opts.commit !== false && welcome.commit === true;
      this.#session = welcome.session ?? null;
      this.#scheme = chooseScheme(welcome.verify ? [welcome.verify] : []);
      if (welcome.verify !== undefined && !this.#scheme) {
        throw new MigrationError(
          `Receiver chose verification scheme "${welcome.verify}", which this source did not offer (${
            DIGEST_SCHEMES.join(", ")
          })`,
        );
      }
      if (this.#resumeAsked() && welcome.session) {
        this.#sentAt = new Float64Array(source.pageCount).fill(Infinity);
      }
      await source.startDirtyLog();

      // Round 0 sends every page.
      let count = source.pageCount;
      for (let i = 0; i < count; i++) this.#dirty[i] = i;
      let lastSync = performance.now();
      let prev: RoundReport | null = null;
      let round = 0;
      let decision: Decision = "continue";
      let reason = "";
      for (;;) {
        let sent: RoundTally;
        const roundStart = performance.now();
        try {
          this.#checkAbort();
          const before = this.#steering.stats(
            this.#counters(round, count, prev),
          );
          sent = await this.#sendRound(round, count, before, false);
        } catch (error) {
          // A lost link during pre-copy: the VM runs on; reconnect, and
          // send what the receiver lacks as the next round.
          if (!(await this.#resumable(error))) throw this.#unresumed(error);
          count = await this.#resume(error as LinkLostError, round);
          lastSync = performance.now();
          round++;
          continue;
        }
        // Sync at the end of the round: what the guest dirtied while we sent.
        count = source.syncDirty(this.#dirty);
        const now = performance.now();
        const syncSpan = (now - lastSync) / 1000;
        lastSync = now;
        const durationMs = now - roundStart;
        const step = this.#steering.decide({
          ...this.#counters(round, count, null),
          dirtyRate: syncSpan > 0 ? (count * source.pageSize) / syncSpan : 0,
          sendRate: durationMs > 0 ? sent.rawBytes / (durationMs / 1000) : 0,
          wireRate: durationMs > 0 ? sent.wireBytes / (durationMs / 1000) : 0,
        });
        decision = step.decision;
        reason = step.reason;
        prev = this.#roundReport(step, sent, durationMs);
        if (decision !== "continue") {
          // The link may be lost already with every write of the round
          // taken (into socket buffers) and only the reader knowing, or a
          // channel's connection with only its Worker knowing: resume now,
          // before the VM pauses, rather than fail at stop-and-copy.
          const lost = this.#link.peerError ?? this.#pool?.failure ?? null;
          if (
            decision === "switchover" && lost instanceof LinkLostError &&
            await this.#resumable(lost)
          ) {
            // The pages just synced must go again: their versions on the
            // receiver, if any, are older.
            for (let k = 0; k < count; k++) {
              this.#sentAt![this.#dirty[k]] = Infinity;
            }
            count = await this.#resume(lost, round);
            lastSync = performance.now();
            round++;
            continue;
          }
          break;
        }
        round++;
      }

      if (decision === "abort") {
        await this.#link.abort(
          `policy "${plan.name}" aborted after round ${round}: ${reason}`,
        );
        throw new MigrationError(
          `Migration aborted by policy "${plan.name}" after round ${round}: ${reason}`,
        );
      }

      // Stop and copy.
      const pauseAt = performance.now();
      await source.pause();
      this.#paused = true;
      this.#boundDowntime();
      const finalRound = round + 1;
      // Still pending: the pages dirtied during the last live round (unsent),
      // plus whatever the guest wrote between that sync and the pause.
      const late = new Uint32Array(source.pageCount);
      const lateCount = source.syncDirty(late);
      count = mergeSortedUnique(this.#dirty, count, late, lateCount);
      const finalStats = this.#steering.stats(
        this.#counters(finalRound, count, prev),
      );
      const sent = await this.#sendRound(finalRound, count, finalStats, true);
      // The source's digest: memory is frozen now; the channels hash it while
      // FINAL and READY cross the link.
      const digest = this.#digest();
      digest.catch(() => {});
      await this.#race(this.#link.write(
        FrameType.FINAL,
        finalRound,
        encodeFinal({
          round: finalRound,
          // What the receiver holds: every page handed to a channel on a
          // connection that was not lost.
          pagesTotal: this.#channelPages.reduce((a, b) => a + b, 0),
        }),
      ));
      const ready = decodeReady(
        await this.#race(this.#link.expect(FrameType.READY)),
      );
      const readyAt = performance.now();
      this.#readyCame = true;
      // READY: the destination holds everything; the downtime bound is met.
      this.#endDowntimeBound();
      const downtimeMs = readyAt - pauseAt;
      this.#roundReport(
        {
          round: finalRound,
          reason:
            `switchover: ${reason}; receiver applied ${ready.pagesApplied} pages`,
        },
        sent,
        readyAt - pauseAt,
      );

      // Verification: both sides hash their memory; the receiver compares,
      // and so do we.
      const ours = await this.#race(digest);
      const ourHex = hex(rootDigest(ours.ranges));
      this.#verdictPhase = this.#commit;
      await this.#link.write(
        FrameType.END,
        finalRound,
        encodeEnd(ours, digestBytes(ours.scheme ?? "sha256")),
      ).catch((e) => {
        // With the commit protocol a lost END is a lost verdict: learnt below.
        if (!this.#commit) throw e;
      });
      const result = this.#commit
        ? await this.#verdictAndCommit(ours, ourHex, ready.pagesApplied)
        : await this.#result(ours);
      const endAt = performance.now();
      await this.#link.close();
      const verified = result.verified && result.digest === ourHex;
      const commit: CommitReport | undefined = this.#commit
        ? { committed: verified, reconnects: this.#commitReconnects }
        : undefined;
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const wireBytes = this.#wireBytes();
      const mismatch = verified ? undefined : mismatchOf(result, ours);
      const where = mismatch ? `; ${mismatchText(mismatch)}` : "";
      const report: MigrationReport = {
        verified,
        verification: "memory-digest",
        aborted: false,
        outcome: verified
          ? `migrated and verified (switchover: ${reason})${
            commit ? "; the receiver committed on COMMIT" : ""
          }`
          : `memory digests differ: source ${ourHex}, receiver ${result.digest}${where}`,
        policy: plan.name,
        vm: source.description,
        memoryBytes: source.pageCount * source.pageSize,
        pageSize: source.pageSize,
        bandwidth: plan.bandwidth,
        startedAt,
        totalTimeMs: endAt - this.#t0,
        downtimeMs,
        verifyMs: endAt - readyAt,
        wireBytes,
        rawBytes: this.#rawBytes,
        compressionRatio: wireBytes > 0 ? this.#rawBytes / wireBytes : 0,
        pagesSent: this.#pagesSent,
        sourceCpuSeconds: cpuSeconds,
        sourceCpuSecondsPerGiB: this.#rawBytes > 0
          ? cpuSeconds / (this.#rawBytes / 2 ** 30)
          : 0,
        digest: ourHex,
        digestScheme: ours.scheme ?? "sha256",
        ...(mismatch ? { mismatch } : {}),
        channels: this.#channels,
        ...(this.#opts.channelConnections
          ? { channelConnections: this.#perChannel }
          : {}),
        gpu: this.#gpuUse(),
        rounds: this.#rounds,
        ...(this.#resumes.length ? { resumes: this.#resumes } : {}),
        ...(commit ? { commit } : {}),
      };
      return report;
    } catch (error) {
      this.#endDowntimeBound();
      // Once COMMIT is sent the VM is never resumed here: the destination
      // may run it. The error says what the operator must check.
      if (this.#commitSent) {
        await this.#link.close();
        throw error instanceof CommitUnknownError
          ? error
          : this.#unknown(error, this.#commitReconnects);
      }
      // Whatever failed, the source VM keeps running and the receiver discards.
      const stopAndCopy = this.#paused && !this.#readyCame;
      if (this.#paused) {
        await source.resume().catch(() => {});
        this.#paused = false;
      }
      const peer = this.#link.peerError;
      const why = error instanceof Error ? error.message : String(error);
      if (!peer) await this.#link.abort(why);
      await this.#link.close();
      if (stopAndCopy && this.#parkedThere(error, peer)) {
        // The VM runs again already; this only spares the receiver its grace.
        await this.#abortOnNewLink(why);
      }
      // The receiver's own words, unless the link's loss is old news to a
      // resume that failed, or to the verdict phase, which says more.
      if (
        peer &&
        !((this.#resuming > 0 || this.#verdictPhase) &&
          peer instanceof LinkLostError)
      ) {
        throw peer;
      }
      if (error instanceof MigrationError) throw error;
      throw new MigrationError(
        `Migration failed: ${
          error instanceof Error ? error.message : String(error)
        }`,
        { cause: error },
      );
    } finally {
      this.#pool?.close();
      for (const c of this.#opened) {
        try {
          c.close?.();
        } catch { /* closed */ }
      }
    }
  }

  /** Wire bytes of every connection so far. */
  #wireBytes(): number {
    return this.#wireBefore + this.#link.wireBytes + this.#channelWire;
  }

  /**
   * Per-channel connections, granted: every channel's Worker connects to
   * its port, authenticates as the session's connection did and JOINs,
   * within the reply deadline.
   */
  async #connectChannels(
    join: NonNullable<Welcome["channelJoin"]>,
  ): Promise<void> {
    const cc = this.#opts.channelConnections!;
    if (join.ports.length !== this.#channels) {
      throw new MigrationError(
        `The receiver's WELCOME names ${join.ports.length} channel ports for ${this.#channels} channels`,
      );
    }
    const replyMs = this.#deadlines.replyMs;
    const bandwidth = this.#plan.bandwidth;
    const portOf = cc.portOf ?? ((_: number, port: number) => port);
    // The reply deadline is the receiver's: this side's own Workers load
    // first (seconds where Deno type-checks them on a cold cache).
    await this.#race(this.#pool!.sync());
    await this.#race(within(
      this.#pool!.connect((channel) => ({
        to: {
          hostname: cc.to.hostname,
          port: portOf(channel, join.ports[channel]),
        },
        security: cc.security,
        join: { session: join.session, token: join.token, channel },
        timeoutMs: replyMs,
        bytesPerSecond: bandwidth ? bandwidth / this.#channels : null,
      })),
      replyMs,
      // A lost link: a resuming migration tries again.
      () =>
        new LinkLostError(
          `The channels' connections to the receiver did not all join within ${replyMs} ms (the reply deadline)`,
          { side: "receiver", peer: null, phase: "the channels' JOIN" },
        ),
    ));
    this.#perChannel = true;
  }

  /**
   * Whether stop-and-copy's failure `error` (the receiver's last words
   * `peer`) may have left the receiver's session parked, waiting its grace
   * for a RESUME: the session is resumable, the receiver did not fail it
   * itself (its ERROR), and the link or a channel's connection was lost, or
   * went silent past the downtime bound. A receiver that lost a connection
   * before FINAL parks the session and closes the session's connection, so
   * an ABORT written there never reaches it.
   */
  #parkedThere(error: unknown, peer: Error | null): boolean {
    if (this.#sentAt === null || this.#verdictPhase) return false;
    if (peer && !(peer instanceof LinkLostError)) return false;
    return error instanceof LinkLostError || peer instanceof LinkLostError ||
      this.#pool?.failure instanceof LinkLostError || this.#downtimePassed;
  }

  /**
   * Tells a receiver that may hold the session parked that the migration
   * is given up: RESUME on a new connection, then ABORT there
   * ({@link SourceLink.abandon}), best effort within
   * {@link ABORT_NOTICE_MS} (at most the reply deadline), so that it
   * discards at once rather than when its grace passes. Not raced against
   * the user's abort: telling the receiver is what an abort wants too.
   */
  async #abortOnNewLink(reason: string): Promise<void> {
    const ms = Math.min(ABORT_NOTICE_MS, this.#deadlines.replyMs);
    const started = performance.now();
    const gone = () =>
      new LinkLostError(
        `Telling the receiver of the abort on a new connection took longer than ${ms} ms`,
        { side: "receiver", peer: null, phase: "the abort" },
      );
    // A connection that comes after the bound is closed when it comes (the
    // migration's own are closed as it ends, which may be before).
    let late = false;
    try {
      const connecting = this.#opts.reconnect!();
      connecting.then((c) => {
        if (!late) return void this.#opened.push(c);
        try {
          c.close?.();
        } catch { /* closed */ }
      }, () => {});
      const conn = await within(connecting, ms, () => {
        late = true;
        return gone();
      });
      const left = Math.max(1, started + ms - performance.now());
      const link = new SourceLink(conn, { replyMs: left });
      await within(link.abandon(this.#session!, reason), left, gone);
    } catch {
      // Best effort: the receiver then discards when its grace passes.
    }
  }

  /**
   * Closes the channels' pool after a lost link, counting the bytes its
   * channels wrote on their own connections that no "sent" reported yet.
   */
  #dropPool(): void {
    this.#channelWire += this.#pool?.pendingWireBytes ?? 0;
    this.#pool?.close();
    this.#pool = null;
  }

  /** Whether HELLO asks for a resumable session: the plan resumes and a reconnection is possible. */
  #resumeAsked(): boolean {
    return this.#plan.resume !== undefined &&
      this.#opts.reconnect !== undefined;
  }

  /**
   * Whether `error`, during pre-copy, is a lost link this migration resumes
   * from: the receiver gave the session an id, the VM runs, and the
   * receiver did not say why it stopped (its ERROR is final).
   */
  async #resumable(error: unknown): Promise<boolean> {
    if (
      !(error instanceof LinkLostError) || this.#sentAt === null ||
      this.#paused || this.#opts.signal?.aborted
    ) return false;
    // A write may fail before the receiver's last words are read.
    await this.#link.settle(500);
    const peer = this.#link.peerError;
    return peer === null || peer instanceof LinkLostError;
  }

  /**
   * `error` as it is, or, for a lost link the plan wanted resumed but the
   * receiver offered no session for, the same error saying why it was not.
   */
  #unresumed(error: unknown): unknown {
    if (
      !(error instanceof LinkLostError) || !this.#resumeAsked() ||
      this.#sentAt !== null || this.#paused
    ) return error;
    return new LinkLostError(
      `${error.message}; not resumed: the receiver offered no session to resume (resumable sessions are off there, e.g. hakobu receive --resume-grace 0)`,
      error,
      { cause: error },
    );
  }

  /**
   * Reconnects within the plan's grace (and the receiver's), RESUMEs the
   * session with fresh channels (codec state starts afresh on both sides),
   * and puts in the dirty list what the receiver lacks: every page whose
   * last version it does not hold, and every page dirtied since the last
   * sync. Returns the list's length.
   *
   * @throws {MigrationError} when no reconnection resumed in time, or the
   *   receiver refused (the VM runs on at the source).
   */
  async #resume(lost: LinkLostError, round: number): Promise<number> {
    const source = this.#source;
    const lostAt = performance.now();
    const resume = this.#plan.resume!;
    const session = this.#session!;
    // The policy's grace: the receiver may keep the session for less (its
    // WELCOME said how long), and then says so when it refuses the RESUME.
    const graceMs = resume.graceMs;
    this.#resuming++;
    const deadline = lostAt + graceMs;
    // Bytes the channels wrote on their connections before the loss whose
    // "sent" was not taken yet count too (once: the pool goes).
    this.#dropPool();
    const wireBytesBefore = this.#wireBytes();
    void this.#link.close();
    let attempts = 0;
    let last: unknown = lost;
    let resumed: Resumed | null = null;
    let backoffMs = 100;
    while (attempts < resume.attempts && performance.now() < deadline) {
      // The user's abort only: the lost link's own failure, which its
      // reader may have recorded meanwhile, is what is being resumed from.
      this.#checkSignal();
      attempts++;
      const left = () => Math.max(1, deadline - performance.now());
      try {
        const conn = await this.#reconnect(
          left(),
          lost.peer,
          `the reconnection after round ${round}`,
        );
        const link = this.#switchLink(conn, left());
        const answer = await this.#race(
          link.resume(session, {
            meanwhile: () => this.#startChannels(),
          }),
        );
        if (this.#perChannel) {
          // Each channel joins again, on the ports and with the fresh
          // token RESUMED names (the lost connections' token is void).
          if (!answer.channelJoin) {
            throw new MigrationError(
              `The receiver resumed the session without channelJoin, but its channels have connections of their own`,
            );
          }
          await this.#connectChannels(answer.channelJoin);
        }
        resumed = answer;
        break;
      } catch (e) {
        last = e;
        this.#dropPool();
        if (this.#opts.signal?.aborted) throw e;
        if (e instanceof MigrationError && !(e instanceof LinkLostError)) {
          // The receiver refused: the session is gone, or not ours.
          throw new MigrationError(
            `Cannot resume the migration after the link was lost in round ${round} (${lost.message}): ${e.message}; the VM runs on at the source`,
            { cause: e },
          );
        }
        await new Promise((r) =>
          setTimeout(r, Math.min(backoffMs, deadline - performance.now()))
        );
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    if (!resumed) {
      throw new MigrationError(
        `Cannot resume the migration after the link was lost in round ${round} (${lost.message}): ` +
          `${attempts} reconnection${
            attempts === 1 ? "" : "s"
          } within the grace of ${graceMs} ms did not resume it (the last: ${
            last instanceof Error ? last.message : last
          }); the VM runs on at the source`,
        { cause: last },
      );
    }
    const held = resumed.channelPages;
    if (
      held.length !== this.#channels ||
      held.some((n, c) => n > this.#channelPages[c])
    ) {
      throw new MigrationError(
        `The receiver's RESUMED does not fit this session: it holds [${
          held.join(", ")
        }] pages per channel, this source sent [${
          this.#channelPages.join(", ")
        }]`,
      );
    }
    // What the receiver lacks: pages whose last version it does not hold
    // (they count as never sent from now on), and what the guest dirtied
    // since the last sync.
    const sentAt = this.#sentAt!;
    const missing = new Uint32Array(source.pageCount);
    let nMissing = 0;
    for (let pfn = 0; pfn < source.pageCount; pfn++) {
      if (!(sentAt[pfn] < held[channelOf(pfn, this.#channels)])) {
        sentAt[pfn] = Infinity;
        missing[nMissing++] = pfn;
      }
    }
    this.#channelPages = held.slice();
    const dirtied = new Uint32Array(source.pageCount);
    const nDirtied = source.syncDirty(dirtied);
    this.#dirty.set(missing.subarray(0, nMissing));
    const count = mergeSortedUnique(this.#dirty, nMissing, dirtied, nDirtied);
    this.#resumes.push({
      round,
      reason: lost.message,
      attempts,
      downMs: performance.now() - lostAt,
      wireBytesBefore,
      pagesMissing: nMissing,
      pagesDirtied: nDirtied,
      pagesToSend: count,
    });
    return count;
  }

  /**
   * Starts the channel Workers (after the GPU check, which says whether
   * they open a device): called while the receiver answers HELLO, so that
   * their start-up overlaps the round trip and the receiver's own.
   */
  async #startChannels(): Promise<void> {
    const source = this.#source;
    await this.#noteGpu();
    if (!source.shared) {
      throw new MigrationError(
        `Cannot migrate "${source.description}": its driver does not share guest memory with the channel Workers`,
      );
    }
    this.#pool = EncoderPool.start({
      channels: this.#channels,
      pageSize: source.pageSize,
      pageCount: source.pageCount,
      memory: source.shared,
      batchPages: this.#plan.batchPages,
      credits: this.#opts.queueFrames,
      gpu: this.#gpuWanted,
    });
    const pool = this.#pool;
    this.#opts.onChannels?.({
      count: this.#channels,
      kill: (channel) => pool.kill(channel),
    });
  }

  /** Says why the GPU is not used, as the plan's `gpu` settings ask (and fails when it is required but absent). */
  async #noteGpu(): Promise<void> {
    const { prefer, require } = this.#plan.gpu;
    if (prefer === "cpu") {
      this.#gpuNote = "not used: the plan prefers the CPU";
      return;
    }
    const gpu = await openGpu({
      prefer,
      require,
      ...(this.#opts.gpu === undefined ? {} : { gpu: this.#opts.gpu }),
      onFallback: (reason) => (this.#gpuNote = `not used: ${reason}`),
    });
    if (gpu) {
      // Each channel opens its own device on the same adapter.
      gpu.device.destroy();
      this.#gpuWanted = { prefer: prefer, batch: this.#plan.gpu.batch };
      this.#gpuAdapter = gpu.adapterInfo.description;
      this.#gpuSoftware = gpu.adapterInfo.isFallbackAdapter;
    }
  }

  /** What the report says about the GPU. */
  #gpuUse(): MigrationReport["gpu"] {
    const pool = this.#pool;
    const missing = pool?.gpu.find((g) => g && g.adapter === null);
    if (this.#gpuPages > 0) {
      return {
        used: true,
        adapter: this.#gpuAdapter,
        pagesEncoded: this.#gpuPages,
        note: `encoded ${this.#gpuPages} pages on ${this.#gpuAdapter}` +
          (this.#gpuSoftware
            ? " (a software adapter: correct, not fast)"
            : "") +
          (missing ? `; a channel found no adapter (${missing.note})` : ""),
      };
    }
    return {
      used: false,
      adapter: this.#gpuAdapter,
      pagesEncoded: 0,
      note: this.#gpuNote ||
        (missing
          ? `not used: the channels found no adapter (${missing.note})`
          : "not used: no round's codec chain has a GPU twin"),
    };
  }

  /**
   * The source's digest, with the scheme WELCOME named (protocol 2's
   * SHA-256 otherwise): hashed by the channels over shared memory. Every
   * range is read: the source checks its memory as it is, not what it
   * believes it sent (a missed dirty page is what verification catches).
   */
  async #digest(): Promise<MemoryDigest> {
    const source = this.#source;
    const bytes = source.pageCount * source.pageSize;
    const scheme = this.#scheme ?? "sha256";
    const rangeBytes = schemeRangeBytes(scheme);
    const count = rangeCount(bytes, rangeBytes);
    const ranges = await this.#pool!.digest(rangeBytes, count, scheme);
    return { rangeBytes, ranges, scheme };
  }

  /**
   * The receiver's RESULT, answering its DIGEST_ASK first when some ranges
   * differ (with a negotiated scheme): the digest of each page of the
   * ranges it names, so that it can name the pages.
   */
  async #result(ours: MemoryDigest): Promise<Result> {
    const source = this.#source;
    let asked = false;
    for (;;) {
      const frame = await this.#race(this.#link.expectOneOf(
        asked || !this.#scheme
          ? [FrameType.RESULT]
          : [FrameType.RESULT, FrameType.DIGEST_ASK],
      ));
      if (frame.type === FrameType.RESULT) return decodeResult(frame.payload);
      asked = true;
      const { ranges } = decodeDigestAsk(frame.payload);
      const count = rangeCount(
        source.pageCount * source.pageSize,
        ours.rangeBytes,
      );
      if (ranges[ranges.length - 1] >= count) {
        throw new MigrationError(
          `Receiver's DIGEST_ASK names range ${
            ranges[ranges.length - 1]
          }, but ${count} ranges of ${ours.rangeBytes} bytes cover this VM's memory`,
        );
      }
      const memory = new Uint8Array(source.shared!);
      const ps = source.pageSize;
      const scheme = this.#scheme!;
      const digests = pageDigests(
        (p) => memory.subarray(p * ps, (p + 1) * ps),
        ranges,
        {
          scheme,
          rangeBytes: ours.rangeBytes,
          pageSize: ps,
          memoryBytes: source.pageCount * ps,
        },
      );
      await this.#link.write(
        FrameType.PAGE_DIGESTS,
        0,
        encodePageDigests({
          ranges,
          digestBytes: digestBytes(scheme),
          digests,
        }),
      );
    }
  }

  /**
   * Commit protocol: the receiver's verdict, then COMMIT and its COMMITTED.
   *
   * A verdict that is not verified (or names another digest than ours)
   * ends the migration with the VM resumed here: the receiver has
   * discarded, or is told to (ABORT). A verified one is answered with
   * COMMIT, and from that moment the VM is never resumed here. A link lost
   * (or stuck past the reply deadline) before RESULT or COMMITTED came is
   * recovered through RESUME on the session WELCOME named, within the
   * policy's resume grace and attempts: the receiver says what it sent (and
   * COMMIT goes again), that it committed, or that it discarded.
   *
   * @throws {CommitUnknownError} when COMMIT was sent and nothing said
   *   whether the receiver committed: the VM stays paused.
   * @throws {MigrationError} otherwise; the VM then resumes (the receiver
   *   never commits without COMMIT).
   */
  async #verdictAndCommit(
    ours: MemoryDigest,
    ourHex: string,
    pagesApplied: number,
  ): Promise<Result> {
    let result: Result | null = null;
    let lost: unknown = null;
    try {
      result = await this.#result(ours);
    } catch (e) {
      if (!this.#uncertain(e)) throw e;
      lost = e;
    }
    const resume = this.#resumeAsked() && this.#session !== null
      ? this.#plan.resume!
      : null;
    let lostAt = performance.now();
    let firstLoss: unknown = lost;
    let attempts = 0;
    let backoffMs = 100;
    for (;;) {
      if (result && lost === null) {
        if (!result.verified || result.digest !== ourHex) {
          // Nothing is committed: the VM runs on here.
          if (result.verified) {
            await this.#link.abort(
              `the receiver's digest ${result.digest} is not the source's ${ourHex}: not committing`,
            );
          }
          await this.#source.resume();
          this.#paused = false;
          return result;
        }
        // From here on the VM is the destination's to run, never ours.
        this.#commitSent = true;
        try {
          await this.#race(
            this.#link.write(
              FrameType.COMMIT,
              0,
              encodeCommit({ digest: ourHex }),
            ),
          );
          const committed = decodeCommitted(
            await this.#race(this.#link.expect(FrameType.COMMITTED)),
          );
          if (committed.digest !== ourHex) {
            throw this.#unknown(
              new MigrationError(
                `the receiver's COMMITTED names digest ${committed.digest}, not ${ourHex}`,
              ),
              attempts,
            );
          }
          return result;
        } catch (e) {
          if (e instanceof CommitUnknownError) throw e;
          if (this.#link.peerDiscarded) {
            // The receiver's word: it failed, discarded, and never commits.
            this.#commitSent = false;
            throw new MigrationError(
              `${
                this.#link.peerError?.message ?? String(e)
              } (after COMMIT); it discarded its copy, so the VM resumes at the source`,
            );
          }
          lost = e;
          firstLoss ??= e;
          lostAt = performance.now();
        }
      }
      // The answer was lost with the link: ask on a new connection.
      const left = () =>
        resume ? Math.max(1, lostAt + resume.graceMs - performance.now()) : 0;
      if (
        this.#opts.signal?.aborted || resume === null ||
        attempts >= resume.attempts || left() <= 1
      ) {
        throw this.#commitSent
          ? this.#unknown(lost, attempts)
          : this.#verdictLost(lost, attempts);
      }
      if (attempts > 0) {
        await new Promise((r) => setTimeout(r, Math.min(backoffMs, left())));
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
      attempts++;
      this.#commitReconnects++;
      let answer: Recovered;
      try {
        answer = await this.#reconnectForVerdict(left, lost);
      } catch (e) {
        lost = e;
        continue;
      }
      switch (answer.kind) {
        case "committed":
          // The COMMIT went through before the link went (its COMMITTED
          // was lost).
          this.#commitSent = true;
          if (answer.digest !== ourHex) {
            throw this.#unknown(
              new MigrationError(
                `the receiver committed digest ${answer.digest}, not ${ourHex}`,
              ),
              attempts,
            );
          }
          return result ?? {
            verified: true,
            digest: answer.digest,
            pagesApplied,
            mismatched: [],
          };
        case "resumed":
          if (!answer.result) {
            lost = new MigrationError(
              "The receiver resumed the session without a verdict: it is not past END",
            );
            throw this.#commitSent
              ? this.#unknown(lost, attempts)
              : this.#verdictLost(lost, attempts);
          }
          result = answer.result;
          lost = null;
          continue;
        case "refused":
          if (answer.discarded || !this.#commitSent) {
            // Never committed there: the VM runs on here.
            this.#commitSent = false;
            throw new MigrationError(
              `The receiver ${
                answer.discarded ? "discarded" : "refused"
              } the session after ${
                firstLoss instanceof Error ? firstLoss.message : firstLoss
              }: ${answer.message}; nothing was committed, so the VM resumes at the source`,
            );
          }
          throw this.#unknown(
            new MigrationError(
              `the receiver refused the RESUME without saying it discarded the session: ${answer.message}`,
            ),
            attempts,
          );
      }
    }
  }

  /**
   * A new connection to the receiver within `waitMs` (a connection that
   * comes later is closed at the end), or a {@link LinkLostError} naming
   * `peer` and `phase`.
   */
  #reconnect(
    waitMs: number,
    peer: string | null,
    phase: string,
  ): Promise<Awaited<ReturnType<NonNullable<MigrateOptions["reconnect"]>>>> {
    const connecting = this.#opts.reconnect!();
    connecting.then((c) => this.#opened.push(c), () => {});
    return this.#race(
      within(connecting, waitMs, () =>
        new LinkLostError(
          `Reconnecting to the receiver took longer than ${
            Math.round(waitMs)
          } ms`,
          { side: "receiver", peer, phase },
        )),
    );
  }

  /** Reconnects for the verdict phase (within `left()`) and asks what became of the session. */
  async #reconnectForVerdict(
    left: () => number,
    lost: unknown,
  ): Promise<Recovered> {
    const conn = await this.#reconnect(
      left(),
      lost instanceof LinkLostError ? lost.peer : null,
      "the verdict",
    );
    return await this.#race(
      this.#switchLink(conn, left()).recover(this.#session!),
    );
  }

  /**
   * Makes `conn` the session's link (its reply deadline at most `leftMs`):
   * the old link is closed and its wire bytes kept in the total, a failed
   * reconnection's too.
   */
  #switchLink(conn: Duplex, leftMs: number): SourceLink {
    // The old link's bytes only: the channels' own connections are
    // counted in #channelWire, across every connection (adding them here
    // too counted them twice after a resume).
    this.#wireBefore += this.#link.wireBytes;
    void this.#link.close();
    this.#link = new SourceLink(conn, {
      bandwidth: this.#plan.bandwidth,
      replyMs: Math.min(this.#deadlines.replyMs, leftMs),
    });
    return this.#link;
  }

  /**
   * Whether `error`, in the verdict phase, leaves the verdict or the commit
   * unknown (a lost or stuck link, an answer that never came) rather than
   * being a decision: the receiver's ERROR, the user's abort, a malformed
   * frame.
   */
  #uncertain(error: unknown): boolean {
    if (this.#opts.signal?.aborted || error instanceof WireError) return false;
    const peer = this.#link.peerError;
    if (peer && !(peer instanceof LinkLostError)) return false;
    return error instanceof MigrationError;
  }

  /** The verdict was lost before COMMIT: the migration fails and the VM resumes here. */
  #verdictLost(lost: unknown, attempts: number): MigrationError {
    const why = lost instanceof Error ? lost.message : String(lost);
    const message = `${why}; the verdict was lost before COMMIT (${
      this.#askedAgain(attempts)
    }): the receiver never commits without COMMIT and discards its copy, so the VM resumes at the source`;
    return lost instanceof LinkLostError
      ? new LinkLostError(message, lost, { cause: lost })
      : new MigrationError(message, { cause: lost });
  }

  /** COMMIT was sent and nothing says whether it was taken: the VM stays paused. */
  #unknown(lost: unknown, attempts: number): CommitUnknownError {
    const why = lost instanceof Error ? lost.message : String(lost);
    const receiver = lost instanceof LinkLostError ? lost.peer : null;
    const session = this.#session;
    return new CommitUnknownError(
      `Outcome unknown: COMMIT was sent to ${
        receiver ?? "the receiver"
      }, but whether it committed is not known (${why}; ${
        this.#askedAgain(attempts)
      }). The VM stays PAUSED at the source and was not resumed: the destination may be running it. ` +
        `Check the receiver${
          session ? ` for session ${session}` : ""
        }: if it committed (hakobu receive printed VERIFIED … committed on COMMIT), the VM runs there, so stop its paused copy here; ` +
        `if it did not (it discards a session that gets no COMMIT once its connection is lost or its resume grace passes), resume the VM at the source`,
      { receiver, session },
      { cause: lost },
    );
  }

  /** How the verdict phase tried to ask again, in words. */
  #askedAgain(attempts: number): string {
    const resume = this.#plan.resume;
    if (!this.#resumeAsked() || this.#session === null || !resume) {
      return "no resume policy or resumable session to ask again on a new connection";
    }
    return `${attempts} reconnection${
      attempts === 1 ? "" : "s"
    } within the policy's resume grace of ${resume.graceMs} ms did not tell`;
  }

  #checkAbort(): void {
    this.#link.checkPeer();
    this.#checkSignal();
  }

  /** Fails when the user aborted the migration. */
  #checkSignal(): void {
    if (this.#opts.signal?.aborted) {
      throw new MigrationError(
        `Migration aborted: ${this.#opts.signal.reason ?? "by the user"}`,
      );
    }
  }

  /** Waits for `p`, or fails first when the user aborts or the downtime bound passes. */
  #race<T>(p: Promise<T>): Promise<T> {
    return this.#downtimeOver
      ? Promise.race([p, this.#aborted, this.#downtimeOver])
      : Promise.race([p, this.#aborted]);
  }

  /** Starts the policy's downtime bound, if it has one (the VM was just paused). */
  #boundDowntime(): void {
    const ms = this.#deadlines.downtimeMs;
    if (ms === null) return;
    this.#downtimeOver = new Promise<never>((_, reject) => {
      this.#downtimeTimer = setTimeout(
        () => {
          this.#downtimePassed = true;
          reject(
            new MigrationError(
              `Stop-and-copy did not end within the policy's downtime bound of ${ms} ms (no READY from the receiver yet): the VM resumes on the source`,
            ),
          );
        },
        ms,
      );
    });
    this.#downtimeOver.catch(() => {});
  }

  #endDowntimeBound(): void {
    clearTimeout(this.#downtimeTimer);
    this.#downtimeOver = null;
  }

  /** The counters now; rates are the previous round's (0 before round 0 ends). */
  #counters(
    round: number,
    dirtyPages: number,
    prev: RoundReport | null,
  ): SteeringCounters {
    return {
      round,
      dirtyPages,
      dirtyRate: prev?.dirtyRate ?? 0,
      sendRate: prev?.sendRate ?? 0,
      wireRate: prev?.wireRate ?? 0,
      bytesSent: this.#wireBytes(),
      rawBytesSent: this.#rawBytes,
    };
  }

  /** Reports a round (live when `step` is a decision, else stop-and-copy). */
  #roundReport(
    step: SteeringStep | FinalRound,
    sent: RoundTally,
    durationMs: number,
  ): RoundReport {
    const traffic: RoundTraffic = {
      dirtyPages: sent.pages,
      pagesSent: sent.pages,
      rawBytes: sent.rawBytes,
      wireBytes: sent.wireBytes,
      codecMix: sent.mix,
      channels: sent.channels,
      codecs: sent.codecs,
      durationMs,
    };
    const report = "stats" in step
      ? decidedRoundReport(step, traffic)
      : finalRoundReport(step, traffic);
    this.#rounds.push(report);
    this.#opts.onRound?.(report);
    return report;
  }

  /**
   * Sends the first `count` pfns of the dirty list as one round: each
   * channel's Worker encodes its share; this thread writes their frames as
   * they come (paced), then each channel's ROUND_END after its last frame.
   */
  async #sendRound(
    round: number,
    count: number,
    stats: RoundStats,
    final: boolean,
  ): Promise<RoundTally> {
    const pool = this.#pool!;
    const ps = this.#source.pageSize;
    const specs = this.#plan.codecsFor(stats);
    pool.chain(specs);
    const codecs = specs.map((s) => s.name);
    if (codecs.at(-1) !== "raw") codecs.push("raw");
    const tally: RoundTally = {
      pages: 0,
      rawBytes: 0,
      wireBytes: 0,
      mix: {},
      codecs,
      channels: [],
    };
    const perChannel = Array.from(
      { length: this.#channels },
      () => ({ pages: 0, wireBytes: 0, mix: new Map<number, number>() }),
    );
    const mixById = new Map<number, number>();
    const roundStart = performance.now();
    let lastProgress = 0;
    const progress = (): void => {
      const now = performance.now();
      if (
        !this.#opts.onProgress ||
        (now - lastProgress < 50 && tally.pages < count)
      ) {
        return;
      }
      lastProgress = now;
      const secs = (now - roundStart) / 1000;
      this.#opts.onProgress({
        round,
        final,
        pagesDone: tally.pages,
        pagesTotal: count,
        wireBytes: this.#wireBytes(),
        elapsedMs: now - this.#t0,
        pageSize: ps,
        sendRate: secs > 0 ? (tally.pages * ps) / secs : 0,
      });
    };

    const parts = splitByChannel(this.#dirty, count, this.#channels);
    // Each page's place in its channel's pages (before the parts are
    // transferred to the Workers).
    parts.forEach((pfns, c) => {
      const base = this.#channelPages[c];
      const sentAt = this.#sentAt;
      if (sentAt) {
        for (let k = 0; k < pfns.length; k++) sentAt[pfns[k]] = base + k;
      }
      this.#channelPages[c] = base + pfns.length;
    });
    pool.round(round, parts, final);
    let done = 0;
    while (done < this.#channels) {
      this.#checkAbort();
      const e = await this.#race(pool.next());
      if (e.type === "sent" || e.type === "frame") {
        let len: number;
        if (e.type === "frame") {
          await this.#race(this.#link.writeRaw(e.bytes));
          len = e.bytes.length;
          if (e.credited) pool.credit(e.channel, e.bytes);
        } else {
          // Written by the channel on its own connection.
          len = e.wireBytes;
          this.#channelWire += len;
        }
        const c = perChannel[e.channel];
        c.wireBytes += len;
        c.pages += e.pages;
        tally.wireBytes += len;
        tally.pages += e.pages;
        this.#gpuPages += e.gpuPages;
        for (const [id, n] of e.claims) {
          mixById.set(id, (mixById.get(id) ?? 0) + n);
          c.mix.set(id, (c.mix.get(id) ?? 0) + n);
        }
        progress();
        continue;
      }
      // This channel has sent its part of the round.
      if (e.endBytes !== undefined) {
        // and its ROUND_END, on its own connection
        tally.wireBytes += e.endBytes;
        this.#channelWire += e.endBytes;
        done++;
        continue;
      }
      const c = perChannel[e.channel];
      const endBytes = encodeRoundEnd({
        round,
        pages: c.pages,
        rawBytes: c.pages * ps,
        wireBytes: c.wireBytes,
      });
      await this.#race(
        this.#link.write(FrameType.ROUND_END, round, endBytes, e.channel),
      );
      tally.wireBytes += 16 + endBytes.length;
      done++;
    }
    tally.rawBytes = tally.pages * ps;
    for (const [id, n] of mixById) tally.mix[codecById(id)!.name] = n;
    tally.channels = perChannel.map((c) => ({
      pages: c.pages,
      wireBytes: c.wireBytes,
      codecMix: Object.fromEntries(
        [...c.mix].map(([id, n]) => [codecById(id)!.name, n]),
      ),
    }));
    this.#pagesSent += tally.pages;
    this.#rawBytes += tally.rawBytes;
    progress();
    return tally;
  }
}

/**
 * Merges the ascending pfn list `b[0..nb)` into the ascending list
 * `a[0..na)` in place (dropping duplicates); returns the new length. `a`
 * must have room for the union (it has room for every page).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mergeSortedUnique } from "@hakobu/hakobu";
 *
 * const a = new Uint32Array([1, 4, 0, 0]);
 * const n = mergeSortedUnique(a, 2, new Uint32Array([2, 4]), 2);
 * assert.deepEqual(a.subarray(0, n), new Uint32Array([1, 2, 4]));
 * ```
 */
export function mergeSortedUnique(
  a: Uint32Array,
  na: number,
  b: Uint32Array,
  nb: number,
): number {
  if (nb === 0) return na;
  const merged = new Uint32Array(na + nb);
  let i = 0, j = 0, n = 0;
  while (i < na || j < nb) {
    let v: number;
    if (j >= nb || (i < na && a[i] < b[j])) v = a[i++];
    else if (i >= na || b[j] < a[i]) v = b[j++];
    else {
      v = a[i++];
      j++;
    }
    merged[n++] = v;
  }
  a.set(merged.subarray(0, n));
  return n;
}

/** What RESULT says differs, for the report. */
function mismatchOf(result: Result, ours: MemoryDigest): MemoryMismatch {
  const ranges = result.mismatched ?? [];
  return {
    rangeBytes: ours.rangeBytes,
    ranges,
    differingRanges: result.differingRanges ?? ranges.length,
    pages: result.mismatchedPages ?? [],
    differingPages: result.differingPages ?? 0,
  };
}
