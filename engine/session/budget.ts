/**
 * What a receiver lets its peers make it allocate, all sessions together.
 * A session reserves the memory its HELLO announces and the decoder state
 * its CODEC frames ask for before anything is allocated; a reservation that
 * does not fit fails that session with a clear error and leaves the others
 * alone. Reservations end with their session.
 *
 * @module
 */

import { formatBytes } from "../format.ts";
import { MigrationError } from "../errors.ts";

/** A share of a {@link ReceiveBudget}, held until released. */
export interface Reservation {
  /** Bytes held. */
  readonly bytes: number;
  /** Gives the bytes back (once; later calls do nothing). */
  release(): void;
}

/**
 * A byte budget shared by a receiver's sessions.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReceiveBudget } from "@hakobu/hakobu";
 *
 * const budget = new ReceiveBudget(1024);
 * const a = budget.reserve(800, "memory of vm a");
 * assert.throws(
 *   () => budget.reserve(400, "memory of vm b"),
 *   /over this receiver's budget/,
 * );
 * a.release();
 * budget.reserve(400, "memory of vm b"); // fits once vm a's memory is released
 * ```
 */
export class ReceiveBudget {
  /** Bytes all sessions together may hold. */
  readonly totalBytes: number;
  #held = 0;

  /**
   * Creates an empty budget of `totalBytes`.
   *
   * @param totalBytes Bytes all sessions together may hold (a positive integer).
   * @throws {RangeError} for a size that is not a positive safe integer.
   */
  constructor(totalBytes: number) {
    if (!Number.isSafeInteger(totalBytes) || totalBytes <= 0) {
      throw new RangeError(
        `Bad receive budget "${totalBytes}": expected a positive number of bytes`,
      );
    }
    this.totalBytes = totalBytes;
  }

  /** Bytes held by reservations now. */
  get heldBytes(): number {
    return this.#held;
  }

  /**
   * Reserves `bytes` for `what` (words for the error, e.g. "memory of VM
   * db-01").
   *
   * @throws {MigrationError} when the budget's free part is smaller.
   */
  reserve(bytes: number, what: string): Reservation {
    if (bytes > this.totalBytes - this.#held) {
      throw new MigrationError(
        `${what} needs ${formatBytes(bytes)}, over this receiver's budget: ${
          formatBytes(this.totalBytes - this.#held)
        } of ${
          formatBytes(this.totalBytes)
        } free while other sessions hold the rest`,
      );
    }
    this.#held += bytes;
    let held = true;
    return {
      bytes,
      release: () => {
        if (!held) return;
        held = false;
        this.#held -= bytes;
      },
    };
  }
}
