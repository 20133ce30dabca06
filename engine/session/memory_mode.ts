/**
 * The native destination of the receive core: a {@link MemorySink} (sim
 * memory, or any sink that holds guest memory). FINAL is answered with
 * READY once every channel has applied every page; END brings the source's
 * range digests, which are compared with the destination's (hashed in
 * parallel by the decode Workers when the sink shares its memory); the sink
 * is committed before RESULT says verified, else discarded.
 *
 * @module
 */

import {
  DIGEST_RANGE_BYTES,
  hex,
  type MemoryDigest,
  memoryDigest,
  mismatchedRanges,
  rangeCount,
  rootDigest,
} from "../digest.ts";
import type { MemorySink } from "../driver.ts";
import { MigrationError, WireError } from "../errors.ts";
import { PAGE_SIZE } from "../plan.ts";
import { type Frame, FrameType } from "../wire/frame.ts";
import {
  decodeEnd,
  decodeFinal,
  encodeReady,
  encodeResult,
  type Hello,
} from "../wire/messages.ts";
import type { ReceiveMode, SinkChannels } from "./receive_core.ts";

/** What a memory session ends with. */
export interface MemoryResult {
  /** Whether the destination's digest equals the source's; the sink was committed iff true. */
  readonly verified: boolean;
  /** Pages applied, every channel together. */
  readonly pagesApplied: number;
  /** The destination's whole digest, hex. */
  readonly digest: string;
  /** Ranges whose digests differ (empty when verified). */
  readonly mismatched: readonly number[];
  /** Bytes per digest range. */
  readonly rangeBytes: number;
  /** The FINAL round. */
  readonly finalRound: number;
  /** Frame bytes read from the source. */
  readonly bytesReceived: number;
}

/** Progress a memory session reports beside the core's events. */
export type MemoryEvent =
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
  };

/** Options of {@link memoryMode}. */
export interface MemoryModeOptions {
  /** Creates the destination once HELLO is accepted; its geometry must match HELLO's. */
  createSink(hello: Hello): MemorySink | Promise<MemorySink>;
  /** Called with the mode's events. */
  onEvent?(event: MemoryEvent): void;
}

/**
 * A receive mode into memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   memoryDuplex,
 *   MiB,
 *   migrate,
 *   policy,
 *   SimMemorySink,
 *   SimVm,
 *   when,
 * } from "@hakobu/hakobu";
 * import { memoryMode } from "./memory_mode.ts";
 * import { receiveSession } from "./receive_core.ts";
 *
 * const [conn, destination] = memoryDuplex();
 * const received = receiveSession(
 *   destination,
 *   memoryMode({
 *     createSink: (h) =>
 *       SimMemorySink.create({
 *         pageSize: h.pageSize,
 *         pageCount: h.memoryBytes / h.pageSize,
 *       }),
 *   }),
 * );
 * await using vm = await SimVm.create({
 *   memoryBytes: MiB(4),
 *   workload: "idle",
 * });
 * const plan = policy("p").switchover(when.rounds(2)).compile();
 * await migrate({ plan, source: vm, conn, channels: 1 });
 * const outcome = await received;
 * assert.equal(outcome.aborted, false);
 * assert.equal(
 *   !outcome.aborted && !outcome.joined && outcome.result.verified,
 *   true,
 * );
 * ```
 */
export function memoryMode(
  options: MemoryModeOptions,
): ReceiveMode<MemoryResult> {
  let sink: MemorySink | null = null;
  let settled = false;
  let applied = 0;
  let finalRound = -1;
  let digest: Promise<MemoryDigest> | null = null;
  const emit = options.onEvent ?? (() => {});
  const zero = new Uint8Array(PAGE_SIZE);

  return {
    what: "memory",
    stream: "memory",
    frames: [FrameType.FINAL, FrameType.END],
    async open(hello: Hello): Promise<SinkChannels> {
      const pageCount = hello.memoryBytes / PAGE_SIZE;
      const s = await options.createSink(hello);
      sink = s;
      if (s.pageSize !== PAGE_SIZE || s.pageCount !== pageCount) {
        throw new MigrationError(
          `Cannot receive into the sink: it has ${s.pageCount} pages of ${s.pageSize} bytes, ` +
            `HELLO announced ${pageCount} pages of ${PAGE_SIZE} bytes`,
        );
      }
      if (s.shared) return { ...s.shared };
      // A sink without shared memory gets each decoded page on this thread.
      return {
        onPages(_channel, m) {
          for (let i = 0; i < m.count; i++) {
            const slot = m.slot[i];
            s.writePage(
              m.pfns[i],
              slot < 0
                ? zero
                : m.pages.subarray(slot * PAGE_SIZE, (slot + 1) * PAGE_SIZE),
            );
          }
        },
      };
    },
    async frame(frame: Frame, s) {
      if (frame.type === FrameType.FINAL) {
        if (finalRound >= 0) {
          throw new WireError(`A second FINAL at offset ${s.at}`, s.at);
        }
        const final = decodeFinal(frame.payload);
        if (final.round !== frame.round) {
          throw new WireError(
            `FINAL frame at offset ${s.at} is inconsistent: its JSON says round "${final.round}", its header round ${frame.round}`,
            s.at,
          );
        }
        s.closePages();
        applied = await s.syncPages();
        if (final.pagesTotal !== applied) {
          throw new WireError(
            `FINAL says the source sent "${final.pagesTotal}" pages, but ${applied} arrived`,
            s.at,
          );
        }
        finalRound = final.round;
        await s.reply(FrameType.READY, encodeReady({ pagesApplied: applied }));
        // Hash now, while END is on its way.
        const count = rangeCount(s.hello.memoryBytes, DIGEST_RANGE_BYTES);
        digest = sink!.shared
          ? s.pool.digest(DIGEST_RANGE_BYTES, count).then((ranges) => ({
            rangeBytes: DIGEST_RANGE_BYTES,
            ranges,
          }))
          : sink!.digest();
        digest.catch(() => {}); // awaited at END; a failure surfaces there
        emit({ type: "final", round: final.round, pagesApplied: applied });
        return null;
      }
      // END
      if (finalRound < 0 || !digest) {
        throw new WireError(
          `Unexpected END frame at offset ${s.at}: expected FINAL first`,
          s.at,
        );
      }
      const expected = decodeEnd(frame.payload);
      let actual = await digest;
      if (actual.rangeBytes !== expected.rangeBytes) {
        // The source hashed other ranges: hash as it did.
        actual = sink!.shared
          ? {
            rangeBytes: expected.rangeBytes,
            ranges: await s.pool.digest(
              expected.rangeBytes,
              rangeCount(s.hello.memoryBytes, expected.rangeBytes),
            ),
          }
          : await memoryDigestOf(sink!, expected.rangeBytes);
      }
      const mismatched = mismatchedRanges(expected, actual);
      const verified = mismatched.length === 0;
      if (verified) await sink!.commit();
      else await sink!.discard();
      settled = true;
      const digestHex = hex(rootDigest(actual.ranges));
      await s.reply(
        FrameType.RESULT,
        encodeResult({
          verified,
          digest: digestHex,
          pagesApplied: applied,
          mismatched,
        }),
      );
      emit({
        type: "result",
        verified,
        digest: digestHex,
        pagesApplied: applied,
      });
      return {
        verified,
        pagesApplied: applied,
        digest: digestHex,
        mismatched,
        rangeBytes: actual.rangeBytes,
        finalRound,
        bytesReceived: s.bytesRead,
      };
    },
    waiting: () => finalRound < 0 ? "FINAL" : "END",
    async discard(): Promise<void> {
      if (sink && !settled) {
        settled = true;
        await sink.discard();
      }
    },
  };
}

/** A sink's digest with other ranges than its own: read it page by page. */
async function memoryDigestOf(
  sink: MemorySink,
  rangeBytes: number,
): Promise<MemoryDigest> {
  const memory = new Uint8Array(sink.pageCount * sink.pageSize);
  for (let p = 0; p < sink.pageCount; p++) {
    memory.set(sink.readPage(p), p * sink.pageSize);
  }
  return await memoryDigest(memory, rangeBytes);
}
