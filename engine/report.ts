/**
 * What a migration reports: one {@link RoundReport} per round and a
 * {@link MigrationReport} with totals. Plain data, ready for JSON.
 *
 * @module
 */

import type { Decision } from "./plan.ts";

/** One channel's part of a round ({@link RoundReport.channels}). */
export interface ChannelRoundReport {
  /** Pages the channel sent. */
  readonly pages: number;
  /** Its BATCH frame bytes. */
  readonly wireBytes: number;
  /** Its pages per codec name. */
  readonly codecMix: Readonly<Record<string, number>>;
}

/** Statistics of one pre-copy round (or of the final stop-and-copy round). */
export interface RoundReport {
  /** Round index; the stop-and-copy round comes last with `final: true`. */
  readonly round: number;
  /** True for the stop-and-copy round, run with the VM paused. */
  readonly final: boolean;
  /** Pages found dirty at the sync that started the round (round 0: all pages). */
  readonly dirtyPages: number;
  /** Pages sent in this round. */
  readonly pagesSent: number;
  /** Page bytes before encoding. */
  readonly rawBytes: number;
  /** Bytes on the wire, frame and entry headers included. */
  readonly wireBytes: number;
  /** Pages per codec name. */
  readonly codecMix: Readonly<Record<string, number>>;
  /**
   * Each channel's share of the round, in channel order (absent in reports
   * written before channels).
   */
  readonly channels?: readonly ChannelRoundReport[];
  /** The active codec chain. */
  readonly codecs: readonly string[];
  /** Wall time of the round in milliseconds. */
  readonly durationMs: number;
  /** Guest dirtying rate measured over the round, bytes per second. */
  readonly dirtyRate: number;
  /** Page bytes sent per second. */
  readonly sendRate: number;
  /** Wire bytes per second. */
  readonly wireRate: number;
  /** Pages dirty when the round ended (what the next round would send). */
  readonly remainingPages: number;
  /** The plan's decision after the round (`"final"` for the stop-and-copy round). */
  readonly decision: Decision | "final";
  /** Why, in words. */
  readonly reason: string;
}

/**
 * What hakobu compared before it called a migration verified.
 *
 * - `"memory-digest"`: native mode; the source hashed its memory at
 *   switchover, the receiver hashed what it applied, and both compared the
 *   two digests.
 * - `"stream-digest"`: stream mode through hakobu's tunnel; the receiver
 *   checked the rebuilt hypervisor stream against the source stream's length
 *   and XXH3-128 before it handed over the stream's end, and the sender
 *   checked the receiver's digest against its own.
 * - `"none"`: the hypervisor's own transport carried the bytes and hakobu
 *   saw none of them, so nothing was compared.
 */
export type Verification = "memory-digest" | "stream-digest" | "none";

/**
 * What a check of the migrated bytes found: for a migration through hakobu's
 * tunnel (QEMU's or Xen's), the tunnel sender's comparison of the receiver's digest of the
 * rebuilt stream with its own digest of the stream the source hypervisor
 * wrote.
 */
export interface StreamVerdict {
  /** True only when both digests were taken and are equal. */
  readonly verified: boolean;
  /** XXH3-128 (hex, 32 digits) of the stream the source hypervisor wrote; empty when unknown. */
  readonly sourceDigest: string;
  /** XXH3-128 (hex, 32 digits) of the stream rebuilt for the destination; empty when unknown. */
  readonly destinationDigest: string;
  /** One sentence: what was compared, or why nothing could be. */
  readonly detail: string;
}

/** One lost link a migration resumed from ({@link MigrationReport.resumes}). */
export interface ResumeReport {
  /** The round being sent when the link was lost. */
  readonly round: number;
  /** Why the link was given up, in words. */
  readonly reason: string;
  /** Reconnections tried (the last one resumed). */
  readonly attempts: number;
  /** Milliseconds from losing the link to the receiver's RESUMED; the VM ran on meanwhile. */
  readonly downMs: number;
  /** Wire bytes written before the link was lost, the whole migration so far. */
  readonly wireBytesBefore: number;
  /** Pages sent (or about to be) whose latest version the receiver did not hold: what was left to send. */
  readonly pagesMissing: number;
  /** Pages the guest dirtied since the last sync, which the source sends as well. */
  readonly pagesDirtied: number;
  /** Pages of the next round: the union of the two. */
  readonly pagesToSend: number;
}

/**
 * How a migration that negotiated the commit protocol ended it: the source
 * sent COMMIT after a verified RESULT and the receiver answered COMMITTED,
 * or the verdict was not verified and the VM resumed at the source.
 */
export interface CommitReport {
  /** The receiver confirmed COMMITTED: the destination holds the VM (its copy at the source stays paused). */
  readonly committed: boolean;
  /** Reconnections (RESUME) that learning the verdict or confirming the commit took after a lost link. */
  readonly reconnects: number;
}

/**
 * Where the destination's memory differs from the source's: the ranges
 * whose digests differ and, where a scheme was negotiated, the pages of
 * those ranges whose digests differ. The lists are bounded; the counts are
 * not.
 */
export interface MemoryMismatch {
  /** Bytes per digest range. */
  readonly rangeBytes: number;
  /** The first ranges that differ (at most 64). */
  readonly ranges: readonly number[];
  /** How many ranges differ in all. */
  readonly differingRanges: number;
  /** The first pages that differ in the listed ranges (at most 256; empty when only ranges were compared). */
  readonly pages: readonly number[];
  /** How many pages of the listed ranges differ in all. */
  readonly differingPages: number;
}

/**
 * A mismatch in words: how many ranges differ and the first ones, then how
 * many pages of those differ and the first ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mismatchText } from "@hakobu/hakobu";
 *
 * assert.equal(
 *   mismatchText({
 *     rangeBytes: 1 << 20,
 *     ranges: [0, 3],
 *     differingRanges: 2,
 *     pages: [5, 1000],
 *     differingPages: 2,
 *   }),
 *   "2 ranges of 1 MiB differ: 0, 3; 2 pages differ in those ranges: 5, 1000",
 * );
 * ```
 */
export function mismatchText(m: MemoryMismatch): string {
  const first = (shown: number, all: number) =>
    all > shown ? ` (the first ${shown} of ${all})` : "";
  const size = m.rangeBytes % (1 << 20) === 0
    ? `${m.rangeBytes / (1 << 20)} MiB`
    : `${m.rangeBytes} bytes`;
  let s = `${m.differingRanges} range${
    m.differingRanges === 1 ? "" : "s"
  } of ${size} differ${m.differingRanges === 1 ? "s" : ""}${
    first(m.ranges.length, m.differingRanges)
  }: ${m.ranges.join(", ")}`;
  if (m.pages.length > 0) {
    s += `; ${m.differingPages} page${
      m.differingPages === 1 ? "" : "s"
    } differ${m.differingPages === 1 ? "s" : ""} in ${
      m.ranges.length === 1 ? "that range" : "those ranges"
    }${first(m.pages.length, m.differingPages)}: ${m.pages.join(", ")}`;
  }
  return s;
}

/** The outcome of a whole migration. */
export interface MigrationReport {
  /**
   * True only when hakobu compared what the destination got with what the
   * source sent and the two matched ({@link verification} says what was
   * compared). Never true when `verification` is `"none"`.
   */
  readonly verified: boolean;
  /** What was compared to decide {@link verified}. */
  readonly verification: Verification;
  /** True when the policy or the user aborted the migration. */
  readonly aborted: boolean;
  /** Why the migration ended as it did. */
  readonly outcome: string;
  /** The policy's name. */
  readonly policy: string;
  /** The source VM, as its driver describes it. */
  readonly vm: string;
  /** Memory size in bytes. */
  readonly memoryBytes: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Link pacing in bytes per second, or null when unpaced. */
  readonly bandwidth: number | null;
  /** ISO time the migration started. */
  readonly startedAt: string;
  /** From the handshake to the receiver's verdict, milliseconds. */
  readonly totalTimeMs: number;
  /** From pausing the source to the receiver having applied every page, milliseconds. */
  readonly downtimeMs: number;
  /** Time spent hashing and comparing memory after the destination was ready, milliseconds. */
  readonly verifyMs: number;
  /** Bytes on the wire, all frames. */
  readonly wireBytes: number;
  /** Page bytes sent before encoding (pages sent more than once count each time). */
  readonly rawBytes: number;
  /** `rawBytes / wireBytes`. */
  readonly compressionRatio: number;
  /** Pages sent in all rounds. */
  readonly pagesSent: number;
  /** Source process CPU seconds (user + system) during the migration. */
  readonly sourceCpuSeconds: number;
  /** Source process CPU seconds per GiB of page bytes sent. */
  readonly sourceCpuSecondsPerGiB: number;
  /**
   * The source's SHA-256, hex: of its memory at switchover
   * (`"memory-digest"`), of the stream the source hypervisor wrote
   * (`"stream-digest"`); empty when nothing was hashed.
   */
  readonly digest: string;
  /**
   * How memory was hashed for `"memory-digest"` (`"xxh3-128"` per 1 MiB
   * range, or `"sha256"` per 64 MiB range with a receiver that negotiated
   * no scheme); absent otherwise.
   */
  readonly digestScheme?: string;
  /** When memory digests differ: which ranges and pages (absent when verified). */
  readonly mismatch?: MemoryMismatch;
  /** Channels that carried the pages (each its own Worker and ordered stream); 1 for a hypervisor's own transport. */
  readonly channels?: number;
  /**
   * Whether each channel had a connection of its own, written (and
   * encrypted) by its Worker (absent: every channel inside the one
   * connection).
   */
  readonly channelConnections?: boolean;
  /** Whether the GPU encoded pages, on which adapter, and why not when it did not. */
  readonly gpu: GpuUse;
  /** Every round, the stop-and-copy round last. */
  readonly rounds: readonly RoundReport[];
  /**
   * Each time the link was lost during pre-copy and the migration resumed
   * on a new connection (absent or empty: it never had to).
   */
  readonly resumes?: readonly ResumeReport[];
  /**
   * The commit protocol's end (absent: the receiver did not take it, and
   * committed when it sent a verified RESULT).
   */
  readonly commit?: CommitReport;
  /**
   * The backend that ran the migration, by its scheme: `"sim"`, `"qemu"`,
   * `"xen"`, … (absent in reports written before backends, and from
   * engines called directly).
   */
  readonly backend?: string;
  /**
   * What only this backend knows, for people: a label and one sentence
   * each (e.g. `tunnel`: the tunnel's bytes for a QEMU stream; `xen`: the
   * domain's suspend time); the summary and the HTML report print them
   * under their labels. The structured facts stay in the backend's own
   * fields of its report (`QemuBackendReport`, `XenMigrationReport`).
   */
  readonly notes?: Readonly<Record<string, string>>;
}

/** How a migration used the GPU (the plan's `gpu` settings). */
export interface GpuUse {
  /** True when at least one page was encoded on the GPU. */
  readonly used: boolean;
  /** The adapter, in words, or null when none was opened. */
  readonly adapter: string | null;
  /** Pages encoded on the GPU. */
  readonly pagesEncoded: number;
  /** One sentence: what ran where, or why the CPU did all the work. */
  readonly note: string;
}

/**
 * A report's verdict in one word, for badges and tables:
 * - `"verified"`: compared and matched;
 * - `"unchecked"`: the migration completed, but hakobu compared nothing
 *   (`verification: "none"`, the hypervisor's own transport);
 * - `"aborted"`: the policy or the user aborted it;
 * - `"failed"`: it failed, or what was compared differed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrationStatus } from "@hakobu/hakobu";
 *
 * const status = migrationStatus({
 *   verified: false,
 *   verification: "none",
 *   aborted: false,
 *   outcome: "completed: QEMU reported completion",
 * });
 * assert.equal(status, "unchecked");
 * ```
 */
export function migrationStatus(
  report: Pick<
    MigrationReport,
    "verified" | "verification" | "aborted" | "outcome"
  >,
): "verified" | "unchecked" | "aborted" | "failed" {
  if (report.verified) return "verified";
  if (report.aborted) return "aborted";
  if (
    report.verification === "none" && report.outcome.startsWith("completed")
  ) {
    return "unchecked";
  }
  return "failed";
}
