/**
 * The stream tunnel's sending side, for any {@link StreamFormat}: reads a
 * hypervisor's migration stream (QEMU's `exec:` stdin, xl's `-s` pipe),
 * parses it, sends everything but the page bodies as RECORDS frames, and
 * deals the page bodies to the channels, whose Workers encode them with the
 * plan's codec chain (`pipeline/encoder_pool.ts`). The receiver
 * (`receive_mode.ts`) rebuilds the identical stream. Bytes the receiving
 * side writes back (xl's answers) come back as BACK frames and go to
 * `back`.
 *
 * Flushing: a channel's batch goes when it holds `batchPages` pages (or its
 * next pfn is not above its last); whenever one goes, the records that
 * refer to it go too, with every other channel's partial batch, so the
 * receiver never waits long for a page or holds many. Between reads, after
 * `maxFlushDelayMs` of stall, everything pending goes. An interactive
 * format (xl) flushes after every read. QEMU's device-state tail goes as it
 * comes (the receiver holds the stream's last bytes until it verified the
 * whole; `tailHoldBytes` can hold it back here too).
 *
 * @module
 */

import { codecById, codecByName, codecNames } from "../codecs/registry.ts";
import { hex } from "../digest.ts";
import { MigrationError } from "../errors.ts";
import {
  type CodecSpec,
  DEFAULT_DEADLINES,
  PAGE_SIZE,
  type Plan,
  type RoundStats,
} from "../plan.ts";
import { RoundMeter } from "../_round_meter.ts";
import { traceTunnel } from "./_trace.ts";
import { EncoderPool } from "../pipeline/encoder_pool.ts";
import type { ChannelPools } from "../pipeline/channel_pools.ts";
import { channelOf } from "../pipeline/partition.ts";
import { defaultChannels } from "../default_channels.ts";
import { SourceLink } from "../session/source_link.ts";
import type { WireConn } from "../wire/duplex.ts";
import { FrameType } from "../wire/frame.ts";
import { decodeResult, PROTOCOL_VERSION } from "../wire/messages.ts";
import type { StreamEvent, StreamFormat, StreamParser } from "./format.ts";
import { MAX_RECORDS_BYTES, RecordsBuilder } from "./records.ts";
import {
  decodeStreamProgress,
  DEFAULT_MAX_LEAD_BYTES,
} from "./stream_progress.ts";
import { encodeStreamEnd, STREAM_DIGEST, streamDigest } from "./stream_end.ts";
import {
  resumableSource,
  type StreamResumeOptions,
  type StreamResumeReport,
} from "./resume_source.ts";

/** What a stream tunnel side measured; both sides return one. */
export interface StreamStats {
  /** Bytes of the hypervisor's stream (read by the sender, rebuilt by the receiver). */
  streamBytes: number;
  /** Bytes the receiving side wrote back (xl's answers). */
  backBytes: number;
  /** Page bodies that went through the channels. */
  pages: number;
  /** Page records (a head and its bodies) in the stream. */
  pageRecords: number;
  /** Zero pages the stream itself carried as such (QEMU's ZERO records). */
  zeroPages: number;
  /** Page bytes before encoding (`pages × 4096`). */
  rawPageBytes: number;
  /** Stream bytes that travelled as they are (records minus page bodies). */
  opaqueBytes: number;
  /** hakobu frame bytes on the wire (sent by the sender, read by the receiver). */
  wireBytes: number;
  /** Rounds (passes over guest memory, as the format counts them). */
  rounds: number;
  /** Channels that carried the pages. */
  channels: number;
  /** Wall-clock milliseconds from the first stream byte to the end. */
  durationMs: number;
  /**
   * Whether this side compared the two digests and found them equal (the
   * receiver: its rebuilt stream against STREAM_END's length and XXH3-128;
   * the sender: the receiver's RESULT against its own). Never copied.
   */
  verified: boolean;
  /** XXH3-128 (hex, canonical) of the stream this side read (sender) or rebuilt (receiver). */
  digest: string;
  /** XXH3-128 (hex) the peer reported. */
  peerDigest: string;
  /** Why the parser fell back to opaque bytes early, or null. */
  fallbackReason: string | null;
  /** The sender, with `resume`: each lost link the tunnel resumed from. */
  resumes?: StreamResumeReport[];
  /** Pages per codec name. */
  codecPages: Record<string, number>;
}

/** A fresh {@link StreamStats}. */
export function emptyStreamStats(): StreamStats {
  return {
    streamBytes: 0,
    backBytes: 0,
    pages: 0,
    pageRecords: 0,
    zeroPages: 0,
    rawPageBytes: 0,
    opaqueBytes: 0,
    wireBytes: 0,
    rounds: 0,
    channels: 0,
    durationMs: 0,
    verified: false,
    digest: "",
    peerDigest: "",
    fallbackReason: null,
    codecPages: {},
  };
}

/** Options of {@link sendStream}. */
export interface StreamSendOptions {
  /** The stream's format. */
  readonly format: StreamFormat;
  /** Chooses the codec chain per round; wins over `codecs`. */
  readonly plan?: Pick<Plan, "codecsFor" | "name">;
  /** The codec chain when there is no plan (default `zero`, then `raw`). */
  readonly codecs?: readonly CodecSpec[];
  /** Link pacing in bytes per second; null or absent for an unpaced link. */
  readonly bandwidth?: number | null;
  /** Channels (default: the core count). */
  readonly channels?: number;
  /** Pages per channel batch (default 256). */
  readonly batchPages?: number;
  /**
   * Device-state tail bytes held back and sent last (default 0: the tail
   * goes as it comes, as the receiver holds the stream's end itself; at
   * most 8 MiB, half a RECORDS frame's limit).
   */
  readonly tailHoldBytes?: number;
  /** Longest pending records wait for more input before they go, ms (default 5). */
  readonly maxFlushDelayMs?: number;
  /**
   * Most stream bytes read from the hypervisor beyond what the receiving
   * tunnel reported written to the destination (its PROGRESS frames);
   * reading waits above it (default {@link DEFAULT_MAX_LEAD_BYTES}; 0: no
   * bound). The source hypervisor then feels the end-to-end rate, and what
   * is still in flight when it stops the guest, which the guest's downtime
   * waits for, stays this small. A receiver that sends no PROGRESS (an older
   * one) is never waited for.
   */
  readonly maxLeadBytes?: number;
  /** Where bytes the receiving side writes back go (xl's stdin); absent: dropped. */
  readonly back?: WritableStream<Uint8Array>;
  /** Description for the receiver's logs. */
  readonly vm?: string;
  /**
   * Where the channel Workers come from and go back to after a verified
   * migration (a resident tunnel's, kept between migrations); absent: they
   * are started for this migration and closed after it.
   */
  readonly pools?: ChannelPools;
  /**
   * Resume the tunnel over a new connection when the link is lost
   * (`resume_source.ts`): the receiving tunnel must make the session
   * resumable (`StreamResumeServer`); the source hypervisor only sees its
   * stream stall.
   */
  readonly resume?: StreamResumeOptions;
}

/** Pending records above this many bytes go without waiting (1 MiB). */
const FLUSH_RECORDS_BYTES = 1 << 20;
/**
 * Pending records never grow past this, held tail or not: a RECORDS frame
 * holds at most MAX_RECORDS_BYTES, and opaque bytes are added in pieces of
 * OPAQUE_PIECE_BYTES, so a frame stays under the limit whatever the stream.
 */
const RECORDS_CAP_BYTES = MAX_RECORDS_BYTES / 2;
const OPAQUE_PIECE_BYTES = 1 << 20;
/** Batch requests a channel may have queued, not yet encoded. */
const QUEUED_BATCHES = 4;

/** One channel's batch being filled on this thread. */
class PendingBatch {
  count = 0;
  pfns: Float64Array;
  pages: Uint8Array;
  constructor(readonly capacity: number) {
    this.pfns = new Float64Array(capacity);
    this.pages = new Uint8Array(capacity * PAGE_SIZE);
  }
  get last(): number {
    return this.count === 0 ? -1 : this.pfns[this.count - 1];
  }
}

/**
 * Tunnels one hypervisor stream: reads `source` to its end, sends it over
 * `conn` and waits for the receiver's verdict, which it checks against its
 * own digest. It asks `source` for one chunk ahead at most, and keeps no
 * view of a chunk once it asked for the chunk after the next (what must
 * outlive it is copied): a source may reuse a chunk's buffer from then on
 * (`largeReads` with a ring of 2 or more).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   qemuFormat,
 *   receiveStream,
 *   sendStream,
 * } from "@hakobu/hakobu";
 *
 * // On a host: `conn` from Deno.connect, the stream `Deno.stdin.readable`.
 * const gz = await Deno.open(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const [conn, destination] = memoryDuplex();
 * const receiving = receiveStream(destination, {
 *   format: "qemu",
 *   out: new WritableStream(),
 * });
 * const stats = await sendStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   conn,
 *   { format: qemuFormat, codecs: [{ name: "zero" }, { name: "zstd" }] },
 * );
 * await receiving;
 * assert.equal(stats.verified, true);
 * assert.equal(stats.zeroPages, 16465); // counted, never encoded
 * assert.ok(stats.wireBytes < stats.streamBytes);
 * ```
 *
 * @throws the format's stream error when the stream is not one or is
 *   truncated (the receiver is sent ABORT); {@link MigrationError} when the
 *   receiver fails, refuses or reports another digest.
 */
export async function sendStream(
  source: ReadableStream<Uint8Array>,
  conn: WireConn,
  options: StreamSendOptions,
): Promise<StreamStats> {
  const stats = emptyStreamStats();
  const started = performance.now();
  const meter = new RoundMeter();
  const format = options.format;
  const parser: StreamParser = format.createParser();
  // The stream's XXH3-128, inline on this thread (libxxhash, ~9 GB/s).
  const hash = streamDigest();
  const input = source.getReader();
  const channels = options.channels ?? defaultChannels();
  stats.channels = channels;
  const batchPages = Math.max(1, Math.min(options.batchPages ?? 256, 7680));
  const tailHold = Math.min(options.tailHoldBytes ?? 0, RECORDS_CAP_BYTES);
  const maxDelay = options.maxFlushDelayMs ?? 5;
  // Resumable: the link survives a cut, so waits must outlast the grace.
  const wire = options.resume ? resumableSource(conn, options.resume) : null;
  const replyMs = DEFAULT_DEADLINES.replyMs + (options.resume?.graceMs ?? 0);
  const link = new SourceLink(wire ?? conn, {
    bandwidth: options.bandwidth,
    replyMs,
  });
  const backWriter = options.back?.getWriter();
  let backClosed = false;
  link.onFrame(FrameType.BACK, async (f) => {
    stats.backBytes += f.payload.length;
    await backWriter?.write(f.payload.slice());
  });
  link.onFrame(FrameType.BACK_END, async () => {
    backClosed = true;
    await backWriter?.close().catch(() => {});
  });
  // How far reading may run ahead of the destination (see maxLeadBytes);
  // bounded once the receiver said it counts (its first PROGRESS, 0).
  const maxLead = options.maxLeadBytes ?? DEFAULT_MAX_LEAD_BYTES;
  if (!(Number.isSafeInteger(maxLead) && maxLead >= 0)) {
    throw new RangeError(
      `maxLeadBytes must be a whole number of bytes ≥ 0 (0: no bound), got ${maxLead}`,
    );
  }
  let written = -1;
  let wakeLead: (() => void) | null = null;
  link.onFrame(FrameType.PROGRESS, (f) => {
    written = Math.max(written, decodeStreamProgress(f.payload));
    wakeLead?.();
    return Promise.resolve();
  });
  let pool: EncoderPool | null = null;
  let pump: Promise<void> | null = null;
  let pumpError: Error | null = null;
  let succeeded = false;

  try {
    // Read up to what HELLO must say (the pfn space) first; keep copies of
    // the events, which are views into the parser's buffers.
    const copyEvent = (e: StreamEvent): StreamEvent =>
      e.kind === "pages"
        ? {
          kind: "pages",
          head: e.head.slice(),
          pfns: Array.from(e.pfns),
          data: e.data.slice(),
        }
        : { ...e, bytes: e.bytes.slice() };
    const pending: StreamEvent[] = [];
    let ended = false;
    while (!parser.ready) {
      const { value, done } = await input.read();
      if (done) {
        ended = true;
        for (const e of parser.finish()) pending.push(copyEvent(e));
        break;
      }
      if (stats.streamBytes === 0) traceTunnel("send first bytes read");
      hash.update(value);
      stats.streamBytes += value.length;
      for (const e of parser.push(value)) pending.push(copyEvent(e));
    }
    traceTunnel("send stream header parsed");

    const welcome = await link.hello({
      protocol: PROTOCOL_VERSION,
      memoryBytes: parser.pageCount * PAGE_SIZE,
      pageSize: PAGE_SIZE,
      codecs: codecNames().map((n) => ({ id: codecByName(n).id, name: n })),
      vm: (options.vm ?? parser.description).slice(0, 4000),
      policy: options.plan?.name ?? `${format.name}-tunnel`,
      channels,
      stream: format.name,
      verify: [STREAM_DIGEST],
      ...(options.resume ? { resumeMs: options.resume.graceMs } : {}),
      ...(maxLead > 0
        ? { progressBytes: Math.max(4096, Math.floor(maxLead / 4)) }
        : {}),
    });
    traceTunnel("send WELCOME read");
    if (welcome.verify !== STREAM_DIGEST) {
      throw new MigrationError(
        `Receiver did not take the "${STREAM_DIGEST}" stream digest: it is an older hakobu whose stream tunnel ` +
          `checks with SHA-256; run the same hakobu version on both ends`,
      );
    }
    const poolOptions = {
      channels,
      pageSize: PAGE_SIZE,
      pageCount: parser.pageCount,
      batchPages,
    };
    const p = pool = options.pools?.encoder(poolOptions) ??
      EncoderPool.start(poolOptions);
    traceTunnel("send channels ready");
    const records = new RecordsBuilder({ compress: true });
    const batches = Array.from(
      { length: channels },
      () => new PendingBatch(batchPages),
    );
    const queued = new Array<number>(channels).fill(0);
    /** Page buffers the channels gave back, for the next batches. */
    const freePages: ArrayBuffer[] = [];
    let wakeQueue = null as (() => void) | null;
    const claims: number[] = [];
    let round = 0;
    let roundStart = performance.now();
    let roundRaw = 0;
    let roundWire = link.wireBytes;
    let lastSendRate = 0;
    let lastWireRate = 0;

    // The pump: writes the channels' frames as they come, gives credits back.
    pump = (async () => {
      try {
        for (;;) {
          const e = await p.next();
          if (e.type === "frame") {
            await link.writeRaw(e.bytes);
            if (e.credited) p.credit(e.channel, e.bytes);
            for (const [id, n] of e.claims) claims[id] = (claims[id] ?? 0) + n;
          } else if (e.type === "done") {
            // ("sent" comes only from a channel with its own connection,
            // which the tunnel does not use.)
            queued[e.channel]--;
            if (e.buffer) freePages.push(e.buffer);
            wakeQueue?.();
          }
        }
      } catch (e) {
        pumpError = e instanceof Error ? e : new Error(String(e));
        wakeQueue?.();
      }
    })();

    const checkPump = () => {
      link.checkPeer();
      if (pumpError && !closing) throw pumpError;
    };
    let closing = false;

    // The chooser's statistics: the last round's rates, as Steering builds
    // them (the hypervisor decides the rounds; nothing is left to count).
    const chooserStats = (): RoundStats =>
      meter.stats({
        round,
        dirtyPages: 0,
        sendRate: lastSendRate,
        wireRate: lastWireRate,
        bytesSent: link.wireBytes,
        rawBytesSent: stats.rawPageBytes,
        memoryBytes: parser.pageCount * PAGE_SIZE,
        pageSize: PAGE_SIZE,
      });
    const selectChain = () => {
      p.chain(
        options.plan
          ? options.plan.codecsFor(chooserStats())
          : options.codecs ?? [{ name: "zero" }],
      );
    };

    /** Waits until channel `c` may take another batch. */
    const room = async (c: number): Promise<void> => {
      while (queued[c] >= QUEUED_BATCHES) {
        checkPump();
        await new Promise<void>((r) => wakeQueue = r);
        wakeQueue = null;
      }
    };
    /**
     * Sends channel `c`'s pending pages as one batch; returns a promise only
     * when the channel has no room yet (the common case costs no await).
     */
    const postBatch = (c: number): Promise<void> | undefined => {
      const b = batches[c];
      if (b.count === 0) return;
      if (queued[c] >= QUEUED_BATCHES) return room(c).then(() => postBatch(c));
      checkPump();
      queued[c]++;
      // The whole buffer goes (the channel reads its first `count` pages)
      // and comes back with the batch's "done": no copy, no fresh buffer.
      p.batch(c, round, b.count, b.pfns.subarray(0, b.count).slice(), b.pages);
      const spare = freePages.pop();
      b.pages = spare
        ? new Uint8Array(spare)
        : new Uint8Array(b.capacity * PAGE_SIZE);
      b.count = 0;
    };
    const flushRecords = async (): Promise<void> => {
      // Every page the records refer to must be on its way first.
      for (let c = 0; c < channels; c++) await postBatch(c);
      if (records.count === 0) return;
      checkPump();
      await link.write(FrameType.RECORDS, round, records.take());
    };
    const newRound = async (): Promise<void> => {
      traceTunnel(`send round ${round + 1} starts`);
      await flushRecords();
      const secs = Math.max(1e-6, (performance.now() - roundStart) / 1000);
      lastSendRate = roundRaw / secs;
      lastWireRate = (link.wireBytes - roundWire) / secs;
      roundStart = performance.now();
      roundRaw = 0;
      roundWire = link.wireBytes;
      round++;
      selectChain();
    };
    let fullBatch = false;
    /**
     * Deals a page record's bodies to the channels, from body `from` on;
     * synchronous unless a channel has no room (then the rest follows the
     * promise it returns): a stream has hundreds of thousands of records.
     */
    const pages = (
      e: Extract<StreamEvent, { kind: "pages" }>,
      from: number,
    ): Promise<void> | undefined => {
      for (let k = from; k < e.pfns.length; k++) {
        const pfn = e.pfns[k];
        const c = channelOf(pfn, channels);
        const b = batches[c];
        if (b.count > 0 && pfn <= b.last) {
          const wait = postBatch(c);
          if (wait) return wait.then(() => pages(e, k));
        }
        b.pfns[b.count] = pfn;
        // (a record of one page, QEMU's every one: no view to make)
        b.pages.set(
          e.pfns.length === 1
            ? e.data
            : e.data.subarray(k * PAGE_SIZE, (k + 1) * PAGE_SIZE),
          b.count * PAGE_SIZE,
        );
        b.count++;
        if (b.count === b.capacity) {
          fullBatch = true;
          const wait = postBatch(c);
          if (wait) return wait.then(() => pages(e, k + 1));
        }
      }
      stats.pages += e.pfns.length;
      stats.rawPageBytes += e.pfns.length * PAGE_SIZE;
      roundRaw += e.pfns.length * PAGE_SIZE;
    };
    const record = (
      e: Extract<StreamEvent, { kind: "pages" }>,
    ): Promise<void> | undefined => {
      records.pages(e.head, e.pfns);
      stats.pageRecords++;
      stats.opaqueBytes += e.head.length;
      return pages(e, 0);
    };
    /** Adds opaque bytes in pieces, sending what is pending at the cap. */
    const opaque = (bytes: Uint8Array): Promise<void> | undefined => {
      for (let at = 0; at < bytes.length; at += OPAQUE_PIECE_BYTES) {
        records.opaque(bytes.subarray(at, at + OPAQUE_PIECE_BYTES));
        if (records.byteLength >= RECORDS_CAP_BYTES) {
          const rest = bytes.subarray(at + OPAQUE_PIECE_BYTES);
          return flushRecords().then(() => opaque(rest));
        }
      }
    };
    /** One event; a promise only when it must wait. */
    const handle = (e: StreamEvent): Promise<void> | undefined => {
      if (e.kind === "opaque") {
        stats.opaqueBytes += e.bytes.length;
        return opaque(e.bytes);
      }
      if (e.kind === "zero") {
        stats.opaqueBytes += e.bytes.length;
        stats.zeroPages += e.pages;
        records.zero(e.bytes, e.pages);
        return;
      }
      if (e.pfns.length > 0 && parser.newRound(e.pfns)) {
        return newRound().then(() => record(e));
      }
      return record(e);
    };
    /** Sends what is pending when the rules say so (see the module doc). */
    const maybeFlush = async (stalled: boolean): Promise<void> => {
      if (parser.tail && tailHold > 0) {
        if (records.byteLength > tailHold) await flushRecords();
        return;
      }
      if (
        format.interactive || stalled || fullBatch ||
        records.byteLength >= FLUSH_RECORDS_BYTES
      ) {
        fullBatch = false;
        await flushRecords();
      }
    };

    selectChain();
    for (const e of pending) await handle(e);
    await maybeFlush(true);
    // The next read runs while this chunk is handled; if it fails while no
    // one awaits it, that is no new error.
    const readAhead = () => {
      const r = input.read();
      r.catch(() => {});
      return r;
    };
    /**
     * Waits, with everything pending sent, until the receiver wrote all but
     * `maxLead` of what was read; the receiver's failure or silence for the
     * reply deadline ends the wait.
     */
    const holdLead = async (): Promise<void> => {
      await flushRecords();
      let heard = performance.now();
      let last = written;
      while (stats.streamBytes - written > maxLead) {
        checkPump();
        if (written !== last) {
          last = written;
          heard = performance.now();
        } else if (performance.now() - heard > replyMs) {
          throw new MigrationError(
            `The receiving tunnel wrote nothing to the destination for ${replyMs} ms ` +
              `(${
                stats.streamBytes - written
              } stream bytes read beyond what it reported written)`,
          );
        }
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((r) => {
          wakeLead = r;
          timer = setTimeout(r, 50);
        });
        clearTimeout(timer);
        wakeLead = null;
      }
    };
    let next = ended ? null : readAhead();
    let tailTraced = false;
    while (next) {
      checkPump();
      let timer: ReturnType<typeof setTimeout> | undefined;
      let chunk = await Promise.race([
        next,
        new Promise<null>((r) => timer = setTimeout(r, maxDelay, null)),
      ]);
      clearTimeout(timer);
      if (chunk === null) {
        await maybeFlush(true);
        chunk = await next;
      }
      if (chunk.done) break;
      if (parser.tail && !tailTraced) {
        tailTraced = true;
        traceTunnel("send device state begins");
      }
      next = readAhead();
      const value = chunk.value;
      hash.update(value);
      stats.streamBytes += value.length;
      for (const e of parser.push(value)) {
        const wait = handle(e);
        if (wait) await wait;
      }
      await maybeFlush(false);
      if (
        written >= 0 && maxLead > 0 && stats.streamBytes - written > maxLead
      ) {
        await holdLead();
      }
    }
    if (!ended) {
      for (const e of parser.finish()) await handle(e);
    }
    traceTunnel("send input ended");
    // Every byte was given to the hash.
    const digest = hash.digest();
    stats.digest = hex(digest);
    // Everything goes: batches, records (the held tail last), then the end.
    await flushRecords();
    while (queued.some((q) => q > 0)) {
      checkPump();
      await new Promise<void>((r) => wakeQueue = r);
      wakeQueue = null;
    }
    checkPump();
    await link.write(
      FrameType.STREAM_END,
      round,
      encodeStreamEnd({
        streamBytes: stats.streamBytes,
        pages: stats.pages,
        digest,
      }),
    );
    traceTunnel("send STREAM_END written");
    const result = decodeResult(await link.expect(FrameType.RESULT));
    traceTunnel("send RESULT read");
    closing = true;
    // Compare, never copy: a receiver that says "verified" about other bytes
    // is a failed migration.
    stats.peerDigest = result.digest;
    stats.verified = result.verified && result.digest === stats.digest;
    if (!stats.verified) {
      throw new MigrationError(
        `Receiver's rebuilt stream differs from the source's: its XXH3-128 is "${result.digest}"` +
          ` (it says verified: ${result.verified}), the source stream's is ${stats.digest}`,
      );
    }
    if (backWriter && !backClosed) await backWriter.close().catch(() => {});
    stats.wireBytes = link.wireBytes;
    stats.rounds = round + 1;
    stats.fallbackReason = parser.fallbackReason;
    for (let id = 0; id < claims.length; id++) {
      if (claims[id]) stats.codecPages[codecById(id)!.name] = claims[id];
    }
    stats.durationMs = performance.now() - started;
    await link.close();
    succeeded = true;
    if (wire) stats.resumes = [...wire.resumes];
    return stats;
  } catch (e) {
    const peer = link.peerError;
    if (!peer) {
      await link.abort(
        (e instanceof Error ? e.message : String(e)).slice(0, 4000),
      );
    }
    await input.cancel().catch(() => {});
    await link.close();
    await backWriter?.abort(e).catch(() => {});
    if (peer && !(e instanceof MigrationError)) throw peer;
    throw e;
  } finally {
    wire?.close();
    hash.close();
    if (pool && succeeded && options.pools) {
      // The channels outlive this migration: stop the pump, hand them back.
      pool.interrupt();
      await pump?.catch(() => {});
      options.pools.giveBack(pool);
    } else {
      pool?.close();
      await pump?.catch(() => {});
    }
  }
}
