/**
 * The Xen tunnel's source side. `xl migrate -s` runs a command instead of
 * ssh and talks to it over stdin/stdout; with
 *
 * ```sh
 * xl migrate -s "deno run -A engine/xen/tunnel_main.ts send --to DST:4445 --" DOMU DST
 * ```
 *
 * xl runs `sh -c "exec deno run ... send --to DST:4445 -- DST xl migrate-receive"`
 * (the words after `--` are xl's own rune and are ignored). This side reads
 * xl's stream from stdin, finds the libxc image inside it, runs every
 * PAGE_DATA page through the plan's codec chain and sends everything else
 * as opaque frames; bytes the receiving xl writes back (its banner, "ready"
 * and report messages) come back as XEN_BACK frames and go to stdout.
 * {@link receiveXenStream} rebuilds the identical stream for
 * `xl migrate-receive`. Frames: `docs/xen.md`.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { EncoderChain } from "../codecs/chain.ts";
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
import { XenStreamError } from "./stream/errors.ts";
import {
  IHDR_OPT_BIG_ENDIAN,
  MAX_BATCH_SIZE,
  pfnTypeHasData,
} from "./stream/format.ts";
import {
  type PagesEvent,
  type XenEvent,
  XenStreamParser,
} from "./stream/parser.ts";
import { RoundCounter } from "./rounds.ts";
import {
  encodeXenFrame,
  XenFrameReader,
  XenFrameType,
  xenFrameTypeName,
} from "./tunnel_frames.ts";

/** Page size the tunnel carries (x86). */
export const XEN_PAGE_SIZE = 4096;

/** Default bound on the pfn space: 2^24 pages (64 GiB of pfns, holes included). */
export const DEFAULT_MAX_PAGES = 1 << 24;

/** What a tunnel side measured. */
export interface XenTunnelStats {
  /** Bytes of xl's forward stream (read by the sender, rebuilt by the receiver). */
  streamBytes: number;
  /** Bytes the receiving xl wrote back. */
  backBytes: number;
  /** Data pages that went through the codec chain. */
  pages: number;
  /** PAGE_DATA records. */
  pageRecords: number;
  /** Forward bytes that travelled opaque. */
  opaqueBytes: number;
  /** hakobu frame bytes sent (sender) or read (receiver). */
  wireBytes: number;
  /** Rounds, counted by pfn repetition (`rounds.ts`). */
  rounds: number;
  /** Whether a libxc image was found in the stream. */
  sawImage: boolean;
  /**
   * Whether this side compared the two digests and found them equal (the
   * receiver: its rebuilt stream against XEN_END's length and SHA-256; the
   * sender: the receiver's RESULT digest against its own). Never copied
   * from the peer.
   */
  verified: boolean;
  /** SHA-256 (hex) of the forward stream this side read (sender) or rebuilt (receiver). */
  digest: string;
  /** SHA-256 (hex) the peer reported: XEN_END's (receiver) or RESULT's (sender). */
  peerDigest: string;
  /** Pages per codec name. */
  codecPages: Record<string, number>;
  /** Wall-clock milliseconds. */
  durationMs: number;
}

/** Options of {@link sendXenStream}. */
export interface XenTunnelSendOptions {
  /** Chooses the codec chain per round; wins over `codecs`. */
  readonly plan?: Pick<Plan, "codecsFor" | "name">;
  /** The chain without a plan (default `zero` then `raw`). */
  readonly codecs?: readonly CodecSpec[];
  /** Link pacing in bytes per second. */
  readonly bandwidth?: number | null;
  /** Bound on pfns (HELLO's memory size / 4096); a data pfn at or above it fails. */
  readonly maxPages?: number;
  /** Opaque bytes coalesced before a frame goes out (default 256 KiB). */
  readonly opaqueChunk?: number;
  /** Description for the receiver's logs. */
  readonly vm?: string;
}

/** @internal */
export function emptyXenStats(): XenTunnelStats {
  return {
    streamBytes: 0,
    backBytes: 0,
    pages: 0,
    pageRecords: 0,
    opaqueBytes: 0,
    wireBytes: 0,
    rounds: 0,
    sawImage: false,
    verified: false,
    digest: "",
    peerDigest: "",
    codecPages: {},
    durationMs: 0,
  };
}

/**
 * Tunnels xl's migration stream: reads `source` (xl's data) to its end,
 * relays the receiving side's replies to `back`, and waits for the
 * receiver's verdict.
 *
 * @example
 * ```ts
 * const conn = await Deno.connect({ hostname: "dst", port: 4445 });
 * const stats = await sendXenStream(Deno.stdin.readable, Deno.stdout.writable, conn, {
 *   codecs: [{ name: "zero" }, { name: "lz4" }],
 * });
 * ```
 * @throws {XenStreamError} when the libxc stream is malformed or truncated (the receiver gets ABORT).
 * @throws {MigrationError} when the receiver fails or the rebuilt stream does not match.
 */
export async function sendXenStream(
  source: ReadableStream<Uint8Array>,
  back: WritableStream<Uint8Array>,
  conn: WireConn,
  options: XenTunnelSendOptions = {},
): Promise<XenTunnelStats> {
  const stats = emptyXenStats();
  const started = performance.now();
  const writer = new FrameWriter(conn.writable);
  const replies = new XenFrameReader(conn.readable);
  const pacer = options.bandwidth
    ? new Pacer({ bytesPerSecond: options.bandwidth })
    : null;
  const maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
  const opaqueChunk = options.opaqueChunk ?? 256 * 1024;
  const parser = new XenStreamParser({ scan: true });
  const hash = createHash("sha256");
  const input = source.getReader();
  const backWriter = back.getWriter();
  let failure: Error | null = null;

  const send = async (bytes: Uint8Array): Promise<void> => {
    if (failure) throw failure;
    if (pacer) await pacer.take(bytes.length);
    await writer.writeRaw(bytes);
  };

  try {
    await send(encodeXenFrame(
      FrameType.HELLO,
      0,
      encodeHello({
        protocol: PROTOCOL_VERSION,
        memoryBytes: maxPages * XEN_PAGE_SIZE,
        pageSize: XEN_PAGE_SIZE,
        codecs: codecNames().map((n) => ({ id: codecByName(n).id, name: n })),
        vm: (options.vm ?? "xl migrate stream").slice(0, 4000),
        policy: options.plan?.name ?? "xen-tunnel",
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
            welcome ? xenFrameTypeName(welcome.type) : "end of stream"
          }, expected WELCOME`,
      );
    }
    decodeWelcome(welcome.payload);

    // Replies: XEN_BACK bytes for xl, then XEN_BACK_END, then RESULT.
    const verdict = (async () => {
      let result: Uint8Array | null = null;
      try {
        for (;;) {
          const f = await replies.next();
          if (!f) break;
          if (f.type === XenFrameType.XEN_BACK) {
            stats.backBytes += f.payload.length;
            await backWriter.write(f.payload);
          } else if (f.type === XenFrameType.XEN_BACK_END) {
            await backWriter.close().catch(() => {});
          } else if (f.type === FrameType.RESULT) {
            result = f.payload;
            break;
          } else if (f.type === FrameType.ERROR) {
            failure = new MigrationError(
              `Receiver failed: ${decodeError(f.payload).message}`,
            );
            await input.cancel().catch(() => {});
            break;
          } else {
            throw new MigrationError(
              `Unexpected ${xenFrameTypeName(f.type)} frame from the receiver`,
            );
          }
        }
      } catch (e) {
        failure ??= e as Error;
        await input.cancel().catch(() => {});
      }
      return result;
    })();

    const chain = new EncoderChain({
      pageSize: XEN_PAGE_SIZE,
      pageCount: maxPages,
    });
    let maxEntry = XEN_PAGE_SIZE;
    for (const n of codecNames()) {
      maxEntry = Math.max(
        maxEntry,
        codecByName(n).maxEncodedBytes(XEN_PAGE_SIZE),
      );
    }
    const pagesFrame = new PagesFrameBuilder({
      maxPages: MAX_BATCH_SIZE,
      maxEntryBytes: maxEntry,
    });
    const rounds = new RoundCounter();
    const perCodec: number[] = [];
    let bigEndian = false;
    let opaque: Uint8Array[] = [];
    let opaqueLen = 0;
    let roundStart = performance.now();
    let roundRaw = 0;
    let lastSendRate = 0;
    let roundPages = 0;
    let lastRoundPages = 0;

    const flushOpaque = async (): Promise<void> => {
      if (opaqueLen === 0) return;
      const payload = new Uint8Array(opaqueLen);
      let at = 0;
      for (const b of opaque) {
        payload.set(b, at);
        at += b.length;
      }
      opaque = [];
      opaqueLen = 0;
      await send(
        encodeXenFrame(XenFrameType.XEN_OPAQUE, rounds.round, payload),
      );
    };
    const addOpaque = async (bytes: Uint8Array): Promise<void> => {
      stats.opaqueBytes += bytes.length;
      opaque.push(bytes.slice());
      opaqueLen += bytes.length;
      if (opaqueLen >= opaqueChunk) await flushOpaque();
    };
    const stats4 = (): RoundStats => ({
      round: rounds.round,
      dirtyPages: lastRoundPages,
      remainingBytes: lastRoundPages * XEN_PAGE_SIZE,
      dirtyRate: 0,
      sendRate: lastSendRate,
      wireRate: lastSendRate,
      elapsedMs: performance.now() - started,
      bytesSent: writer.bytesWritten,
      rawBytesSent: stats.pages * XEN_PAGE_SIZE,
      memoryBytes: maxPages * XEN_PAGE_SIZE,
      pageSize: XEN_PAGE_SIZE,
    });
    const selectChain = async (): Promise<void> => {
      chain.select(
        options.plan
          ? options.plan.codecsFor(stats4())
          : options.codecs ?? [{ name: "zero" }],
      );
      for (const { codec, options: o } of chain.takeNewCodecs()) {
        await send(encodeXenFrame(
          FrameType.CODEC,
          rounds.round,
          encodeCodec({ id: codec.id, name: codec.name, options: o }),
        ));
      }
    };
    const pages = async (e: PagesEvent): Promise<void> => {
      await flushOpaque();
      const dataPfns: number[] = [];
      for (let i = 0; i < e.count; i++) {
        if (!pfnTypeHasData(e.type[i])) continue;
        if (e.pfn[i] >= maxPages) {
          throw new XenStreamError(
            `PAGE_DATA at offset ${e.offset}: pfn "${
              e.pfn[i]
            }" is above the tunnel's bound of ${maxPages} pages: raise --max-pages`,
            e.offset,
          );
        }
        dataPfns.push(e.pfn[i]);
      }
      if (rounds.record(dataPfns)) {
        const secs = Math.max(1e-6, (performance.now() - roundStart) / 1000);
        lastSendRate = roundRaw / secs;
        lastRoundPages = roundPages;
        roundStart = performance.now();
        roundRaw = 0;
        roundPages = 0;
        await selectChain();
      }
      const head = new Uint8Array(8 + e.headerLength);
      new DataView(head.buffer).setUint32(0, bigEndian ? 1 : 0, true);
      head.set(e.bytes.subarray(0, e.headerLength), 8);
      await send(
        encodeXenFrame(XenFrameType.XEN_PAGE_DATA, rounds.round, head),
      );
      stats.pageRecords++;
      if (dataPfns.length === 0) return;
      pagesFrame.reset();
      const ps = e.pageSize;
      for (let k = 0; k < dataPfns.length; k++) {
        const at = e.headerLength + k * ps;
        const r = chain.encode(dataPfns[k], e.bytes.subarray(at, at + ps));
        pagesFrame.add(dataPfns[k], r.codecId, chain.output, r.length);
        perCodec[r.codecId] = (perCodec[r.codecId] ?? 0) + 1;
      }
      stats.pages += dataPfns.length;
      roundRaw += dataPfns.length * ps;
      roundPages += dataPfns.length;
      await send(pagesFrame.frame(rounds.round));
    };
    const handle = async (e: XenEvent): Promise<void> => {
      if (e.kind === "pages") return await pages(e);
      if (e.kind === "header") {
        stats.sawImage = true;
        bigEndian = (e.header.options & IHDR_OPT_BIG_ENDIAN) !== 0;
        if (e.header.pageShift !== 12) {
          throw new XenStreamError(
            `Unsupported page shift "${e.header.pageShift}": the tunnel carries 4 KiB pages`,
            e.offset,
          );
        }
      }
      await addOpaque(e.bytes);
    };

    await selectChain();
    try {
      for (;;) {
        const { value, done } = await input.read();
        if (done) break;
        hash.update(value);
        stats.streamBytes += value.length;
        for (const e of parser.push(value)) await handle(e);
        // xl waits for answers between its messages: never hold bytes back.
        await flushOpaque();
      }
      if (failure) throw failure;
      for (const e of parser.finish()) await handle(e);
      await flushOpaque();
    } catch (e) {
      if (e instanceof XenStreamError) {
        await send(encodeXenFrame(
          FrameType.ABORT,
          rounds.round,
          encodeAbort({ reason: e.message.slice(0, 4000) }),
        )).catch(() => {});
      }
      throw e;
    }
    await send(encodeXenFrame(
      XenFrameType.XEN_END,
      rounds.round,
      new TextEncoder().encode(JSON.stringify({
        streamBytes: stats.streamBytes,
        sha256: stats.digest = hash.digest("hex"),
      })),
    ));
    stats.wireBytes = writer.bytesWritten;
    const reply = await verdict;
    if (failure) throw failure;
    if (!reply) {
      throw new MigrationError(
        "Receiver closed the connection without a RESULT",
      );
    }
    const result = decodeResult(reply);
    // Compare, never copy: a receiver that says "verified" about other bytes
    // is a failed migration.
    stats.peerDigest = result.digest;
    stats.verified = result.verified && result.digest === stats.digest;
    if (!stats.verified) {
      throw new MigrationError(
        `Receiver's rebuilt stream differs from the source's: its SHA-256 is "${result.digest}"` +
          ` (it says verified: ${result.verified}), the source stream's is ${stats.digest}`,
      );
    }
    stats.rounds = stats.pageRecords > 0 ? rounds.round + 1 : 0;
    for (let id = 0; id < perCodec.length; id++) {
      if (perCodec[id]) stats.codecPages[codecById(id)!.name] = perCodec[id];
    }
    stats.durationMs = performance.now() - started;
    await writer.close().catch(() => {});
    return stats;
  } catch (e) {
    await input.cancel().catch(() => {});
    await writer.close().catch(() => {});
    await replies.cancel().catch(() => {});
    await backWriter.abort(e).catch(() => {});
    throw e;
  }
}
