/**
 * The receiving side of a migration: one session on one connection, from
 * HELLO to RESULT. Validates every frame before it touches memory, decodes
 * pages into one reused scratch page, writes them to a {@link MemorySink},
 * and commits the sink only when the whole-memory digest matches the
 * source's.
 *
 * @module
 */

import type { Codec } from "./codecs/codec.ts";
import { hex } from "./digest.ts";
import type { MemorySink } from "./driver.ts";
import { MigrationError, WireError } from "./errors.ts";
import type { WireConn } from "./wire/duplex.ts";
import {
  type Frame,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
} from "./wire/frame.ts";
import { DecoderTable, negotiateCodecs } from "./wire/decoder_table.ts";
import { FrameReader } from "./wire/frame_reader.ts";
import { FrameWriter } from "./wire/frame_writer.ts";
import {
  decodeAbort,
  decodeCodec,
  decodeEnd,
  decodeError,
  decodeFinal,
  decodeHello,
  decodeRoundEnd,
  encodeError,
  encodeReady,
  encodeResult,
  encodeWelcome,
  type Hello,
  PROTOCOL_VERSION,
  type RoundEnd,
} from "./wire/messages.ts";
import { PageEntries, parsePagesPayload } from "./wire/pages.ts";

/** The only page size protocol 1 carries. */
const PAGE_SIZE = 4096;

/** Default largest memory a receiver accepts: 64 GiB. */
export const DEFAULT_MAX_MEMORY_BYTES: number = 64 * 1024 ** 3;

/** How long the receiver waits to hand its ERROR frame over, or to close, before giving up on it. */
const GIVE_UP_MS = 2000;

/** Progress of a receiving session, for logs and progress bars. */
export type ReceiverEvent =
  | {
    /** HELLO accepted, sink created, WELCOME sent. */
    readonly type: "hello";
    readonly hello: Hello;
  }
  | {
    /** A ROUND_END arrived. */
    readonly type: "round";
    /** The source's accounting, as sent. */
    readonly roundEnd: RoundEnd;
    /** Page entries this receiver applied from PAGES frames of that round. */
    readonly pagesReceived: number;
    /** Frame bytes read so far in the session. */
    readonly bytesReceived: number;
  }
  | {
    /** FINAL arrived and READY was sent: every page is applied. */
    readonly type: "final";
    readonly round: number;
    readonly pagesApplied: number;
  }
  | {
    /** END compared and RESULT sent. */
    readonly type: "result";
    readonly verified: boolean;
    /** Destination digest, hex. */
    readonly digest: string;
    readonly pagesApplied: number;
  }
  | {
    /** The source sent ABORT. */
    readonly type: "abort";
    readonly reason: string;
  };

/** Options of {@link receiveMigration}. */
export interface ReceiverOptions {
  /**
   * Creates the destination memory once HELLO is accepted. Its `pageSize`
   * and `pageCount` must match the HELLO.
   */
  createSink(hello: Hello): MemorySink | Promise<MemorySink>;
  /** Largest `memoryBytes` a HELLO may announce (default 64 GiB). */
  maxMemoryBytes?: number;
  /** Codecs this receiver knows (default: the registry's). */
  codecs?: readonly Codec[];
  /** Called for each {@link ReceiverEvent}; an exception fails the session. */
  onEvent?(event: ReceiverEvent): void;
}

/** How a receiving session ended (when it did not fail). */
export interface ReceiveResult {
  /** Whether the destination digest equals the source's; the sink was committed iff true. */
  readonly verified: boolean;
  /** Whether the source sent ABORT; the sink (if any) was discarded. */
  readonly aborted: boolean;
  /** Page entries applied to the sink. */
  readonly pagesApplied: number;
  /** Frame bytes read from the source. */
  readonly bytesReceived: number;
  /** Distinct round numbers seen in PAGES, ROUND_END and FINAL frames. */
  readonly rounds: number;
  /** Memory size from HELLO (0 when aborted before HELLO). */
  readonly memoryBytes: number;
  /** VM description from HELLO. */
  readonly vm: string;
  /** Policy name from HELLO. */
  readonly policy: string;
  /** Destination digest, lower-case hex; `""` when aborted. */
  readonly digest: string;
  /** Milliseconds from HELLO to the end of the session. */
  readonly durationMs: number;
}

type Phase = "hello" | "rounds" | "final";

const EXPECTED: Record<Phase, string> = {
  hello: "HELLO",
  rounds: "PAGES, ROUND_END, FINAL or ABORT",
  final: "END or ABORT",
};

/**
 * Receives one migration on `conn`: HELLO → WELCOME, PAGES/ROUND_END …,
 * FINAL → READY, END → RESULT. See `docs/wire-format.md`.
 *
 * Every PAGES frame is validated whole (checksum, every entry header) before
 * any of its pages is written. On a protocol violation, a codec error, a
 * sink error, an ERROR from the source or the connection ending before END,
 * it sends ERROR (when the source did not fail first), discards the sink and
 * rejects; it never resolves as verified unless the digests match. The sink
 * is committed before RESULT `{verified: true}` is sent, so the source never
 * hears "verified" about memory that failed to commit.
 *
 * When the promise settles the connection's streams are closed (for a
 * `Deno.Conn` that closes the connection).
 *
 * @example
 * ```ts
 * const listener = Deno.listen({ port: 7070 });
 * const conn = await listener.accept();
 * const result = await receiveMigration(conn, { createSink: (h) => new MySink(h.memoryBytes) });
 * console.log(result.verified, result.pagesApplied);
 * ```
 *
 * @throws {WireError} on a protocol violation, {@link CodecError} on a bad
 *   page, {@link MigrationError} when HELLO is refused or the source failed.
 */
export async function receiveMigration(
  conn: WireConn,
  options: ReceiverOptions,
): Promise<ReceiveResult> {
  const reader = new FrameReader(conn.readable);
  const writer = new FrameWriter(conn.writable);
  const emit = options.onEvent ?? (() => {});
  let started = performance.now();
  let phase: Phase = "hello";
  let hello: Hello | undefined;
  let sink: MemorySink | undefined;
  let settled = false; // sink committed or discarded
  let peerFailed = false;
  let pagesApplied = 0;
  let pageCount = 0;
  let table = new DecoderTable(new Map(), {
    pageSize: PAGE_SIZE,
    pageCount: 0,
  });
  const entries = new PageEntries(0);
  let scratch = new Uint8Array(0);
  const rounds = new Set<number>();
  const roundPages = new Map<number, number>();
  let digest: Promise<Uint8Array> | undefined;

  const result = (
    verified: boolean,
    aborted: boolean,
    digestHex: string,
  ): ReceiveResult => ({
    verified,
    aborted,
    pagesApplied,
    bytesReceived: reader.bytesRead,
    rounds: rounds.size,
    memoryBytes: hello?.memoryBytes ?? 0,
    vm: hello?.vm ?? "",
    policy: hello?.policy ?? "",
    digest: digestHex,
    durationMs: performance.now() - started,
  });

  const applyPages = (frame: Frame): void => {
    const { payload } = frame;
    parsePagesPayload(payload, {
      pageCount,
      pageSize: PAGE_SIZE,
      codecs: table.negotiated,
    }, entries);
    const s = sink!;
    // every entry's codec announced before any page is written
    for (let i = 0; i < entries.count; i++) {
      table.decoderFor(entries.codecId[i], entries.pfn[i]);
    }
    for (let i = 0; i < entries.count; i++) {
      const pfn = entries.pfn[i];
      const id = entries.codecId[i];
      const off = entries.offset[i];
      table.decoderFor(id, pfn).decode(
        pfn,
        payload.subarray(off, off + entries.length[i]),
        scratch,
      );
      s.writePage(pfn, scratch);
      table.applied(pfn, scratch, id);
      pagesApplied++;
    }
    rounds.add(frame.round);
    roundPages.set(
      frame.round,
      (roundPages.get(frame.round) ?? 0) + entries.count,
    );
  };

  try {
    for (;;) {
      const frame = await reader.next();
      if (frame === null) {
        throw new WireError(
          `Connection closed before ${
            phase === "final" ? "END" : phase === "rounds" ? "FINAL" : "HELLO"
          }: the migration is incomplete after ${pagesApplied} pages`,
          reader.bytesRead,
        );
      }
      const at = reader.bytesRead - HEADER_BYTES - frame.length;
      switch (frame.type) {
        case FrameType.HELLO: {
          if (phase !== "hello") break;
          started = performance.now();
          hello = decodeHello(frame.payload);
          const negotiated = checkHello(hello, options);
          pageCount = hello.memoryBytes / PAGE_SIZE;
          const created = await options.createSink(hello);
          sink = created;
          // decoders are created at each codec's CODEC frame, not here
          table = new DecoderTable(negotiated, {
            pageSize: PAGE_SIZE,
            pageCount,
            current: (pfn: number) => created.readPage(pfn),
          });
          if (
            created.pageSize !== PAGE_SIZE || created.pageCount !== pageCount
          ) {
            throw new MigrationError(
              `Cannot receive into the sink: it has ${created.pageCount} pages of ${created.pageSize} bytes, ` +
                `HELLO announced ${pageCount} pages of ${PAGE_SIZE} bytes`,
            );
          }
          scratch = new Uint8Array(PAGE_SIZE);
          await writer.write(
            FrameType.WELCOME,
            0,
            encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
          );
          phase = "rounds";
          emit({ type: "hello", hello });
          continue;
        }
        case FrameType.CODEC: {
          if (phase !== "rounds") break;
          table.announce(decodeCodec(frame.payload), at);
          continue;
        }
        case FrameType.PAGES: {
          if (phase !== "rounds") break;
          applyPages(frame);
          continue;
        }
        case FrameType.ROUND_END: {
          if (phase !== "rounds") break;
          const roundEnd = decodeRoundEnd(frame.payload);
          checkRound("ROUND_END", roundEnd.round, frame.round, at);
          rounds.add(roundEnd.round);
          emit({
            type: "round",
            roundEnd,
            pagesReceived: roundPages.get(roundEnd.round) ?? 0,
            bytesReceived: reader.bytesRead,
          });
          continue;
        }
        case FrameType.FINAL: {
          if (phase !== "rounds") break;
          const final = decodeFinal(frame.payload);
          checkRound("FINAL", final.round, frame.round, at);
          if (final.pagesTotal !== pagesApplied) {
            throw new WireError(
              `FINAL says the source sent "${final.pagesTotal}" pages, but ${pagesApplied} arrived`,
              at,
            );
          }
          rounds.add(final.round);
          await writer.write(FrameType.READY, 0, encodeReady({ pagesApplied }));
          phase = "final";
          digest = sink!.digest();
          digest.catch(() => {}); // awaited at END; a failure surfaces there
          emit({ type: "final", round: final.round, pagesApplied });
          continue;
        }
        case FrameType.END: {
          if (phase !== "final") break;
          const expected = decodeEnd(frame.payload);
          const actual = await digest!;
          const digestHex = hex(actual);
          const verified = hex(expected) === digestHex;
          if (verified) await sink!.commit();
          else await sink!.discard();
          settled = true;
          await writer.write(
            FrameType.RESULT,
            0,
            encodeResult({ verified, digest: digestHex, pagesApplied }),
          );
          emit({ type: "result", verified, digest: digestHex, pagesApplied });
          return result(verified, false, digestHex);
        }
        case FrameType.ABORT: {
          const { reason } = decodeAbort(frame.payload);
          if (sink) await sink.discard();
          settled = true;
          emit({ type: "abort", reason });
          return result(false, true, "");
        }
        case FrameType.ERROR: {
          const { message } = decodeError(frame.payload);
          peerFailed = true;
          throw new MigrationError(`Source failed: ${message}`);
        }
      }
      throw new WireError(
        `Unexpected ${
          frameTypeName(frame.type)
        } frame at offset ${at}: expected ${EXPECTED[phase]}`,
        at,
      );
    }
  } catch (error) {
    if (!peerFailed) await sendError(writer, error);
    if (sink && !settled) {
      try {
        await sink.discard();
      } catch {
        // The session error is the one to report.
      }
    }
    throw error;
  } finally {
    await closeQuietly(reader, writer);
  }
}

/** Checks a HELLO against what this receiver supports; returns the negotiated codecs by id. */
function checkHello(
  hello: Hello,
  options: ReceiverOptions,
): Map<number, Codec> {
  if (hello.protocol !== PROTOCOL_VERSION) {
    throw new MigrationError(
      `Unsupported protocol version "${hello.protocol}": this receiver speaks protocol ${PROTOCOL_VERSION}`,
    );
  }
  if (hello.pageSize !== PAGE_SIZE) {
    throw new MigrationError(
      `Unsupported page size "${hello.pageSize}": this receiver handles ${PAGE_SIZE}-byte pages`,
    );
  }
  const max = options.maxMemoryBytes ?? DEFAULT_MAX_MEMORY_BYTES;
  if (hello.memoryBytes <= 0 || hello.memoryBytes % PAGE_SIZE !== 0) {
    throw new MigrationError(
      `Bad memory size "${hello.memoryBytes}": must be a positive multiple of the ${PAGE_SIZE}-byte page size`,
    );
  }
  if (hello.memoryBytes > max) {
    throw new MigrationError(
      `Memory size "${hello.memoryBytes}" is over this receiver's limit: at most ${max} bytes`,
    );
  }
  return negotiateCodecs(hello.codecs, options.codecs);
}

function checkRound(
  what: string,
  inJson: number,
  inHeader: number,
  at: number,
): void {
  if (inJson !== inHeader) {
    throw new WireError(
      `${what} frame at offset ${at} is inconsistent: its JSON says round "${inJson}", its header round ${inHeader}`,
      at,
    );
  }
}

/** Best effort: tells the source why the session stops, without waiting long. */
async function sendError(writer: FrameWriter, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await quietly(writer.write(FrameType.ERROR, 0, encodeError({ message })));
}

/** Closes our side first (the source sees the end of stream), then stops reading. */
async function closeQuietly(
  reader: FrameReader,
  writer: FrameWriter,
): Promise<void> {
  await quietly(writer.close());
  await quietly(reader.cancel());
}

/** Waits for `p` at most {@link GIVE_UP_MS}, ignoring its failure: the connection may be gone or stuck. */
async function quietly(p: Promise<void>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  p.catch(() => {});
  try {
    await Promise.race([
      p,
      new Promise((resolve) => timer = setTimeout(resolve, GIVE_UP_MS)),
    ]);
  } catch {
    // Already closed or reset.
  } finally {
    clearTimeout(timer);
  }
}
