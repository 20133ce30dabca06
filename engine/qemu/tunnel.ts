/**
 * The QEMU tunnel's source side: reads QEMU's migration stream (stdin of an
 * `exec:` command, or a socket QEMU connects to), parses it, runs every RAM
 * page body through a codec chain and sends hakobu frames to
 * {@link receiveQemuStream} (`tunnel_receiver.ts`), which rebuilds the
 * stream byte for byte for the destination QEMU.
 *
 * Frames and limits: `docs/qemu-stream.md`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { EncoderChain } from "../codecs/chain.ts";
import { hex } from "../digest.ts";
import { codecById, codecByName, codecNames } from "../codecs/registry.ts";
import { MigrationError } from "../errors.ts";
import type { CodecSpec, Plan, RoundStats } from "../plan.ts";
import { Pacer } from "../transport/pacer.ts";
import type { WireConn } from "../wire/duplex.ts";
import { FrameType } from "../wire/frame.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeError,
  decodeResult,
  decodeWelcome,
  encodeAbort,
  encodeCodec,
  encodeHello,
  PROTOCOL_VERSION,
} from "../wire/messages.ts";
import { PagesFrameBuilder } from "../wire/pages.ts";
import { QemuStreamError } from "./stream/errors.ts";
import {
  QEMU_PAGE_SIZE,
  type QemuEvent,
  QemuStreamParser,
} from "./stream/parser.ts";
import {
  encodeQemuEnd,
  encodeTunnelFrame,
  RecordsBuilder,
  TunnelFrameReader,
  TunnelFrameType,
  tunnelFrameTypeName,
} from "./tunnel_frames.ts";

/** What a tunnel side measured; both sides return one. */
export interface TunnelStats {
  /** Bytes of the QEMU stream (read by the sender, rebuilt by the receiver). */
  streamBytes: number;
  /** PAGE records (4096-byte bodies) that went through the codec chain. */
  pages: number;
  /** ZERO records (one fill byte each). */
  zeroPages: number;
  /** Bytes of PAGE bodies before encoding (`pages * 4096`). */
  rawPageBytes: number;
  /** QEMU stream bytes that travelled opaque (headers, device state, XBZRLE, fallback). */
  opaqueBytes: number;
  /** hakobu frame bytes on the wire (sent by the sender, read by the receiver). */
  wireBytes: number;
  /** Rounds: passes over guest memory, counted as in `docs/qemu-stream.md`. */
  rounds: number;
  /** Wall-clock milliseconds from the first stream byte to the end. */
  durationMs: number;
  /**
   * Whether this side compared the two digests and found them equal: the
   * receiver checks its rebuilt stream against QEMU_END's length and
   * SHA-256; the sender checks the receiver's RESULT digest against the
   * SHA-256 of the stream it read. Never copied from the peer.
   */
  verified: boolean;
  /** SHA-256 (hex) of the stream this side read (sender) or rebuilt (receiver). */
  digest: string;
  /** SHA-256 (hex) the peer reported: QEMU_END's (receiver) or RESULT's (sender). */
  peerDigest: string;
  /** Why the parser fell back to opaque bytes early, or null. */
  fallbackReason: string | null;
  /** PAGE records per codec name. */
  codecPages: Record<string, number>;
}

/** Options of {@link sendQemuStream}. */
export interface TunnelSendOptions {
  /** Chooses the codec chain per round; wins over `codecs`. */
  readonly plan?: Pick<Plan, "codecsFor" | "name">;
  /** The codec chain when there is no plan (default `zero`, then `raw`). */
  readonly codecs?: readonly CodecSpec[];
  /** Link pacing in bytes per second; null or absent for an unpaced link. */
  readonly bandwidth?: number | null;
  /** Pages per PAGES frame (default 256). */
  readonly batchPages?: number;
  /**
   * Opaque tail bytes (device state, EOF, VMDESCRIPTION) held back and sent
   * in the last frame (default 16 MiB); more are sent as they come.
   */
  readonly tailHoldBytes?: number;
  /**
   * Longest a parsed record waits for more input before it is sent, ms
   * (default 5). Records are sent as soon as a PAGES frame is full or 1 MiB
   * of records is pending; in between, input that arrives within this delay
   * joins the same frame, so a busy stream travels in large frames and a
   * trickling one is not held back.
   */
  readonly maxFlushDelayMs?: number;
  /** Description for the receiver's logs. */
  readonly vm?: string;
}

/** Records bytes that send a QEMU_RECORDS frame without waiting (1 MiB). */
const FLUSH_RECORDS_BYTES = 1 << 20;

function emptyStats(): TunnelStats {
  return {
    streamBytes: 0,
    pages: 0,
    zeroPages: 0,
    rawPageBytes: 0,
    opaqueBytes: 0,
    wireBytes: 0,
    rounds: 0,
    durationMs: 0,
    verified: false,
    digest: "",
    peerDigest: "",
    fallbackReason: null,
    codecPages: {},
  };
}

/** @internal A fresh {@link TunnelStats}. */
export { emptyStats as _emptyStats };

/**
 * Tunnels one QEMU migration stream: reads `source` to its end, sends it
 * over `conn` and waits for the receiver's verdict.
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 4444 });
 * const stats = await sendQemuStream(Deno.stdin.readable, conn, {
 *   codecs: [{ name: "zero" }, { name: "lz4" }],
 * });
 * ```
 *
 * @param source QEMU's migration stream.
 * @param conn Connection to a {@link receiveQemuStream}.
 * @returns Statistics; `verified` is true when the receiver's digest matched.
 * @throws {QemuStreamError} when the QEMU stream is not one or is truncated (the receiver is sent ABORT).
 * @throws {MigrationError} when the receiver fails or refuses.
 */
export async function sendQemuStream(
  source: ReadableStream<Uint8Array>,
  conn: WireConn,
  options: TunnelSendOptions = {},
): Promise<TunnelStats> {
  const stats = emptyStats();
  const started = performance.now();
  const writer = new FrameWriter(conn.writable);
  const replies = new TunnelFrameReader(conn.readable);
  const pacer = options.bandwidth
    ? new Pacer({ bytesPerSecond: options.bandwidth })
    : null;
  const parser = new QemuStreamParser();
  const hash = createHash("sha256");
  const input = source.getReader();
  const batchPages = options.batchPages ?? 256;
  const tailHold = options.tailHoldBytes ?? 16 << 20;
  const pageRounds: number[] = [];
  let failure: Error | null = null;

  const send = async (bytes: Uint8Array): Promise<void> => {
    if (failure) throw failure;
    if (pacer) await pacer.take(bytes.length);
    await writer.writeRaw(bytes);
  };

  try {
    // Read up to the RAM setup (or the tail) before the handshake: HELLO
    // announces the size of the pfn space.
    const early: QemuEvent[] = [];
    let ended = false;
    while (parser.pageCount === 0 && !parser.tail) {
      const { value, done } = await input.read();
      if (done) {
        ended = true;
        break;
      }
      hash.update(value);
      stats.streamBytes += value.length;
      for (const e of parser.push(value)) early.push(copyEvent(e));
    }
    const pageCount = Math.max(1, parser.pageCount);
    const policy = options.plan?.name ?? "qemu-tunnel";
    await send(encodeTunnelFrame(
      FrameType.HELLO,
      0,
      encodeHello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: pageCount * QEMU_PAGE_SIZE,
        pageSize: QEMU_PAGE_SIZE,
        codecs: codecNames().map((n) => ({ id: codecByName(n).id, name: n })),
        vm: options.vm ??
          `qemu stream: ${parser.blocks.map((b) => b.id).join(", ")}`.slice(
            0,
            4000,
          ),
        policy,
      }),
    ));
    const welcome = await replies.next();
    if (!welcome || welcome.type !== FrameType.WELCOME) {
      throw new MigrationError(
        welcome?.type === FrameType.ERROR
          ? `Receiver refused the tunnel: ${
            decodeError(welcome.payload).message
          }`
          : `Receiver answered HELLO with ${
            welcome ? tunnelFrameTypeName(welcome.type) : "end of stream"
          }, expected WELCOME`,
      );
    }
    decodeWelcome(welcome.payload);
    // The next frame from the receiver is its verdict (RESULT) or ERROR.
    const verdict = replies.next().then((f) => {
      if (f && f.type === FrameType.ERROR) {
        failure = new MigrationError(
          `Receiver failed: ${decodeError(f.payload).message}`,
        );
      }
      return f ? { type: f.type, payload: f.payload.slice() } : null;
    }, (e) => {
      failure = e as Error;
      return null;
    });

    const chain = new EncoderChain({ pageSize: QEMU_PAGE_SIZE, pageCount });
    let maxEntry = QEMU_PAGE_SIZE;
    for (const n of codecNames()) {
      maxEntry = Math.max(
        maxEntry,
        codecByName(n).maxEncodedBytes(QEMU_PAGE_SIZE),
      );
    }
    const pagesFrame = new PagesFrameBuilder({
      maxPages: batchPages,
      maxEntryBytes: maxEntry,
    });
    const records = new RecordsBuilder();
    let round = 0;
    let lastPfn = -1;
    let roundStart = performance.now();
    let roundRaw = 0;
    let roundWire = 0;
    let lastSendRate = 0;
    let lastWireRate = 0;

    const roundStats = (): RoundStats => ({
      round,
      dirtyPages: 0,
      remainingBytes: 0,
      dirtyRate: 0,
      sendRate: lastSendRate,
      wireRate: lastWireRate,
      elapsedMs: performance.now() - started,
      bytesSent: writer.bytesWritten,
      rawBytesSent: stats.rawPageBytes,
      memoryBytes: pageCount * QEMU_PAGE_SIZE,
      pageSize: QEMU_PAGE_SIZE,
    });
    const selectChain = async (): Promise<void> => {
      const specs = options.plan
        ? options.plan.codecsFor(roundStats())
        : options.codecs ?? [{ name: "zero" }];
      chain.select(specs);
      for (const { codec, options: o } of chain.takeNewCodecs()) {
        await send(encodeTunnelFrame(
          FrameType.CODEC,
          round,
          encodeCodec({ id: codec.id, name: codec.name, options: o }),
        ));
      }
    };
    const flush = async (): Promise<void> => {
      if (records.count === 0) return;
      const before = writer.bytesWritten;
      await send(
        encodeTunnelFrame(
          TunnelFrameType.QEMU_RECORDS,
          round,
          records.payload(),
        ),
      );
      if (records.pages > 0) await send(pagesFrame.frame(round));
      roundWire += writer.bytesWritten - before;
      records.reset();
      pagesFrame.reset();
    };
    const newRound = async (): Promise<void> => {
      await flush();
      const secs = Math.max(1e-6, (performance.now() - roundStart) / 1000);
      lastSendRate = roundRaw / secs;
      lastWireRate = roundWire / secs;
      roundStart = performance.now();
      roundRaw = 0;
      roundWire = 0;
      round++;
      await selectChain();
    };
    const handle = async (e: QemuEvent): Promise<void> => {
      if (e.kind !== "page") {
        stats.opaqueBytes += e.bytes.length;
        records.opaque(e.bytes);
        return;
      }
      if (e.pfn <= lastPfn) await newRound();
      lastPfn = e.pfn;
      const header = e.bytes.subarray(0, e.headerLength);
      if (e.zero) {
        records.zero(header, e.fill);
        stats.zeroPages++;
        return;
      }
      const r = chain.encode(e.pfn, e.data);
      pagesFrame.add(e.pfn, r.codecId, chain.output, r.length);
      records.page(header);
      stats.pages++;
      stats.rawPageBytes += QEMU_PAGE_SIZE;
      roundRaw += QEMU_PAGE_SIZE;
      pageRounds[r.codecId] = (pageRounds[r.codecId] ?? 0) + 1;
      if (pagesFrame.full) await flush();
    };

    await selectChain();
    for (const e of early) await handle(e);
    if (!parser.tail) await flush();
    // Coalesce: pending records go out when 1 MiB has built up, when the next
    // chunk is slower to come than maxFlushDelayMs, or after that long
    // anyway; full PAGES frames go out from handle(). Past the RAM (the
    // tail), QEMU's device state is held back up to tailHold bytes.
    const maxDelay = options.maxFlushDelayMs ?? 5;
    let firstPending = performance.now();
    // The next read runs while this chunk is parsed and encoded; if it fails
    // while no one awaits it (this chunk threw first), that is no new error.
    const readAhead = () => {
      const r = input.read();
      r.catch(() => {});
      return r;
    };
    let next = ended ? null : readAhead();
    while (next) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let chunk = await Promise.race([
        next,
        new Promise<null>((r) => timer = setTimeout(r, maxDelay, null)),
      ]);
      clearTimeout(timer);
      if (chunk === null) {
        if (!parser.tail) await flush();
        chunk = await next;
      }
      if (chunk.done) break;
      next = readAhead();
      const value = chunk.value;
      hash.update(value);
      stats.streamBytes += value.length;
      if (records.count === 0) firstPending = performance.now();
      for (const e of parser.push(value)) await handle(e);
      if (
        parser.tail
          ? records.byteLength > tailHold
          : records.byteLength >= FLUSH_RECORDS_BYTES ||
            performance.now() - firstPending >= maxDelay
      ) await flush();
    }
    try {
      parser.finish();
    } catch (e) {
      if (e instanceof QemuStreamError) {
        await send(encodeTunnelFrame(
          FrameType.ABORT,
          round,
          encodeAbort({ reason: e.message.slice(0, 4000) }),
        )).catch(() => {});
      }
      throw e;
    }
    await flush();
    const sourceDigest = new Uint8Array(hash.digest());
    stats.digest = hex(sourceDigest);
    await send(encodeTunnelFrame(
      TunnelFrameType.QEMU_END,
      round,
      encodeQemuEnd({
        streamBytes: stats.streamBytes,
        records: stats.pages + stats.zeroPages,
        sha256: sourceDigest,
      }),
    ));
    stats.wireBytes = writer.bytesWritten;
    const reply = await verdict;
    if (failure) throw failure;
    if (!reply || reply.type !== FrameType.RESULT) {
      throw new MigrationError(
        `Receiver answered QEMU_END with ${
          reply ? tunnelFrameTypeName(reply.type) : "end of stream"
        }, expected RESULT`,
      );
    }
    const result = decodeResult(reply.payload);
    // Compare, never copy: a receiver that says "verified" about other bytes
    // is a failed migration.
    stats.peerDigest = result.digest;
    stats.verified = result.verified && result.digest === stats.digest;
    if (!stats.verified) {
      throw new MigrationError(
        `Receiver's rebuilt QEMU stream differs from the source's: its SHA-256 is "${result.digest}"` +
          ` (it says verified: ${result.verified}), the source stream's is ${stats.digest}`,
      );
    }
    stats.rounds = round + 1;
    stats.fallbackReason = parser.fallbackReason;
    for (let id = 0; id < pageRounds.length; id++) {
      if (pageRounds[id]) {
        stats.codecPages[codecById(id)!.name] = pageRounds[id];
      }
    }
    stats.durationMs = performance.now() - started;
    await writer.close().catch(() => {});
    return stats;
  } catch (e) {
    await input.cancel().catch(() => {});
    await writer.close().catch(() => {});
    await replies.cancel().catch(() => {});
    throw e;
  }
}

function copyEvent(e: QemuEvent): QemuEvent {
  const bytes = e.bytes.slice();
  if (e.kind !== "page") return { ...e, bytes };
  return {
    ...e,
    bytes,
    data: e.zero ? e.data : bytes.subarray(e.headerLength),
  };
}
