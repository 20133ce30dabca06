/**
 * The statistics half of `Steering`: turns a backend's counters into the
 * {@link RoundStats} a plan reads, deriving the rates a backend does not
 * measure from the previous marked point and carrying the marked points as
 * history. `Steering` marks each decision point; a sender that only asks
 * `codecsFor` (the stream tunnel, where the hypervisor decides) reads
 * stats without marking. One builder, so every backend's plan sees the same
 * fields computed the same way.
 *
 * @module
 */

import { PAGE_SIZE, type RoundHistoryEntry, type RoundStats } from "./plan.ts";
import type { SteeringCounters, SteeringOptions } from "./steering.ts";

/** Builds {@link RoundStats} from counters; see the module doc. */
export class RoundMeter {
  readonly #now: () => number;
  readonly #t0: number;
  #memoryBytes: number;
  #pageSize: number;
  readonly #history: RoundHistoryEntry[] = [];
  /** The previous marked point: when, and the byte counters then. */
  #prev = { elapsedMs: 0, bytesSent: 0, rawBytesSent: 0 };

  /** Starts the clock now, with the VM's geometry as far as known. */
  constructor(options: SteeringOptions = {}) {
    this.#now = options.now ?? (() => performance.now());
    this.#t0 = this.#now();
    this.#memoryBytes = options.memoryBytes ?? 0;
    this.#pageSize = options.pageSize ?? PAGE_SIZE;
  }

  /** Milliseconds since the meter was made, on its clock. */
  get elapsedMs(): number {
    return this.#now() - this.#t0;
  }

  /** The marked points so far, oldest first. */
  get history(): readonly RoundHistoryEntry[] {
    return this.#history;
  }

  /**
   * The statistics at this point (rates not given derived since the
   * previous mark, or since the start); records nothing but a changed
   * memory or page size.
   */
  stats(counters: SteeringCounters): RoundStats {
    if (counters.memoryBytes !== undefined) {
      this.#memoryBytes = counters.memoryBytes;
    }
    if (counters.pageSize !== undefined) this.#pageSize = counters.pageSize;
    const ps = this.#pageSize;
    const elapsedMs = counters.elapsedMs ?? this.elapsedMs;
    const secs = (elapsedMs - this.#prev.elapsedMs) / 1000;
    const perSecond = (bytes: number): number =>
      secs > 0 ? Math.max(0, bytes) / secs : 0;
    const dirtyPages = counters.dirtyPages ??
      Math.ceil((counters.remainingBytes ?? 0) / ps);
    const remainingBytes = counters.remainingBytes ?? dirtyPages * ps;
    return {
      round: counters.round,
      dirtyPages,
      remainingBytes,
      dirtyRate: counters.dirtyRate ?? perSecond(dirtyPages * ps),
      sendRate: counters.sendRate ??
        perSecond(counters.rawBytesSent - this.#prev.rawBytesSent),
      wireRate: counters.wireRate ??
        perSecond(counters.bytesSent - this.#prev.bytesSent),
      elapsedMs,
      bytesSent: counters.bytesSent,
      rawBytesSent: counters.rawBytesSent,
      memoryBytes: this.#memoryBytes,
      pageSize: ps,
      history: this.#history.slice(),
    };
  }

  /** Marks `stats` as a decision point: history, and the base of later rates. */
  mark(stats: RoundStats): void {
    this.#history.push({
      round: stats.round,
      remainingBytes: stats.remainingBytes,
      dirtyRate: stats.dirtyRate,
      elapsedMs: stats.elapsedMs,
    });
    this.#prev = {
      elapsedMs: stats.elapsedMs,
      bytesSent: stats.bytesSent,
      rawBytesSent: stats.rawBytesSent,
    };
  }
}
