/**
 * The pre-copy engine, source side: the loop that sends every page, then the
 * pages dirtied meanwhile, round after round, until the plan says switch over
 * (pause, send the rest) or abort.
 *
 * A round is a pipeline of two concurrent stages joined by a bounded queue:
 * fetch + encode (pages → PAGES frames in pooled buffers) and send (pace →
 * socket). While a frame waits for the link, the next ones are encoded.
 *
 * @module
 */

import process from "node:process";
import { BoundedQueue } from "./_bounded_queue.ts";
import { EncoderChain } from "./codecs/chain.ts";
import { codecByName, codecNames } from "./codecs/registry.ts";
import { hex } from "./digest.ts";
import type { SourceDriver } from "./driver.ts";
import { MigrationError, WireError } from "./errors.ts";
import type { Decision, Plan, RoundStats } from "./plan.ts";
import type { MigrationReport, RoundReport } from "./report.ts";
import { Pacer } from "./transport/pacer.ts";
import {
  decodeError,
  decodeReady,
  decodeResult,
  decodeWelcome,
  encodeAbort,
  encodeCodec,
  encodeEnd,
  encodeFinal,
  encodeFrame,
  encodeHello,
  encodeRoundEnd,
  type Frame,
  FrameReader,
  FrameType,
  FrameWriter,
  PagesFrameBuilder,
} from "./wire/mod.ts";

/** A bidirectional byte stream, e.g. a `Deno.Conn`. */
export interface Duplex {
  readonly readable: ReadableStream<Uint8Array>;
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
  /** Called after each round. */
  readonly onRound?: (round: RoundReport) => void;
  /** Called often during a round (at most every 50 ms). */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Aborts the migration: the receiver is told, the source keeps running. */
  readonly signal?: AbortSignal;
  /** Frames queued between the encode and send stages (default 4). */
  readonly queueFrames?: number;
}

/** One encoded PAGES frame waiting for the link, in a pooled buffer. */
interface QueuedFrame {
  builder: PagesFrameBuilder;
  bytes: Uint8Array;
  pages: number;
  rawBytes: number;
}

/**
 * Migrates a VM's memory to a receiver with a plan, live.
 *
 * Resolves with the report once the receiver has verified the memory
 * digest; rejects with {@link MigrationError} when the receiver refuses,
 * the link fails or the plan aborts (the report is on `error.cause`-free
 * terms in the message, and the source VM is left running).
 *
 * @example
 * ```ts ignore
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 7700 });
 * const report = await migrate({ plan, source: vm, conn });
 * console.log(report.verified, report.downtimeMs);
 * ```
 */
export async function migrate(
  options: MigrateOptions,
): Promise<MigrationReport> {
  const session = new SourceSession(options);
  return await session.run();
}

class SourceSession {
  readonly #plan: Plan;
  readonly #source: SourceDriver;
  readonly #opts: MigrateOptions;
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  readonly #pacer: Pacer | null;
  readonly #chain: EncoderChain;
  readonly #pool: PagesFrameBuilder[] = [];
  readonly #dirty: Uint32Array;
  readonly #rounds: RoundReport[] = [];
  #t0 = 0;
  #wireBytes = 0;
  #rawBytes = 0;
  #pagesSent = 0;
  #paused = false;
  #peerError: Error | null = null;
  #inbox: Promise<Frame | null> | null = null;

  constructor(opts: MigrateOptions) {
    this.#opts = opts;
    this.#plan = opts.plan;
    this.#source = opts.source;
    this.#writer = new FrameWriter(opts.conn.writable);
    this.#reader = new FrameReader(opts.conn.readable);
    this.#pacer = opts.plan.bandwidth === null
      ? null
      : new Pacer({ bytesPerSecond: opts.plan.bandwidth });
    this.#chain = new EncoderChain({
      pageSize: opts.source.pageSize,
      pageCount: opts.source.pageCount,
    });
    this.#dirty = new Uint32Array(opts.source.pageCount);
  }

  async run(): Promise<MigrationReport> {
    const cpu0 = process.cpuUsage();
    const startedAt = new Date().toISOString();
    this.#t0 = performance.now();
    const source = this.#source;
    const plan = this.#plan;
    try {
      await this.#handshake();
      this.#watchPeer();
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
        this.#checkAbort();
        const before = this.#stats(round, count, prev);
        const roundStart = performance.now();
        const sent = await this.#sendRound(round, count, before, false);
        // Sync at the end of the round: what the guest dirtied while we sent.
        count = source.syncDirty(this.#dirty);
        const now = performance.now();
        const syncSpan = (now - lastSync) / 1000;
        lastSync = now;
        const durationMs = now - roundStart;
        const after: RoundStats = {
          ...this.#stats(round, count, null),
          dirtyRate: syncSpan > 0 ? (count * source.pageSize) / syncSpan : 0,
          sendRate: durationMs > 0 ? sent.rawBytes / (durationMs / 1000) : 0,
          wireRate: durationMs > 0 ? sent.wireBytes / (durationMs / 1000) : 0,
        };
        if (round + 1 >= plan.maxRounds) {
          decision = "switchover";
          reason = `reached the plan's bound of ${plan.maxRounds} live rounds`;
        } else {
          decision = plan.decide(after);
          reason = plan.reason?.(after) ?? decision;
        }
        prev = this.#roundReport(
          round,
          false,
          sent,
          durationMs,
          after,
          count,
          decision,
          reason,
        );
        if (decision !== "continue") break;
        round++;
      }

      if (decision === "abort") {
        await this.#sendAbort(
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
      const finalRound = round + 1;
      // Still pending: the pages dirtied during the last live round (unsent),
      // plus whatever the guest wrote between that sync and the pause.
      const late = new Uint32Array(source.pageCount);
      const lateCount = source.syncDirty(late);
      count = mergeSortedUnique(this.#dirty, count, late, lateCount);
      const finalStats = this.#stats(finalRound, count, prev);
      const sent = await this.#sendRound(finalRound, count, finalStats, true);
      await this.#writeFrame(
        FrameType.FINAL,
        finalRound,
        encodeFinal({ round: finalRound, pagesTotal: this.#pagesSent }),
      );
      const ready = decodeReady(await this.#expect(FrameType.READY));
      const readyAt = performance.now();
      const downtimeMs = readyAt - pauseAt;
      this.#roundReport(
        finalRound,
        true,
        sent,
        readyAt - pauseAt,
        { ...finalStats, dirtyRate: 0, sendRate: 0, wireRate: 0 },
        0,
        "final",
        `switchover: ${reason}; receiver applied ${ready.pagesApplied} pages`,
      );

      // Verification: both sides hash their memory; the receiver compares.
      const digest = await source.digest();
      await this.#writeFrame(FrameType.END, finalRound, encodeEnd(digest));
      const result = decodeResult(await this.#expect(FrameType.RESULT));
      const endAt = performance.now();
      await this.#writer.close().catch(() => {});
      const verified = result.verified && result.digest === hex(digest);
      const cpu = process.cpuUsage(cpu0);
      const cpuSeconds = (cpu.user + cpu.system) / 1e6;
      const report: MigrationReport = {
        verified,
        aborted: false,
        outcome: verified
          ? `migrated and verified (switchover: ${reason})`
          : `memory digests differ: source ${
            hex(digest)
          }, receiver ${result.digest}`,
        policy: plan.name,
        vm: source.description,
        memoryBytes: source.pageCount * source.pageSize,
        pageSize: source.pageSize,
        bandwidth: plan.bandwidth,
        startedAt,
        totalTimeMs: endAt - this.#t0,
        downtimeMs,
        verifyMs: endAt - readyAt,
        wireBytes: this.#wireBytes,
        rawBytes: this.#rawBytes,
        compressionRatio: this.#wireBytes > 0
          ? this.#rawBytes / this.#wireBytes
          : 0,
        pagesSent: this.#pagesSent,
        sourceCpuSeconds: cpuSeconds,
        sourceCpuSecondsPerGiB: this.#rawBytes > 0
          ? cpuSeconds / (this.#rawBytes / 2 ** 30)
          : 0,
        digest: hex(digest),
        rounds: this.#rounds,
      };
      return report;
    } catch (error) {
      // Whatever failed, the source VM keeps running and the receiver discards.
      if (this.#paused) {
        await source.resume().catch(() => {});
        this.#paused = false;
      }
      if (!(error instanceof MigrationError)) {
        await this.#sendAbort(
          error instanceof Error ? error.message : String(error),
        ).catch(() => {});
      }
      try {
        await this.#writer.close();
      } catch { /* the link may already be gone */ }
      if (error instanceof MigrationError) throw error;
      const detail = this.#peerError?.message ??
        (error instanceof Error ? error.message : String(error));
      throw new MigrationError(`Migration failed: ${detail}`, { cause: error });
    }
  }

  /** Sends HELLO and waits for WELCOME. */
  async #handshake(): Promise<void> {
    const source = this.#source;
    const names = codecNames();
    await this.#writeFrame(
      FrameType.HELLO,
      0,
      encodeHello({
        protocol: 1,
        memoryBytes: source.pageCount * source.pageSize,
        pageSize: source.pageSize,
        codecs: names.map((name) => ({ id: codecByName(name).id, name })),
        vm: source.description,
        policy: this.#plan.name,
      }),
    );
    const frame = await this.#reader.next();
    if (frame === null) {
      throw new MigrationError(
        "Receiver closed the connection during the handshake",
      );
    }
    if (frame.type === FrameType.ERROR) {
      throw new MigrationError(
        `Receiver refused the migration: ${decodeError(frame.payload).message}`,
      );
    }
    if (frame.type !== FrameType.WELCOME) {
      throw new MigrationError(
        `Unexpected frame type ${frame.type} from the receiver: expected WELCOME`,
      );
    }
    decodeWelcome(frame.payload);
  }

  /** Reads the receiver's frames in the background; an ERROR there fails the migration. */
  #watchPeer(): void {
    this.#inbox = this.#reader.next().then((frame) => {
      if (frame?.type === FrameType.ERROR) {
        this.#peerError = new MigrationError(
          `Receiver failed: ${decodeError(frame.payload).message}`,
        );
      }
      return frame;
    }, (error) => {
      this.#peerError = new MigrationError(
        `Lost the receiver: ${error instanceof Error ? error.message : error}`,
      );
      return null;
    });
  }

  /** Waits for the next frame from the receiver, which must be of `type`. */
  async #expect(type: FrameType): Promise<Uint8Array> {
    const frame = await this.#inbox;
    this.#watchPeer();
    if (this.#peerError) throw this.#peerError;
    if (frame === null) {
      throw new MigrationError(
        "Receiver closed the connection before answering",
      );
    }
    if (frame.type !== type) {
      throw new MigrationError(
        `Unexpected frame type ${frame.type} from the receiver: expected ${type}`,
      );
    }
    return frame.payload;
  }

  #checkAbort(): void {
    if (this.#peerError) throw this.#peerError;
    if (this.#opts.signal?.aborted) {
      throw new MigrationError(
        `Migration aborted: ${this.#opts.signal.reason ?? "by the user"}`,
      );
    }
  }

  async #sendAbort(reason: string): Promise<void> {
    await this.#writeFrame(FrameType.ABORT, 0, encodeAbort({ reason })).catch(
      () => {},
    );
  }

  async #writeFrame(
    type: FrameType,
    round: number,
    payload: Uint8Array,
  ): Promise<void> {
    const bytes = encodeFrame(type, round, payload);
    await this.#pacer?.take(bytes.length);
    await this.#writer.writeRaw(bytes);
    this.#wireBytes += bytes.length;
  }

  #stats(
    round: number,
    dirtyPages: number,
    prev: RoundReport | null,
  ): RoundStats {
    const ps = this.#source.pageSize;
    return {
      round,
      dirtyPages,
      remainingBytes: dirtyPages * ps,
      dirtyRate: prev?.dirtyRate ?? 0,
      sendRate: prev?.sendRate ?? 0,
      wireRate: prev?.wireRate ?? 0,
      elapsedMs: performance.now() - this.#t0,
      bytesSent: this.#wireBytes,
      rawBytesSent: this.#rawBytes,
      memoryBytes: this.#source.pageCount * ps,
      pageSize: ps,
    };
  }

  #roundReport(
    round: number,
    final: boolean,
    sent: RoundTally,
    durationMs: number,
    after: RoundStats,
    remainingPages: number,
    decision: Decision | "final",
    reason: string,
  ): RoundReport {
    const report: RoundReport = {
      round,
      final,
      dirtyPages: sent.pages,
      pagesSent: sent.pages,
      rawBytes: sent.rawBytes,
      wireBytes: sent.wireBytes,
      codecMix: sent.mix,
      codecs: sent.codecs,
      durationMs,
      dirtyRate: after.dirtyRate,
      sendRate: after.sendRate,
      wireRate: after.wireRate,
      remainingPages,
      decision,
      reason,
    };
    this.#rounds.push(report);
    this.#opts.onRound?.(report);
    return report;
  }

  /** Sends the first `count` pfns of the dirty list as one round, encode and send overlapped. */
  async #sendRound(
    round: number,
    count: number,
    stats: RoundStats,
    final: boolean,
  ): Promise<RoundTally> {
    const plan = this.#plan;
    this.#chain.select(plan.codecsFor(stats));
    for (const { codec, options } of this.#chain.takeNewCodecs()) {
      await this.#writeFrame(
        FrameType.CODEC,
        round,
        encodeCodec({ id: codec.id, name: codec.name, options }),
      );
    }
    const tally: RoundTally = {
      pages: 0,
      rawBytes: 0,
      wireBytes: 0,
      mix: {},
      codecs: this.#chain.active,
    };
    const mixById = new Map<number, number>();
    const queue = new BoundedQueue<QueuedFrame>(this.#opts.queueFrames ?? 4);
    const batch = plan.batchPages;
    const roundStart = performance.now();
    let lastProgress = 0;
    const progress = (done: number): void => {
      const now = performance.now();
      if (!this.#opts.onProgress || (now - lastProgress < 50 && done < count)) {
        return;
      }
      lastProgress = now;
      const secs = (now - roundStart) / 1000;
      this.#opts.onProgress({
        round,
        final,
        pagesDone: done,
        pagesTotal: count,
        wireBytes: this.#wireBytes,
        elapsedMs: now - this.#t0,
        pageSize: this.#source.pageSize,
        sendRate: secs > 0 ? (done * this.#source.pageSize) / secs : 0,
      });
    };

    const sender = (async () => {
      for (;;) {
        const item = await queue.shift();
        if (item === undefined) return;
        await this.#pacer?.take(item.bytes.length);
        await this.#writer.writeRaw(item.bytes);
        this.#wireBytes += item.bytes.length;
        tally.wireBytes += item.bytes.length;
        tally.pages += item.pages;
        tally.rawBytes += item.rawBytes;
        this.#pool.push(item.builder);
        progress(tally.pages);
      }
    })();
    sender.catch((e) => queue.fail(e));

    try {
      const source = this.#source;
      const ps = source.pageSize;
      for (let start = 0; start < count; start += batch) {
        this.#checkAbort();
        const end = Math.min(count, start + batch);
        const builder = this.#pool.pop() ??
          new PagesFrameBuilder({
            maxPages: batch,
            maxEntryBytes: maxEntryBytes(ps),
          });
        builder.reset();
        for (let i = start; i < end; i++) {
          const pfn = this.#dirty[i];
          const r = this.#chain.encode(pfn, source.page(pfn));
          builder.add(pfn, r.codecId, this.#chain.output.subarray(0, r.length));
          mixById.set(r.codecId, (mixById.get(r.codecId) ?? 0) + 1);
        }
        const bytes = builder.frame(round);
        await queue.push({
          builder,
          bytes,
          pages: end - start,
          rawBytes: (end - start) * ps,
        });
      }
      queue.close();
      await sender;
    } catch (error) {
      queue.fail(error);
      await sender.catch(() => {});
      throw error;
    }

    await this.#writeFrame(
      FrameType.ROUND_END,
      round,
      encodeRoundEnd({
        round,
        pages: tally.pages,
        rawBytes: tally.rawBytes,
        wireBytes: tally.wireBytes,
      }),
    );
    for (const [id, n] of mixById) tally.mix[codecName(id)] = n;
    this.#pagesSent += tally.pages;
    this.#rawBytes += tally.rawBytes;
    return tally;
  }
}

interface RoundTally {
  pages: number;
  rawBytes: number;
  wireBytes: number;
  mix: Record<string, number>;
  codecs: string[];
}

/**
 * Merges the ascending pfn list `b[0..nb)` into the ascending list
 * `a[0..na)` in place (dropping duplicates); returns the new length. `a`
 * must have room for the union (it has room for every page).
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

/** Largest encoded page of any registered codec: a frame buffer must hold the worst case. */
function maxEntryBytes(pageSize: number): number {
  return Math.max(
    pageSize,
    ...codecNames().map((n) => codecByName(n).maxEncodedBytes(pageSize)),
  );
}

function codecName(id: number): string {
  for (const name of codecNames()) if (codecByName(name).id === id) return name;
  throw new WireError(`Unknown codec id ${id}`);
}
