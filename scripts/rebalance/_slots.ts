/**
 * The concurrency limits of a rebalance, in one place: at most
 * `maxConcurrent` migrations in flight, and at most each host's
 * `maxMigrations` (else `maxPerHost`) with that host as source or
 * destination. The runner starts moves through it, and the dry run's
 * schedule replays the same rule with predicted durations.
 *
 * @module
 */

import type { HostSpec } from "./inventory.ts";

/** The ends of a move. */
export interface MoveEnds {
  /** Source host. */
  readonly from: string;
  /** Destination host. */
  readonly to: string;
}

/** Limits of {@link MigrationSlots}. */
export interface SlotLimits {
  /** Most migrations in flight at once (default 2). */
  readonly maxConcurrent?: number;
  /** Most per host when the host sets no `maxMigrations` (default: no limit). */
  readonly maxPerHost?: number;
}

/** Default of {@link SlotLimits.maxConcurrent}. */
export const DEFAULT_MAX_CONCURRENT = 2;

/** Counts migrations in flight against the limits. */
export class MigrationSlots {
  readonly #max: number;
  readonly #limit: (host: string) => number;
  readonly #active = new Map<string, number>();
  #inFlight = 0;

  /**
   * @param hosts The inventory's hosts (their `maxMigrations`).
   * @param limits The run's limits.
   * @throws {RangeError} when `maxConcurrent` is not a whole number ≥ 1.
   */
  constructor(hosts: readonly HostSpec[], limits: SlotLimits) {
    const max = limits.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `Invalid maxConcurrent "${max}": expected a whole number ≥ 1`,
      );
    }
    this.#max = max;
    const byName = new Map(hosts.map((h) => [h.name, h]));
    this.#limit = (h) =>
      byName.get(h)?.maxMigrations ?? limits.maxPerHost ?? Infinity;
  }

  /** Migrations in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Whether `move` may start now. */
  canStart(move: MoveEnds): boolean {
    return this.#inFlight < this.#max &&
      (this.#active.get(move.from) ?? 0) < this.#limit(move.from) &&
      (this.#active.get(move.to) ?? 0) < this.#limit(move.to);
  }

  /** Counts `move` as started. */
  take(move: MoveEnds): void {
    this.#inFlight++;
    this.#active.set(move.from, (this.#active.get(move.from) ?? 0) + 1);
    this.#active.set(move.to, (this.#active.get(move.to) ?? 0) + 1);
  }

  /** Counts `move` as ended. */
  release(move: MoveEnds): void {
    this.#inFlight--;
    this.#active.set(move.from, this.#active.get(move.from)! - 1);
    this.#active.set(move.to, this.#active.get(move.to)! - 1);
  }
}
