/**
 * The native destination of the receive core: a {@link MemorySink} (sim
 * memory, or any sink that holds guest memory). FINAL is answered with
 * READY once every channel has applied every page; END brings the source's
 * range digests, which are compared with the destination's (hashed in
 * parallel by the decode Workers when the sink shares its memory, reading
 * only the ranges it wrote); the sink is committed before RESULT says
 * verified, else discarded.
 *
 * With the commit protocol (HELLO offers it, WELCOME takes it), a verified
 * RESULT does not commit the sink: the session waits for the source's
 * COMMIT, commits then and answers COMMITTED. A session that never gets
 * COMMIT — the source sent ABORT, its connection was lost and it is not
 * resumable, its resume grace passed, or its frame timeout — discards.
 *
 * With a verification scheme negotiated in HELLO/WELCOME, ranges that
 * differ are narrowed to pages: DIGEST_ASK names the first
 * {@link MAX_MISMATCHES} of them, the source answers PAGE_DIGESTS (a
 * digest per page of those ranges), and RESULT names the pages that differ.
 *
 * @module
 */

import {
  chooseScheme,
  digestBytes,
  type DigestScheme,
  hex,
  type MemoryDigest,
  memoryDigest,
  mismatchedPages,
  mismatchedRanges,
  pageDigests,
  rangeCount,
  rangePages,
  rootDigest,
  schemeRangeBytes,
} from "../digest.ts";
import type { MemorySink } from "../driver.ts";
import { MigrationError, WireError } from "../errors.ts";
import { PAGE_SIZE } from "../plan.ts";
import { bestEffort } from "./best_effort.ts";
import { type Frame, FrameType } from "../wire/frame.ts";
import {
  decodeCommit,
  decodeEnd,
  decodeFinal,
  decodePageDigests,
  encodeCommitted,
  encodeDigestAsk,
  encodeReady,
  encodeResult,
  type Hello,
  MAX_MISMATCHED_PAGES,
  MAX_MISMATCHES,
  type Result,
} from "../wire/messages.ts";
import type {
  ReceiveMode,
  SessionControl,
  SinkChannels,
} from "./receive_core.ts";

/** What a memory session ends with. */
export interface MemoryResult {
  /** Whether the destination's digest equals the source's; the sink was committed iff true. */
  readonly verified: boolean;
  /** Pages applied, every channel together. */
  readonly pagesApplied: number;
  /** The destination's whole digest, hex. */
  readonly digest: string;
  /** Ranges whose digests differ, the first {@link MAX_MISMATCHES} (empty when verified). */
  readonly mismatched: readonly number[];
  /** How many ranges differ in all. */
  readonly differingRanges: number;
  /**
   * Pages that differ in the listed ranges, the first
   * {@link MAX_MISMATCHED_PAGES} (empty when verified, or when no scheme
   * was negotiated and only ranges were compared).
   */
  readonly mismatchedPages: readonly number[];
  /** How many pages of the listed ranges differ in all. */
  readonly differingPages: number;
  /** Bytes per digest range. */
  readonly rangeBytes: number;
  /** How memory was hashed. */
  readonly scheme: DigestScheme;
  /** The FINAL round. */
  readonly finalRound: number;
  /** Frame bytes read from the source. */
  readonly bytesReceived: number;
  /** The commit protocol was used: the sink was committed on the source's COMMIT, not at RESULT. */
  readonly commit: boolean;
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
  }
  | {
    /** Commit protocol: the source's COMMIT came and the sink is committed. */
    readonly type: "committed";
    /** The committed memory's digest, hex. */
    readonly digest: string;
  };

/** Options of {@link memoryMode}. */
export interface MemoryModeOptions {
  /** Creates the destination once HELLO is accepted; its geometry must match HELLO's. */
  createSink(hello: Hello): MemorySink | Promise<MemorySink>;
  /** Called with the mode's events. */
  onEvent?(event: MemoryEvent): void;
  /**
   * Called once every page is applied, before the destination is hashed
   * (tests corrupt destination memory here to check that verification
   * names the pages).
   */
  beforeDigest?(sink: MemorySink): void | Promise<void>;
  /**
   * Take the commit protocol when HELLO offers it (default true): commit
   * only on the source's COMMIT. False behaves as a receiver from before
   * the protocol (it commits at RESULT).
   */
  commit?: boolean;
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
  // The negotiated scheme (null: protocol 2's SHA-256 END, ranges only).
  let negotiated: DigestScheme | null = null;
  let endSeen = false;
  // After END, with ranges that differ: those DIGEST_ASK named.
  let asked: { ranges: number[]; all: number; actual: MemoryDigest } | null =
    null;
  // The commit protocol: negotiated; the verified RESULT that waits for
  // COMMIT; the digest committed.
  let commitProtocol = false;
  let pending: { wire: Result; result: MemoryResult } | null = null;
  let committedDigest: string | null = null;

  /**
   * Commits or discards, sends RESULT, and says how the session ended; with
   * the commit protocol a verified RESULT commits nothing yet and the
   * session waits for COMMIT (null).
   */
  const finish = async (
    s: SessionControl,
    actual: MemoryDigest,
    ranges: { list: number[]; all: number },
    pages: { pages: number[]; count: number },
  ): Promise<MemoryResult | null> => {
    const verified = ranges.all === 0;
    const digestHex = hex(rootDigest(actual.ranges));
    const wire: Result = {
      verified,
      digest: digestHex,
      pagesApplied: applied,
      mismatched: ranges.list,
      differingRanges: ranges.all,
      ...(negotiated
        ? { mismatchedPages: pages.pages, differingPages: pages.count }
        : {}),
    };
    const result: MemoryResult = {
      verified,
      pagesApplied: applied,
      digest: digestHex,
      mismatched: ranges.list,
      differingRanges: ranges.all,
      mismatchedPages: pages.pages,
      differingPages: pages.count,
      rangeBytes: actual.rangeBytes,
      scheme: actual.scheme ?? "sha256",
      finalRound,
      bytesReceived: s.bytesRead,
      commit: commitProtocol,
    };
    if (verified && commitProtocol) {
      // Not the VM's yet: only the source's COMMIT makes it so. A RESULT
      // lost on the way is not waited for here: the read that follows
      // finds the link gone (and parks the session, when it is resumable).
      pending = { wire, result };
      s.reply(FrameType.RESULT, encodeResult(wire)).catch(() => {});
      emit({
        type: "result",
        verified,
        digest: digestHex,
        pagesApplied: applied,
      });
      return null;
    }
    if (verified) {
      await sink!.commit();
      committedDigest = digestHex;
    } else await sink!.discard();
    settled = true;
    await s.reply(FrameType.RESULT, encodeResult(wire));
    emit({
      type: "result",
      verified,
      digest: digestHex,
      pagesApplied: applied,
    });
    return result;
  };

  return {
    what: "memory",
    stream: "memory",
    frames: [
      FrameType.FINAL,
      FrameType.END,
      FrameType.PAGE_DIGESTS,
      FrameType.COMMIT,
    ],
    verify(hello: Hello): string | undefined {
      negotiated = chooseScheme(hello.verify);
      return negotiated ?? undefined;
    },
    commit(hello: Hello): boolean {
      commitProtocol = hello.commit === true && options.commit !== false;
      return commitProtocol;
    },
    verdict: () => pending?.wire ?? null,
    committed: () => committedDigest,
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
      if (frame.type === FrameType.COMMIT) {
        if (!pending) {
          throw new WireError(
            `Unexpected COMMIT frame at offset ${s.at}: no verified RESULT waits for it`,
            s.at,
          );
        }
        const { digest } = decodeCommit(frame.payload);
        if (digest !== pending.wire.digest) {
          throw new WireError(
            `COMMIT frame at offset ${s.at} commits digest ${digest}, but this receiver verified ${pending.wire.digest}`,
            s.at,
          );
        }
        await sink!.commit();
        settled = true;
        committedDigest = digest;
        const done = pending.result;
        pending = null;
        // A COMMITTED lost on the way is asked for again by a RESUME, which
        // the registry answers from this session's end.
        await bestEffort(
          s.reply(FrameType.COMMITTED, encodeCommitted({ digest })),
        );
        emit({ type: "committed", digest });
        return { ...done, bytesReceived: s.bytesRead };
      }
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
        await options.beforeDigest?.(sink!);
        // Hash now, while END is on its way.
        const scheme = negotiated ?? "sha256";
        const rangeBytes = schemeRangeBytes(scheme);
        const count = rangeCount(s.hello.memoryBytes, rangeBytes);
        digest = sink!.shared
          ? s.pool.digest(rangeBytes, count, scheme).then((ranges) => ({
            rangeBytes,
            ranges,
            scheme,
          }))
          : negotiated
          ? memoryDigestOf(sink!, rangeBytes, scheme)
          : sink!.digest();
        digest.catch(() => {}); // awaited at END; a failure surfaces there
        emit({ type: "final", round: final.round, pagesApplied: applied });
        return null;
      }
      if (frame.type === FrameType.PAGE_DIGESTS) {
        if (!asked) {
          throw new WireError(
            `Unexpected PAGE_DIGESTS frame at offset ${s.at}: no DIGEST_ASK was sent`,
            s.at,
          );
        }
        const scheme = negotiated!;
        const where = {
          scheme,
          rangeBytes: asked.actual.rangeBytes,
          pageSize: PAGE_SIZE,
          memoryBytes: s.hello.memoryBytes,
        };
        const theirs = decodePageDigests(frame.payload);
        const pages = asked.ranges.reduce((n, r) => {
          const [a, b] = rangePages(r, where);
          return n + b - a;
        }, 0);
        if (
          theirs.ranges.length !== asked.ranges.length ||
          theirs.ranges.some((r, i) => r !== asked!.ranges[i])
        ) {
          throw new WireError(
            `PAGE_DIGESTS frame at offset ${s.at} answers ranges ${
              theirs.ranges.join(", ")
            }, but DIGEST_ASK asked for ${asked.ranges.join(", ")}`,
            s.at,
          );
        }
        if (
          theirs.digestBytes !== digestBytes(scheme) ||
          theirs.digests.length !== pages * theirs.digestBytes
        ) {
          throw new WireError(
            `PAGE_DIGESTS frame at offset ${s.at} carries ${theirs.digests.length} bytes of ${theirs.digestBytes}-byte digests: ` +
              `expected ${pages} "${scheme}" digests of ${
                digestBytes(scheme)
              } bytes, one per page of the ranges asked for`,
            s.at,
          );
        }
        const ours = pageDigests(pageReader(sink!), asked.ranges, where);
        const diff = mismatchedPages(theirs.digests, ours, asked.ranges, {
          ...where,
          limit: MAX_MISMATCHED_PAGES,
        });
        return await finish(
          s,
          asked.actual,
          { list: asked.ranges, all: asked.all },
          diff,
        );
      }
      // END
      if (finalRound < 0 || !digest) {
        throw new WireError(
          `Unexpected END frame at offset ${s.at}: expected FINAL first`,
          s.at,
        );
      }
      if (endSeen) {
        throw new WireError(`A second END at offset ${s.at}`, s.at);
      }
      endSeen = true;
      const scheme = negotiated ?? "sha256";
      const expected = {
        ...decodeEnd(frame.payload, digestBytes(scheme)),
        scheme,
      };
      if (negotiated) {
        // A negotiated scheme fixes the ranges: no rehashing at the
        // peer's choice, and each range's page digests fit one frame.
        const rangeBytes = schemeRangeBytes(negotiated);
        const count = rangeCount(s.hello.memoryBytes, rangeBytes);
        if (
          expected.rangeBytes !== rangeBytes ||
          expected.ranges.length !== count * digestBytes(negotiated)
        ) {
          throw new WireError(
            `END frame at offset ${s.at} carries ${
              expected.ranges.length / digestBytes(negotiated)
            } ranges of ${expected.rangeBytes} bytes: "${negotiated}" verification of ${s.hello.memoryBytes} bytes takes ${count} ranges of ${rangeBytes} bytes`,
            s.at,
          );
        }
      }
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
      const all = mismatchedRanges(expected, actual, Infinity);
      const list = all.slice(0, MAX_MISMATCHES);
      if (negotiated && all.length > 0) {
        // The narrower comparison: page digests of the listed ranges.
        asked = { ranges: list, all: all.length, actual };
        await s.reply(
          FrameType.DIGEST_ASK,
          encodeDigestAsk({ ranges: list }),
        );
        return null;
      }
      return await finish(s, actual, { list, all: all.length }, {
        pages: [],
        count: 0,
      });
    },
    waiting: () =>
      pending
        ? "COMMIT"
        : finalRound < 0
        ? "FINAL"
        : asked
        ? "PAGE_DIGESTS"
        : "END",
    async discard(): Promise<void> {
      if (sink && !settled) {
        settled = true;
        await sink.discard();
      }
    },
  };
}

/** A sink's digest with other ranges or another scheme than its own: read it page by page. */
async function memoryDigestOf(
  sink: MemorySink,
  rangeBytes: number,
  scheme: DigestScheme = "sha256",
): Promise<MemoryDigest> {
  const memory = new Uint8Array(sink.pageCount * sink.pageSize);
  for (let p = 0; p < sink.pageCount; p++) {
    memory.set(sink.readPage(p), p * sink.pageSize);
  }
  return await memoryDigest(memory, rangeBytes, scheme);
}

/** Each page of a sink: from its shared memory when it has some. */
function pageReader(sink: MemorySink): (pfn: number) => Uint8Array {
  if (!sink.shared) return (pfn) => sink.readPage(pfn);
  const memory = new Uint8Array(sink.shared.memory);
  const ps = sink.pageSize;
  return (pfn) => memory.subarray(pfn * ps, (pfn + 1) * ps);
}
