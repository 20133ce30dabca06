/**
 * The contract between a compiled policy and the engine: what the engine
 * asks a plan at each decision point, and the statistics it hands over.
 *
 * The DSL (`dsl/`) compiles a policy into a {@link Plan}; the engine only ever
 * sees this interface, so a plan written by hand works just as well.
 *
 * @module
 */

/**
 * The page size hakobu moves, in bytes: the sim's, QEMU's and Xen's on x86,
 * and the only one protocol 2 carries (a receiver refuses any other).
 */
export const PAGE_SIZE = 4096;

/**
 * Most channels a migration may use: frames carry their channel in one
 * header byte, and each channel is a Worker on both sides.
 */
export const MAX_CHANNELS = 64;

/**
 * Most non-zero pages a plan may put in one batch (`batchPages`): 7680
 * pages of 4 KiB are 30 MiB, so a batch's frame, with its headers and
 * whatever zero pages ride along, stays under the 32 MiB frame limit even
 * when every page goes raw.
 */
export const MAX_BATCH_PAGES = 7680;

/** A codec named as data, e.g. `{ name: "zero" }`; the engine's registry turns it into a codec. */
export interface CodecSpec {
  /** Registry name of the codec, e.g. `"raw"` or `"zero"`. */
  readonly name: string;
  /** Codec-specific options; validated by the codec's factory. */
  readonly options?: Readonly<Record<string, unknown>>;
}

/**
 * The state of a migration at a decision point, right after a dirty-bitmap sync.
 *
 * The same shape is handed to two callbacks with one difference in meaning:
 * - the codec chooser ({@link Plan.codecsFor}) gets the round about to run:
 *   `round` is its index and `dirtyPages` what it will send; rates are those
 *   measured in the previous round (0 before round 0 ends);
 * - the decision ({@link Plan.decide}) gets the round just finished: `round`
 *   is its index, rates were measured during it, and `dirtyPages` is what is
 *   dirty now and would be sent next.
 */
export interface RoundStats {
  /** Round index, 0 for the first round (which sends every page). */
  readonly round: number;
  /** Pages dirty at this sync (round 0: every page of the VM). */
  readonly dirtyPages: number;
  /** Bytes still to send: `dirtyPages * pageSize`. */
  readonly remainingBytes: number;
  /** Guest dirtying rate measured over the last round, in bytes per second. */
  readonly dirtyRate: number;
  /** Page bytes (before encoding) sent per second over the last round. */
  readonly sendRate: number;
  /** Bytes on the wire per second over the last round. */
  readonly wireRate: number;
  /** Milliseconds since the migration started. */
  readonly elapsedMs: number;
  /** Bytes put on the wire so far, frames included. */
  readonly bytesSent: number;
  /** Page bytes sent so far, before encoding. */
  readonly rawBytesSent: number;
  /** Size of the VM's memory in bytes. */
  readonly memoryBytes: number;
  /** Page size in bytes. */
  readonly pageSize: number;
  /**
   * The earlier decision points of the same migration, oldest first (absent
   * when the backend keeps none). Conditions that look back, such as stall
   * detection, read it; the engine's steering fills it in.
   */
  readonly history?: readonly RoundHistoryEntry[];
}

/** One earlier decision point of a migration ({@link RoundStats.history}). */
export interface RoundHistoryEntry {
  /** Round index at that decision point. */
  readonly round: number;
  /** Bytes that were still to send then. */
  readonly remainingBytes: number;
  /** Guest dirtying rate measured then, bytes per second. */
  readonly dirtyRate: number;
  /** Milliseconds since the migration started, then. */
  readonly elapsedMs: number;
}

/** What a plan tells the engine after each round. */
export type Decision = "continue" | "switchover" | "abort";

/** GPU settings of a plan; the engine falls back to CPU as `prefer` and `require` allow. */
export interface GpuSettings {
  /** Pages per GPU dispatch. */
  readonly batch: number;
  /** Which device encodes: `auto` uses a GPU when one is present. */
  readonly prefer: "gpu" | "cpu" | "auto";
  /** Fail instead of falling back to the CPU when no GPU adapter is present. */
  readonly require: boolean;
}

/** A compiled, validated migration policy as the engine consumes it. */
export interface Plan {
  /** The policy's name, shown in reports. */
  readonly name: string;
  /** The codec chain for the round about to run; the first codec that claims a page wins. */
  readonly codecsFor: (stats: RoundStats) => readonly CodecSpec[];
  /** Continue with another round, switch over (pause and copy the rest) or abort. */
  readonly decide: (stats: RoundStats) => Decision;
  /** Why the last `decide` call answered as it did, in words (for reports). */
  readonly reason?: (stats: RoundStats) => string;
  /** Link pacing in bytes per second, or `null` for an unpaced link. */
  readonly bandwidth: number | null;
  /** Non-zero pages per batch (one BATCH frame; zero pages ride along almost free). */
  readonly batchPages: number;
  /**
   * Channels: Workers that encode (and, on the receiver, decode) in
   * parallel, each an ordered stream of its own share of the pages.
   * Absent: the machine's core count.
   */
  readonly channels?: number;
  /** Hard bound on the number of live rounds, whatever `decide` says. */
  readonly maxRounds: number;
  /**
   * How long the source waits before it gives up, aborts and lets the VM
   * run on. Absent: {@link DEFAULT_DEADLINES}.
   */
  readonly deadlines?: Deadlines;
  /**
   * Resume after a lost link during pre-copy: reconnect to the same
   * receiver session and send only what it lacks. Absent: a lost link fails
   * the migration (the VM runs on at the source).
   */
  readonly resume?: ResumeSettings;
  /** GPU settings. */
  readonly gpu: GpuSettings;
}

/** How long a migration source waits for its receiver before it gives up. */
export interface Deadlines {
  /**
   * Most milliseconds for each answer of the receiver (WELCOME, READY,
   * RESULT) and for each write to complete (a link that takes nothing is
   * as dead as one that answers nothing).
   */
  readonly replyMs: number;
  /**
   * Most milliseconds from pausing the VM to the receiver's READY (the
   * downtime as the source sees it); past it the migration aborts and the
   * VM resumes on the source. `null`: bounded by {@link replyMs} per wait only.
   */
  readonly downtimeMs: number | null;
}

/** How a source resumes a migration whose link was lost during pre-copy ({@link Plan.resume}). */
export interface ResumeSettings {
  /**
   * Most milliseconds from losing the link to a resumed session; the
   * receiver keeps the session at most this long (or its own, shorter,
   * limit). The VM runs on meanwhile.
   */
  readonly graceMs: number;
  /** Most reconnections tried within the grace, per lost link. */
  readonly attempts: number;
}

/**
 * The deadlines of a plan that sets none: a minute per answer or write, no
 * bound on the downtime beyond that.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_DEADLINES } from "@hakobu/hakobu";
 *
 * assert.deepEqual(DEFAULT_DEADLINES, { replyMs: 60_000, downtimeMs: null });
 * ```
 */
export const DEFAULT_DEADLINES: Deadlines = Object.freeze({
  replyMs: 60_000,
  downtimeMs: null,
});
