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
import { codecById, codecByName, codecNames } from "./codecs/registry.ts";
import { hex } from "./digest.ts";
import type { SourceDriver } from "./driver.ts";
import { MigrationError, WireError } from "./errors.ts";
import type { Decision, Plan, RoundStats } from "./plan.ts";
import type { MigrationReport, RoundReport } from "./report.ts";
import { Pacer } from "./transport/pacer.ts";
import {
  type EncodedBatch,
  GpuBatchEncoder,
  type GpuChain,
} from "./gpu/batch_encoder.ts";
import { type GpuContext, type GpuEntry, openGpu } from "./gpu/device.ts";
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
  /** Called after each round. */
  readonly onRound?: (round: RoundReport) => void;
  /** Called often during a round (at most every 50 ms). */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /** Aborts the migration: the receiver is told, the source keeps running. */
  readonly signal?: AbortSignal;
  /** Frames queued between the encode and send stages (default 4). */
  readonly queueFrames?: number;
  /** The WebGPU entry point (default `navigator.gpu`); tests pass `null` for "no adapter". */
  readonly gpu?: GpuEntry | null;
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
  /** The GPU, when the plan wants one and an adapter was found. */
  #gpu: GpuContext | null = null;
  /** Why the GPU is not used (empty when it is). */
  #gpuNote = "";
  /** One GPU batch encoder per GPU-capable chain used so far. */
  readonly #gpuEncoders = new Map<string, GpuBatchEncoder>();
  #gpuPages = 0;

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
      await this.#openGpu();
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
        verification: "memory-digest",
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
        gpu: {
          used: this.#gpuPages > 0,
          adapter: this.#gpu?.adapterInfo.description ?? null,
          pagesEncoded: this.#gpuPages,
          note: this.#gpuPages > 0
            ? `encoded ${this.#gpuPages} pages on ${this.#gpu?.adapterInfo.description}` +
              (this.#gpu?.adapterInfo.isFallbackAdapter
                ? " (a software adapter: correct, not fast)"
                : "")
            : this.#gpuNote ||
              "not used: no round's codec chain has a GPU twin",
        },
        rounds: this.#rounds,
      };
      for (const g of this.#gpuEncoders.values()) g.destroy();
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

  /** Opens the GPU as the plan's `gpu` settings ask; notes why not otherwise. */
  async #openGpu(): Promise<void> {
    const { prefer, require } = this.#plan.gpu;
    if (prefer === "cpu") {
      this.#gpuNote = "not used: the plan prefers the CPU";
      return;
    }
    this.#gpu = await openGpu({
      prefer,
      require,
      ...(this.#opts.gpu === undefined ? {} : { gpu: this.#opts.gpu }),
      onFallback: (reason) => (this.#gpuNote = `not used: ${reason}`),
    });
  }

  /** A GPU batch encoder for the active chain, or null when the round runs on the CPU. */
  #gpuEncoderFor(active: readonly string[]): GpuBatchEncoder | null {
    if (!this.#gpu) return null;
    const chain = gpuChainOf(active);
    if (!chain) return null;
    const key = chain.join(",");
    let enc = this.#gpuEncoders.get(key);
    if (!enc) {
      enc = new GpuBatchEncoder(this.#gpu.device, {
        chain,
        batch: this.#plan.gpu.batch,
        pageSize: this.#source.pageSize,
        pageCount: this.#source.pageCount,
        deltaOptions: this.#chain.optionsOf("delta") ?? {},
      });
      this.#gpuEncoders.set(key, enc);
    }
    return enc;
  }

  /**
   * Encodes the round's pages on the GPU in batches of `gpu.batch` pages, two
   * batches in flight (upload and compute of one while the other's results
   * are framed and queued for the link). Each batch is first copied out of
   * guest memory, so the bytes encoded, sent and remembered by stateful
   * codecs are the same bytes.
   */
  async #encodeOnGpu(
    enc: GpuBatchEncoder,
    count: number,
    sink: FrameSink,
  ): Promise<void> {
    const ps = this.#source.pageSize;
    const gb = this.#plan.gpu.batch;
    const others = [...this.#gpuEncoders.values()].filter((g) => g !== enc);
    const snapshots: Uint8Array[] = [];
    const pending: Promise<
      { res: EncodedBatch; pfns: Uint32Array; snap: Uint8Array }
    >[] = [];
    let builder = sink.newBuilder();
    const consume = async (
      item: { res: EncodedBatch; pfns: Uint32Array; snap: Uint8Array },
    ): Promise<void> => {
      const { res, pfns, snap } = item;
      for (let i = 0; i < res.count; i++) {
        if (builder.full) {
          await sink.flush(builder);
          builder = sink.newBuilder();
        }
        const pfn = pfns[i];
        const id = res.codecIds[i];
        builder.add(pfn, id, res.bytes(i));
        const page = snap.subarray(i * ps, (i + 1) * ps);
        this.#chain.notifySent(pfn, page, id);
        for (const g of others) g.recordSent(pfn, page);
        sink.mixById.set(id, (sink.mixById.get(id) ?? 0) + 1);
      }
      this.#gpuPages += res.count;
      snapshots.push(snap);
    };
    for (let start = 0; start < count; start += gb) {
      this.#checkAbort();
      const n = Math.min(gb, count - start);
      const snap = snapshots.pop() ?? new Uint8Array(gb * ps);
      const pfns = this.#dirty.slice(start, start + n);
      const pages: Uint8Array[] = new Array(n);
      for (let i = 0; i < n; i++) {
        snap.set(this.#source.page(pfns[i]), i * ps);
        pages[i] = snap.subarray(i * ps, (i + 1) * ps);
      }
      pending.push(
        enc.encode(pfns, pages).then((res) => ({ res, pfns, snap })),
      );
      if (pending.length >= 2) await consume(await pending.shift()!);
    }
    while (pending.length > 0) await consume(await pending.shift()!);
    if (builder.count > 0) await sink.flush(builder);
    else this.#pool.push(builder);
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
      const newBuilder = (): PagesFrameBuilder => {
        const b = this.#pool.pop() ??
          new PagesFrameBuilder({
            maxPages: batch,
            maxEntryBytes: maxEntryBytes(ps),
          });
        b.reset();
        return b;
      };
      const flush = async (b: PagesFrameBuilder): Promise<void> => {
        await queue.push({
          builder: b,
          bytes: b.frame(round),
          pages: b.count,
          rawBytes: b.count * ps,
        });
      };
      const gpu = this.#gpuEncoderFor(this.#chain.active);
      if (gpu) {
        await this.#encodeOnGpu(gpu, count, { newBuilder, flush, mixById });
      } else {
        const others = [...this.#gpuEncoders.values()];
        for (let start = 0; start < count; start += batch) {
          this.#checkAbort();
          const end = Math.min(count, start + batch);
          const builder = newBuilder();
          for (let i = start; i < end; i++) {
            const pfn = this.#dirty[i];
            const r = this.#chain.encode(pfn, source.page(pfn));
            builder.add(
              pfn,
              r.codecId,
              this.#chain.output.subarray(0, r.length),
            );
            mixById.set(r.codecId, (mixById.get(r.codecId) ?? 0) + 1);
            // GPU encoders keep their own delta cache: keep it in step.
            for (const g of others) g.recordSent(pfn, this.#chain.input);
          }
          await flush(builder);
        }
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

/** The pieces of a round's producer that the GPU path shares with the CPU path. */
interface FrameSink {
  newBuilder(): PagesFrameBuilder;
  flush(b: PagesFrameBuilder): Promise<void>;
  mixById: Map<number, number>;
}

/** The chain (without its final raw) as a GPU chain, or null when the GPU has no twin for it. */
function gpuChainOf(active: readonly string[]): GpuChain | null {
  const names = active.at(-1) === "raw" ? active.slice(0, -1) : [...active];
  const key = names.join(",");
  const supported: Record<string, GpuChain> = {
    "zero": ["zero"],
    "rle": ["rle"],
    "delta": ["delta"],
    "zero,rle": ["zero", "rle"],
    "zero,delta": ["zero", "delta"],
  };
  return supported[key] ?? null;
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
  const codec = codecById(id);
  if (!codec) throw new WireError(`Unknown codec id ${id}`);
  return codec.name;
}
