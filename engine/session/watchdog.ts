/**
 * One timer for a loop of waits: a session arms it before each read with
 * how long the peer may take, and races the read with {@link Watchdog.expired}.
 * Arming only moves a deadline (no timer is created or cleared per frame), so
 * it costs nothing measurable on a loop of thousands of frames a second.
 *
 * @module
 */

/**
 * A deadline that can be moved cheaply, and a promise that rejects once it
 * passes while armed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Watchdog } from "./watchdog.ts";
 *
 * const dog = new Watchdog();
 * dog.arm(10, () => new Error("no frame within 10 ms"));
 * await assert.rejects(dog.expired, /no frame within 10 ms/);
 * dog.close();
 * ```
 */
export class Watchdog {
  /** Rejects with the armed error once a deadline passes while armed; never resolves. */
  readonly expired: Promise<never>;
  #reject!: (e: Error) => void;
  #deadline = Infinity;
  #error: () => Error = () => new Error("deadline passed");
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the pending timer fires. */
  #timerAt = Infinity;
  #closed = false;

  /** Creates a disarmed watchdog. */
  constructor() {
    this.expired = new Promise<never>((_, reject) => this.#reject = reject);
    // Nobody may be racing it when it fires: not an unhandled rejection.
    this.expired.catch(() => {});
  }

  /**
   * Expects the awaited thing within `ms` from now; `error` makes the
   * rejection (called only if the deadline passes). A non-finite `ms`
   * disarms.
   */
  arm(ms: number, error: () => Error): void {
    if (this.#closed || !Number.isFinite(ms)) {
      this.#deadline = Infinity;
      return;
    }
    this.#deadline = performance.now() + ms;
    this.#error = error;
    // A later deadline waits for the pending timer, which re-checks; an
    // earlier one needs its own.
    if (this.#deadline < this.#timerAt) {
      clearTimeout(this.#timer);
      this.#schedule(ms);
    }
  }

  /** The awaited thing came: no deadline until the next {@link arm}. */
  disarm(): void {
    this.#deadline = Infinity;
  }

  /** Stops the timer for good. */
  close(): void {
    this.#closed = true;
    this.#deadline = Infinity;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #schedule(ms: number): void {
    this.#timerAt = performance.now() + ms;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      if (this.#deadline === Infinity) return;
      const left = this.#deadline - performance.now();
      if (left > 0) return this.#schedule(left);
      this.#deadline = Infinity;
      this.#reject(this.#error());
    }, Math.max(0, Math.ceil(ms)));
  }
}
