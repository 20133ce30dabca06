/**
 * The stream tunnel's receiving side, as a mode of the receive core: it
 * rebuilds the hypervisor's stream byte for byte from the RECORDS frames
 * (in order) and the page bodies the channels decode (each channel's in
 * its order, `pipeline/partition.ts` saying which channel has which pfn),
 * and writes it to the destination (QEMU's `-incoming` stdin, `xl
 * migrate-receive`'s stdin). What the destination writes back (xl's
 * answers) goes to the source as BACK frames.
 *
 * With `holdLast` (QEMU), the last 4 KiB of output so far are held back
 * until a verified STREAM_END: a stream cut short or corrupted never reaches
 * the destination with its end, so the destination fails instead of running
 * the guest, and everything before the end (device state included) is
 * loaded while the source still sends. The stream's XXH3-128 is hashed
 * inline, piece by piece, as the output goes (libxxhash).
 *
 * @module
 */

import { codecById } from "../codecs/registry.ts";
import { hex } from "../digest.ts";
import { MigrationError, WireError } from "../errors.ts";
import { channelOf } from "../pipeline/partition.ts";
import { BufferShelf } from "../pipeline/_buffer_shelf.ts";
import { PAGE_SIZE } from "../plan.ts";
import type { DecodeReply } from "../pipeline/_messages.ts";
import type {
  ReceiveMode,
  SessionControl,
  SinkChannels,
} from "../session/receive_core.ts";
import { type Frame, FrameType } from "../wire/frame.ts";
import { encodeResult, type Hello } from "../wire/messages.ts";
import { type RecordEntry, RecordKind, RecordsParser } from "./records.ts";
import { emptyStreamStats, type StreamStats } from "./send.ts";
import { decodeStreamEnd, STREAM_DIGEST, streamDigest } from "./stream_end.ts";
import { traceTunnel } from "./_trace.ts";
import { encodeStreamProgress } from "./stream_progress.ts";

/** Output is written to the destination in pieces of about this size. */
const OUT_CHUNK = 1 << 20;
/**
 * With `holdLast`, the stream's last bytes so far stay behind until a
 * verified STREAM_END. QEMU's destination runs the guest only once it read
 * its stream to the end, so holding the end is enough, and holding little
 * lets it load everything before it (device state included) while the
 * source still sends.
 */
const HOLD_BYTES = 4096;

/**
 * Spare output pieces kept for reuse: a fresh 1 MiB piece per MiB of
 * stream costs its zero-fill and page faults (a tenth of the receiving
 * main thread's time), and a piece is free again once every write of it
 * resolved.
 */
const SPARE_PIECES = 4;

/** Options of {@link streamMode}. */
export interface StreamModeOptions {
  /** The format HELLO must announce (`"qemu"`, `"xen"`). */
  readonly format: string;
  /**
   * Where the rebuilt stream goes. Each chunk is lent until its write
   * resolved, then its buffer is reused: a sink that keeps chunks beyond
   * its write (a test collecting them) must copy them.
   */
  readonly out: WritableStream<Uint8Array>;
  /** What the destination writes back, sent to the source as BACK frames. */
  readonly back?: ReadableStream<Uint8Array>;
  /** Hold the output's last 4 KiB until a verified end (default true). */
  readonly holdLast?: boolean;
  /** The destination's exit code once it ended (`xl migrate-receive`), sent with BACK_END. */
  readonly exited?: Promise<number>;
}

type Pages = Extract<DecodeReply, { type: "pages" }>;

/**
 * A receive mode that rebuilds a hypervisor stream.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryDuplex, qemuFormat, sendStream } from "@hakobu/hakobu";
 * import { receiveSession } from "../session/receive_core.ts";
 * import { streamMode } from "./receive_mode.ts";
 *
 * const gz = await Deno.open(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const [conn, destination] = memoryDuplex();
 * const sending = sendStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   conn,
 *   { format: qemuFormat, channels: 1 },
 * );
 * const outcome = await receiveSession(
 *   destination,
 *   streamMode({ format: "qemu", out: new WritableStream() }),
 * );
 * await sending;
 * assert.equal(outcome.aborted, false);
 * assert.equal(
 *   !outcome.aborted && !outcome.joined && outcome.result.verified,
 *   true,
 * );
 * ```
 */
export function streamMode(
  options: StreamModeOptions,
): ReceiveMode<StreamStats> {
  const stats = emptyStreamStats();
  const started = performance.now();
  // The stream's XXH3-128, hashed inline (created in open(): a missing
  // libxxhash refuses the session with the loader's message).
  let hash: ReturnType<typeof streamDigest> | null = null;
  const out = options.out.getWriter();
  const holdLast = options.holdLast ?? true;
  const zeroPage = new Uint8Array(PAGE_SIZE);
  let channels = 1;
  let parser: RecordsParser | null = null;
  // Entries waiting to be emitted: `entries[head..]` (an index, not shift():
  // a payload can hold hundreds of thousands of records).
  let entries: RecordEntry[] = [];
  let head = 0;
  let headDone = false;
  let nextPage = 0; // index into the first PAGES entry's pfns
  const queues: { batch: Pages; i: number }[][] = [];
  const codecPages: number[] = [];
  // Output accumulates in `acc[accStart..accLen]`; a flush hands that range
  // on and the next bytes go after it, in the same piece, until it is full.
  // A piece is lent to `out` only until its writes resolved (a WritableStream
  // resolves a write once its sink took the chunk), then reused: `spare`.
  const spare = new BufferShelf(SPARE_PIECES);
  let acc = new Uint8Array(OUT_CHUNK);
  let accStart = 0;
  let accLen = 0;
  let failure: Error | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let backDone: Promise<void> = Promise.resolve();
  let backReader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  /** The decode Workers, to hand used page buffers back to. */
  let pool: SessionControl["pool"] | null = null;
  let settled = false;
  // PROGRESS, when HELLO asked: the stream bytes written to the destination.
  let control: SessionControl | null = null;
  let progressStep = 0;
  let written = 0;
  let reported = 0;
  const wrote = (n: number): void => {
    written += n;
    if (progressStep === 0 || written - reported < progressStep) return;
    reported = written;
    // Not awaited: the output never waits for the source's side.
    control?.reply(FrameType.PROGRESS, encodeStreamProgress(written))
      .catch(() => {});
  };

  const emit = (bytes: Uint8Array): void => {
    stats.streamBytes += bytes.length;
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, acc.length - accLen);
      // (no view to make when it all fits: the common case, a page)
      acc.set(n === bytes.length ? bytes : bytes.subarray(at, at + n), accLen);
      accLen += n;
      at += n;
      if (accLen === acc.length) {
        flushAcc();
        // what flushAcc held back starts the next piece; the full one is
        // spare once its last write (every write before it, too) resolved
        const next = new Uint8Array(
          spare.take(OUT_CHUNK) ?? new ArrayBuffer(OUT_CHUNK),
        );
        next.set(acc.subarray(accStart, accLen));
        const full = acc.buffer;
        writes.then(() => spare.keep(full), () => {});
        acc = next;
        accLen -= accStart;
        accStart = 0;
      }
    }
  };
  /**
   * Hands the accumulated bytes on (hashed, then written); with `holdLast`
   * the last {@link HOLD_BYTES} of the stream so far stay behind.
   */
  let writes: Promise<void> = Promise.resolve();
  const flushAcc = (): void => {
    const end = holdLast ? Math.max(accStart, accLen - HOLD_BYTES) : accLen;
    if (end === accStart) return;
    const piece = acc.subarray(accStart, end);
    // one hash update per piece, not per record
    hash!.update(piece);
    accStart = end;
    writes = writes.then(() => out.write(piece)).then(() =>
      wrote(piece.length)
    );
  };

  /** Emits what can be emitted now; returns when blocked on a missing page. */
  const step = (): void => {
    while (head < entries.length) {
      const e = entries[head];
      if (e.kind === RecordKind.OPAQUE) {
        emit(e.bytes);
        stats.opaqueBytes += e.bytes.length;
      } else if (e.kind === RecordKind.ZERO) {
        emit(e.bytes);
        stats.opaqueBytes += e.bytes.length;
        stats.zeroPages += e.pages;
      } else {
        if (!headDone) {
          stats.pageRecords++;
          emit(e.head);
          stats.opaqueBytes += e.head.length;
          headDone = true;
        }
        while (nextPage < e.pfns.length) {
          const pfn = e.pfns[nextPage];
          const q = queues[channelOf(pfn, channels)];
          const item = q[0];
          if (!item) return; // the channel has not delivered it yet
          const b = item.batch;
          if (b.pfns[item.i] !== pfn) {
            throw new WireError(
              `Channel ${channelOf(pfn, channels)} delivered page ${
                b.pfns[item.i]
              } where the stream expects page ${pfn}`,
            );
          }
          const s = b.slot[item.i];
          emit(
            s < 0
              ? zeroPage
              : b.pages.subarray(s * PAGE_SIZE, (s + 1) * PAGE_SIZE),
          );
          stats.pages++;
          stats.rawPageBytes += PAGE_SIZE;
          if (++item.i === b.count) {
            q.shift();
            // every page of it is in the output: its buffer goes back
            pool?.returnPages(channelOf(pfn, channels), b.pages);
          }
          nextPage++;
        }
        headDone = false;
        nextPage = 0;
      }
      head++;
    }
    entries = [];
    head = 0;
  };
  /** Runs {@link step} (again, if asked meanwhile) and waits for its writes. */
  const kick = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          step();
        } catch (e) {
          failure ??= e instanceof Error ? e : new Error(String(e));
        }
        // All records rebuilt so far go on (the held end stays).
        if (head === entries.length || accLen - accStart >= OUT_CHUNK / 2) {
          flushAcc();
        }
        await writes;
      } while (again && !failure);
      running = null;
    })();
    return running;
  };

  return {
    what: `${options.format} stream`,
    stream: options.format,
    frames: [FrameType.RECORDS, FrameType.STREAM_END],
    open(hello: Hello): Promise<SinkChannels> {
      traceTunnel("receive HELLO read");
      if (!hello.verify?.includes(STREAM_DIGEST)) {
        throw new MigrationError(
          `HELLO offers no "${STREAM_DIGEST}" stream digest: the source is an older hakobu whose stream tunnel ` +
            `checks with SHA-256; run the same hakobu version on both ends`,
        );
      }
      hash = streamDigest();
      channels = hello.channels;
      stats.channels = channels;
      progressStep = hello.progressBytes ?? 0;
      parser = new RecordsParser({ pageCount: hello.memoryBytes / PAGE_SIZE });
      for (let c = 0; c < channels; c++) queues.push([]);
      return Promise.resolve({
        onPages(channel, m) {
          queues[channel].push({ batch: m, i: 0 });
          for (const [id, n] of m.claims) {
            codecPages[id] = (codecPages[id] ?? 0) + n;
          }
          void kick();
        },
      });
    },
    verify: () => STREAM_DIGEST,
    started(s: SessionControl): void {
      traceTunnel("receive WELCOME sent");
      pool = s.pool;
      control = s;
      // A first PROGRESS (0) tells the source its lead is counted from now.
      if (progressStep > 0) {
        s.reply(FrameType.PROGRESS, encodeStreamProgress(0)).catch(() => {});
      }
      if (!options.back) return;
      const reader = backReader = options.back.getReader();
      backDone = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          stats.backBytes += value.length;
          await s.reply(FrameType.BACK, value);
        }
        const exitCode = options.exited ? await options.exited : 0;
        await s.reply(
          FrameType.BACK_END,
          new TextEncoder().encode(
            JSON.stringify({ bytes: stats.backBytes, exitCode }),
          ),
        );
      })();
      backDone.catch(() => {});
    },
    async frame(frame: Frame, s: SessionControl) {
      if (failure) throw failure;
      if (frame.type === FrameType.RECORDS) {
        if (frame.round >= stats.rounds) {
          traceTunnel(`receive round ${frame.round} starts`);
        }
        stats.rounds = Math.max(stats.rounds, frame.round + 1);
        const parsed = parser!.parse(frame.payload);
        if (head === entries.length) {
          entries = parsed;
          head = 0;
        } else {
          for (const e of parsed) entries.push(e);
        }
        await kick();
        if (failure) throw failure;
        return null;
      }
      // STREAM_END: every page is in; rebuild the rest, then compare.
      traceTunnel("receive STREAM_END read");
      s.closePages();
      const end = decodeStreamEnd(frame.payload);
      await s.pool.sync();
      await kick();
      if (failure) throw failure;
      if (head < entries.length) {
        throw new WireError(
          `STREAM_END at offset ${s.at}: ${
            entries.length - head
          } records still wait for pages that never came`,
          s.at,
        );
      }
      flushAcc();
      // the held end is hashed now and written only once it matched
      const end0 = acc.subarray(accStart, accLen);
      hash!.update(end0);
      accStart = accLen;
      const digest = hash!.digest();
      hash!.close();
      stats.digest = hex(digest);
      stats.peerDigest = hex(end.digest);
      const same = end.streamBytes === stats.streamBytes &&
        end.pages === stats.pages && stats.digest === stats.peerDigest;
      if (!same) {
        throw new MigrationError(
          `Rebuilt stream does not match the source: ${stats.streamBytes} bytes and ${stats.pages} pages ` +
            `where the source sent ${end.streamBytes} and ${end.pages}, or a different XXH3-128 (${stats.digest} against ${stats.peerDigest})`,
        );
      }
      traceTunnel("receive verified");
      await writes;
      if (end0.length > 0) await out.write(end0);
      traceTunnel("receive stream's end written");
      await out.close();
      settled = true;
      stats.verified = true;
      await backDone;
      await s.reply(
        FrameType.RESULT,
        encodeResult({
          verified: true,
          digest: stats.digest,
          pagesApplied: stats.pages,
        }),
      );
      stats.wireBytes = s.bytesRead;
      stats.durationMs = performance.now() - started;
      for (let id = 0; id < codecPages.length; id++) {
        if (codecPages[id]) {
          stats.codecPages[codecById(id)?.name ?? `id ${id}`] = codecPages[id];
        }
      }
      return stats;
    },
    waiting: () => "STREAM_END",
    async discard(error: unknown): Promise<void> {
      hash?.close();
      // The held end of a stream that failed is never written.
      if (!settled) {
        settled = true;
        await out.abort(error).catch(() => {});
      }
      await backReader?.cancel().catch(() => {});
    },
  };
}
