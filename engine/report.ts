/**
 * What a migration reports: one {@link RoundReport} per round and a
 * {@link MigrationReport} with totals. Plain data, ready for JSON.
 *
 * @module
 */

import type { Decision } from "./plan.ts";

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

/** The outcome of a whole migration. */
export interface MigrationReport {
  /** True only when the receiver's memory digest matched the source's. */
  readonly verified: boolean;
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
  /** SHA-256 of the source memory at switchover, hex (empty if never reached). */
  readonly digest: string;
  /** Whether the GPU encoded pages, on which adapter, and why not when it did not. */
  readonly gpu: GpuUse;
  /** Every round, the stop-and-copy round last. */
  readonly rounds: readonly RoundReport[];
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
