/**
 * The Xen tunnel's receiving side: accepts a {@link sendXenStream}
 * connection, rebuilds xl's stream byte for byte into `peer.writable`
 * (stdin of `xl migrate-receive`) and relays `peer.readable` (its stdout)
 * back as XEN_BACK frames. Verifies the rebuilt stream's length and
 * SHA-256 against the sender's before answering RESULT.
 *
 * @module
 */

import { createHash } from "node:crypto";
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
import { MAX_BATCH_SIZE, pfnTypeHasData, RHDR_BYTES } from "./stream/format.ts";
import { emptyXenStats, XEN_PAGE_SIZE, type XenTunnelStats } from "./tunnel.ts";
import {
  encodeXenFrame,
  type XenFrame,
  XenFrameReader,
  XenFrameType,
  xenFrameTypeName,
} from "./tunnel_frames.ts";

/** The receiving xl (or a test double): its stdin and stdout. */
export interface XenPeer {
  /** Where the rebuilt stream goes (`xl migrate-receive`'s stdin). */
  readonly writable: WritableStream<Uint8Array>;
  /** What the receiving xl says (its stdout), relayed to the source. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Resolves to the peer's exit code once it ended (optional). */
  readonly exited?: Promise<number>;
}

const TWO_32 = 0x1_0000_0000;

/** The data pfns a XEN_PAGE_DATA payload announces, after checking it. */
function pageDataPfns(payload: Uint8Array): number[] {
  if (payload.length < 8 + RHDR_BYTES + 8) {
    throw new WireError(
      `Bad XEN_PAGE_DATA payload: ${payload.length} bytes is too short`,
      0,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const le = (v.getUint32(0, true) & 1) === 0;
  const count = v.getUint32(8 + RHDR_BYTES, le);
  if (
    count === 0 || count > MAX_BATCH_SIZE ||
    payload.length !== 8 + RHDR_BYTES + 8 + 8 * count
  ) {
    throw new WireError(
      `Bad XEN_PAGE_DATA payload: count "${count}" does not fit its ${payload.length} bytes`,
      8 + RHDR_BYTES,
    );
  }
  const pfns: number[] = [];
  for (let i = 0; i < count; i++) {
    const o = 8 + RHDR_BYTES + 8 + 8 * i;
    const lo = v.getUint32(o + (le ? 0 : 4), le);
    const hi = v.getUint32(o + (le ? 4 : 0), le);
    if (pfnTypeHasData(hi >>> 28)) pfns.push((hi & 0xfffff) * TWO_32 + lo);
  }
  return pfns;
}

/**
 * Receives one tunnelled xl stream.
 *
 * @example
 * ```ts
 * const xl = new Deno.Command("xl", { args: ["migrate-receive"], stdin: "piped", stdout: "piped" }).spawn();
 * await receiveXenStream(conn, { writable: xl.stdin, readable: xl.stdout });
 * ```
 * @throws {WireError} on a malformed frame; {@link MigrationError} when the
 *   sender aborts or the rebuilt stream does not match. The peer's stdin is
 *   then aborted, never closed cleanly, so xl sees a broken stream.
 */
export async function receiveXenStream(
  conn: WireConn,
  peer: XenPeer,
): Promise<XenTunnelStats> {
  const stats = emptyXenStats();
  const started = performance.now();
  const reader = new XenFrameReader(conn.readable);
  const writer = new FrameWriter(conn.writable);
  const out = peer.writable.getWriter();
  const hash = createHash("sha256");
  let table = new DecoderTable(new Map(), {
    pageSize: XEN_PAGE_SIZE,
    pageCount: 0,
  });
  const store = new Map<number, Uint8Array>();
  const entries = new PageEntries(MAX_BATCH_SIZE);
  let pageCount = 0;
  let sendLock: Promise<void> = Promise.resolve();
  const reply = (type: number, payload: Uint8Array): Promise<void> =>
    sendLock = sendLock.then(() =>
      writer.writeRaw(encodeXenFrame(type, 0, payload))
    );

  const write = async (bytes: Uint8Array): Promise<void> => {
    hash.update(bytes);
    stats.streamBytes += bytes.length;
    await out.write(bytes);
  };

  let backDone: Promise<void> = Promise.resolve();
  try {
    const hello = await reader.next();
    if (!hello || hello.type !== FrameType.HELLO) {
      throw new WireError(
        `Expected HELLO, got ${
          hello ? xenFrameTypeName(hello.type) : "end of stream"
        }`,
        0,
      );
    }
    const h = decodeHello(hello.payload);
    if (h.pageSize !== XEN_PAGE_SIZE) {
      throw new WireError(
        `Unsupported page size "${h.pageSize}": the Xen tunnel carries 4096`,
        0,
      );
    }
    pageCount = Math.floor(h.memoryBytes / h.pageSize);
    // pages are kept for `current` only once a codec that reads it (delta)
    // is announced: the sender's delta cache starts no earlier
    table = new DecoderTable(negotiateCodecs(h.codecs), {
      pageSize: XEN_PAGE_SIZE,
      pageCount,
      current: (pfn: number) => store.get(pfn) ?? new Uint8Array(XEN_PAGE_SIZE),
    });
    await reply(
      FrameType.WELCOME,
      encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
    );

    // Relay what the receiving xl says, as soon as it says it.
    backDone = (async () => {
      const r = peer.readable.getReader();
      for (;;) {
        const { value, done } = await r.read();
        if (done) break;
        stats.backBytes += value.length;
        await reply(XenFrameType.XEN_BACK, value);
      }
      const exitCode = peer.exited ? await peer.exited : 0;
      await reply(
        XenFrameType.XEN_BACK_END,
        new TextEncoder().encode(
          JSON.stringify({ bytes: stats.backBytes, exitCode }),
        ),
      );
    })();

    let pending: { head: Uint8Array; pfns: number[] } | null = null;
    const page = new Uint8Array(XEN_PAGE_SIZE);
    for (;;) {
      const f: XenFrame | null = await reader.next();
      if (!f) {
        throw new WireError(
          "Truncated tunnel: the connection ended before XEN_END",
          reader.bytesRead,
        );
      }
      if (pending && f.type !== FrameType.PAGES) {
        throw new WireError(
          `Expected PAGES after XEN_PAGE_DATA, got ${xenFrameTypeName(f.type)}`,
          reader.bytesRead,
        );
      }
      if (f.type === XenFrameType.XEN_OPAQUE) {
        stats.opaqueBytes += f.payload.length;
        await write(f.payload);
      } else if (f.type === FrameType.CODEC) {
        table.announce(decodeCodec(f.payload), reader.bytesRead);
      } else if (f.type === XenFrameType.XEN_PAGE_DATA) {
        const pfns = pageDataPfns(f.payload);
        const head = f.payload.slice(8);
        stats.pageRecords++;
        if (pfns.length === 0) await write(head);
        else pending = { head, pfns };
      } else if (f.type === FrameType.PAGES) {
        if (!pending) {
          throw new WireError("PAGES without XEN_PAGE_DATA", reader.bytesRead);
        }
        parsePagesPayload(f.payload, {
          pageCount,
          pageSize: XEN_PAGE_SIZE,
          codecs: table.negotiated,
        }, entries);
        const { head, pfns } = pending;
        pending = null;
        if (entries.count !== pfns.length) {
          throw new WireError(
            `PAGES has ${entries.count} entries, the PAGE_DATA record announced ${pfns.length} data pages`,
            reader.bytesRead,
          );
        }
        const record = new Uint8Array(
          head.length + pfns.length * XEN_PAGE_SIZE,
        );
        record.set(head);
        for (let i = 0; i < entries.count; i++) {
          const pfn = entries.pfn[i];
          if (pfn !== pfns[i]) {
            throw new WireError(
              `PAGES entry ${i} is pfn ${pfn}, the PAGE_DATA record says ${
                pfns[i]
              }`,
              reader.bytesRead,
            );
          }
          const id = entries.codecId[i];
          const o = entries.offset[i];
          table.decoderFor(id, pfn, reader.bytesRead).decode(
            pfn,
            f.payload.subarray(o, o + entries.length[i]),
            page,
          );
          table.applied(pfn, page, id);
          if (table.readsCurrent) store.set(pfn, page.slice());
          record.set(page, head.length + i * XEN_PAGE_SIZE);
        }
        stats.pages += entries.count;
        await write(record);
      } else if (f.type === XenFrameType.XEN_END) {
        const end = JSON.parse(new TextDecoder().decode(f.payload)) as {
          streamBytes: number;
          sha256: string;
        };
        const digest = hash.digest("hex");
        stats.digest = digest;
        stats.peerDigest = end.sha256;
        stats.verified = end.streamBytes === stats.streamBytes &&
          end.sha256 === digest;
        stats.rounds = f.round + (stats.pageRecords > 0 ? 1 : 0);
        if (!stats.verified) {
          throw new MigrationError(
            `Rebuilt stream does not match: ${stats.streamBytes} bytes with SHA-256 ${digest}, the source sent ${end.streamBytes} bytes with ${end.sha256}`,
          );
        }
        await out.close();
        await backDone;
        await reply(
          FrameType.RESULT,
          encodeResult({ verified: true, digest, pagesApplied: stats.pages }),
        );
        await sendLock;
        stats.wireBytes = reader.bytesRead;
        stats.durationMs = performance.now() - started;
        await writer.close().catch(() => {});
        return stats;
      } else if (f.type === FrameType.ABORT) {
        throw new MigrationError(
          `Source aborted: ${decodeAbort(f.payload).reason}`,
        );
      } else if (f.type === FrameType.ERROR) {
        throw new MigrationError(
          `Source failed: ${decodeError(f.payload).message}`,
        );
      } else {
        throw new WireError(
          `Unexpected ${xenFrameTypeName(f.type)} frame`,
          reader.bytesRead,
        );
      }
    }
  } catch (e) {
    await out.abort(e).catch(() => {});
    const message = e instanceof Error ? e.message : String(e);
    await reply(
      FrameType.ERROR,
      encodeError({ message: message.slice(0, 4000) }),
    ).catch(() => {});
    await sendLock.catch(() => {});
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    throw e;
  }
}
