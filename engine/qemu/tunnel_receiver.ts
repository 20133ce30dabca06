/**
 * The QEMU tunnel's receiving side: reads the frames of
 * {@link sendQemuStream}, decodes the pages against a shadow of guest RAM
 * and writes the rebuilt QEMU stream, byte for byte what the source QEMU
 * wrote, to the destination (stdout of an `-incoming exec:` command or a
 * socket to the destination QEMU).
 *
 * The output of the newest batch is held back until the next batch or a
 * verified QEMU_END, and the sender puts the whole device-state tail in the
 * last batch: a stream cut short or corrupted never reaches the destination
 * with its end, so the destination QEMU fails instead of loading it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { hex } from "../digest.ts";
import { MigrationError, WireError } from "../errors.ts";
import { DecoderTable, negotiateCodecs } from "../wire/decoder_table.ts";
import type { WireConn } from "../wire/duplex.ts";
import { FrameType } from "../wire/frame.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeAbort,
  decodeCodec,
  decodeError,
  decodeHello,
  encodeError,
  encodeResult,
  encodeWelcome,
  PROTOCOL_VERSION,
} from "../wire/messages.ts";
import { PageEntries, parsePagesPayload } from "../wire/pages.ts";
import { QEMU_PAGE_SIZE } from "./stream/parser.ts";
import { _emptyStats, type TunnelStats } from "./tunnel.ts";
import {
  decodeQemuEnd,
  encodeTunnelFrame,
  type ParsedRecords,
  parseRecords,
  RecordKind,
  TunnelFrameReader,
  TunnelFrameType,
  tunnelFrameTypeName,
} from "./tunnel_frames.ts";

/** Options of {@link receiveQemuStream}. */
export interface TunnelReceiveOptions {
  /** Largest guest RAM a HELLO may announce (default 1 TiB; the shadow grows lazily). */
  readonly maxMemoryBytes?: number;
}

const CHUNK_PAGES = 256;

/**
 * The receiver's copy of guest RAM as the codecs see it: the last PAGE body
 * per pfn (all zero before any). Allocated lazily, 1 MiB at a time.
 *
 * @example
 * ```ts
 * const s = new PageShadow(16);
 * s.write(3, page);
 * s.read(3); // page's bytes
 * ```
 */
export class PageShadow {
  readonly #chunks: (Uint8Array | undefined)[];
  readonly #zero = new Uint8Array(QEMU_PAGE_SIZE);

  /** @param pageCount Pages of the pfn space. */
  constructor(pageCount: number) {
    this.#chunks = new Array(Math.ceil(pageCount / CHUNK_PAGES));
  }

  /** The page as last written (a view: never write to it). */
  read(pfn: number): Uint8Array {
    const c = this.#chunks[Math.floor(pfn / CHUNK_PAGES)];
    if (!c) return this.#zero;
    const at = (pfn % CHUNK_PAGES) * QEMU_PAGE_SIZE;
    return c.subarray(at, at + QEMU_PAGE_SIZE);
  }

  /** Stores `page` as pfn's current version. */
  write(pfn: number, page: Uint8Array): void {
    const i = Math.floor(pfn / CHUNK_PAGES);
    let c = this.#chunks[i];
    if (!c) c = this.#chunks[i] = new Uint8Array(CHUNK_PAGES * QEMU_PAGE_SIZE);
    c.set(page, (pfn % CHUNK_PAGES) * QEMU_PAGE_SIZE);
  }
}

/**
 * Receives one tunnelled QEMU stream from `conn` and writes it to `sink`.
 * Closes `sink` after a verified end; aborts it on any failure.
 *
 * @example
 * ```ts
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 4444 });
 * const conn = await listener.accept();
 * const stats = await receiveQemuStream(conn, Deno.stdout.writable);
 * ```
 *
 * @throws {WireError} on a malformed, truncated or out-of-order frame.
 * @throws {MigrationError} when the source aborts or the rebuilt stream does not match QEMU_END.
 */
export async function receiveQemuStream(
  conn: WireConn,
  sink: WritableStream<Uint8Array>,
  options: TunnelReceiveOptions = {},
): Promise<TunnelStats> {
  const stats = _emptyStats();
  const started = performance.now();
  const reader = new TunnelFrameReader(conn.readable);
  const writer = new FrameWriter(conn.writable);
  const out = sink.getWriter();
  const hash = createHash("sha256");
  const maxMemory = options.maxMemoryBytes ?? 2 ** 40;
  const rounds = new Set<number>();
  let phase: "hello" | "stream" = "hello";
  let pageCount = 0;
  let shadow: PageShadow | undefined;
  let table = new DecoderTable(new Map(), {
    pageSize: QEMU_PAGE_SIZE,
    pageCount: 0,
  });
  const entries = new PageEntries(0);
  const scratch = new Uint8Array(QEMU_PAGE_SIZE);
  let pending: { payload: Uint8Array; records: ParsedRecords } | null = null;
  let held: Uint8Array | null = null;

  const emit = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    stats.streamBytes += bytes.length;
    if (held) await out.write(held);
    held = bytes;
  };

  const rebuild = (
    payload: Uint8Array,
    recs: ParsedRecords,
    pages: Uint8Array | null,
  ): Uint8Array => {
    const buf = new Uint8Array(recs.streamBytes);
    let at = 0;
    let entry = 0;
    for (let i = 0; i < recs.count; i++) {
      const off = recs.offset[i];
      const len = recs.length[i];
      buf.set(payload.subarray(off, off + len), at);
      at += len;
      const kind = recs.kind[i];
      if (kind === RecordKind.OPAQUE) {
        stats.opaqueBytes += len;
      } else if (kind === RecordKind.ZERO) {
        buf[at++] = payload[off + len];
        stats.zeroPages++;
      } else {
        const pfn = entries.pfn[entry];
        const id = entries.codecId[entry];
        const eo = entries.offset[entry];
        table.decoderFor(id, pfn).decode(
          pfn,
          pages!.subarray(eo, eo + entries.length[entry]),
          scratch,
        );
        // only a codec that decodes against the current page needs it; the
        // sender's delta cache starts no earlier than its CODEC frame
        if (table.readsCurrent) shadow!.write(pfn, scratch);
        table.applied(pfn, scratch, id);
        buf.set(scratch, at);
        at += QEMU_PAGE_SIZE;
        entry++;
        stats.pages++;
        stats.rawPageBytes += QEMU_PAGE_SIZE;
        const name = table.nameOf(id);
        stats.codecPages[name] = (stats.codecPages[name] ?? 0) + 1;
      }
    }
    return buf;
  };

  try {
    for (;;) {
      const frame = await reader.next();
      if (frame === null) {
        throw new WireError(
          `Connection closed before ${
            phase === "hello" ? "HELLO" : "QEMU_END"
          }: the QEMU stream is incomplete after ${stats.streamBytes} bytes`,
          reader.bytesRead,
        );
      }
      const { type, payload } = frame;
      if (phase === "hello") {
        if (type !== FrameType.HELLO) {
          throw new WireError(
            `Expected HELLO, got ${tunnelFrameTypeName(type)}`,
            0,
          );
        }
        const hello = decodeHello(payload);
        if (hello.protocol !== PROTOCOL_VERSION) {
          throw new MigrationError(
            `Unsupported protocol "${hello.protocol}": this receiver speaks ${PROTOCOL_VERSION}`,
          );
        }
        if (
          hello.pageSize !== QEMU_PAGE_SIZE || hello.memoryBytes <= 0 ||
          hello.memoryBytes % QEMU_PAGE_SIZE !== 0 ||
          hello.memoryBytes > maxMemory
        ) {
          throw new MigrationError(
            `Bad HELLO geometry: ${hello.memoryBytes} bytes in pages of ${hello.pageSize}: ` +
              `expected a multiple of ${QEMU_PAGE_SIZE} up to ${maxMemory}`,
          );
        }
        const negotiated = negotiateCodecs(hello.codecs);
        pageCount = hello.memoryBytes / QEMU_PAGE_SIZE;
        const s = shadow = new PageShadow(pageCount);
        table = new DecoderTable(negotiated, {
          pageSize: QEMU_PAGE_SIZE,
          pageCount,
          current: (pfn: number) => s.read(pfn),
        });
        await writer.writeRaw(encodeTunnelFrame(
          FrameType.WELCOME,
          0,
          encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
        ));
        phase = "stream";
        continue;
      }
      rounds.add(frame.round);
      if (pending && type !== FrameType.PAGES) {
        throw new WireError(
          `Expected the PAGES frame of a QEMU_RECORDS frame, got ${
            tunnelFrameTypeName(type)
          }`,
          reader.bytesRead,
        );
      }
      switch (type) {
        case FrameType.CODEC: {
          table.announce(decodeCodec(payload), reader.bytesRead);
          continue;
        }
        case TunnelFrameType.QEMU_RECORDS: {
          const records = parseRecords(payload);
          if (records.pages > 0) {
            pending = { payload: payload.slice(), records };
          } else {
            await emit(rebuild(payload, records, null));
          }
          continue;
        }
        case FrameType.PAGES: {
          if (!pending) {
            throw new WireError(
              `PAGES frame without its QEMU_RECORDS frame`,
              reader.bytesRead,
            );
          }
          parsePagesPayload(payload, {
            pageCount,
            pageSize: QEMU_PAGE_SIZE,
            codecs: table.negotiated,
          }, entries);
          if (entries.count !== pending.records.pages) {
            throw new WireError(
              `PAGES frame has ${entries.count} entries, its QEMU_RECORDS frame ${pending.records.pages} PAGE records`,
              reader.bytesRead,
            );
          }
          const p = pending;
          pending = null;
          await emit(rebuild(p.payload, p.records, payload));
          continue;
        }
        case TunnelFrameType.QEMU_END: {
          const end = decodeQemuEnd(payload);
          const digest = new Uint8Array(hash.digest());
          const records = stats.pages + stats.zeroPages;
          stats.digest = hex(digest);
          stats.peerDigest = hex(end.sha256);
          const same = end.streamBytes === stats.streamBytes &&
            end.records === records &&
            digest.every((b, i) => b === end.sha256[i]);
          if (!same) {
            throw new MigrationError(
              `Rebuilt QEMU stream does not match the source: ${stats.streamBytes} bytes and ${records} records ` +
                `where the source sent ${end.streamBytes} and ${end.records}, or a different SHA-256`,
            );
          }
          if (held) await out.write(held);
          held = null;
          await out.close();
          stats.verified = true;
          await writer.writeRaw(encodeTunnelFrame(
            FrameType.RESULT,
            0,
            encodeResult({
              verified: true,
              digest: stats.digest,
              pagesApplied: stats.pages,
            }),
          ));
          stats.wireBytes = reader.bytesRead;
          stats.rounds = rounds.size;
          stats.durationMs = performance.now() - started;
          await writer.close().catch(() => {});
          return stats;
        }
        case FrameType.ABORT:
          throw new MigrationError(
            `Source aborted the tunnel: ${decodeAbort(payload).reason}`,
          );
        case FrameType.ERROR:
          throw new MigrationError(
            `Source failed: ${decodeError(payload).message}`,
          );
        default:
          throw new WireError(
            `Unexpected ${tunnelFrameTypeName(type)} frame in a QEMU tunnel`,
            reader.bytesRead,
          );
      }
    }
  } catch (e) {
    // Never hand the destination the held end of a stream that failed.
    held = null;
    await out.abort(e).catch(() => {});
    await writer.writeRaw(encodeTunnelFrame(
      FrameType.ERROR,
      0,
      encodeError({ message: String((e as Error).message).slice(0, 4000) }),
    )).catch(() => {});
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    throw e;
  }
}
