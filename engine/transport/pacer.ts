/** Options of {@link Pacer}. */
export interface PacerOptions {
  /** The sustained rate in bytes per second. */
  readonly bytesPerSecond: number;
  /** How far a sender may run ahead, in bytes (default 4 ms of traffic, at least 256 KiB). */
  readonly burstBytes?: number;
  /** The clock, in milliseconds (default `performance.now`); tests pass a fake one. */
  readonly now?: () => number;
  /** Waits `ms` milliseconds (default a `setTimeout`); tests pass a fake one that advances `now`. */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The default {@link PacerOptions.sleep}: a timer. */
function _sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A token bucket that paces a link to a byte rate, so a loopback connection
 * behaves like, say, a 1 Gbit/s one. Bytes may be borrowed up to one burst
 * ahead; `take` then waits until the bucket has refilled.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Pacer } from "@hakobu/hakobu";
 *
 * let now = 0; // a fake clock, in ms; a real pacer uses timers
 * const pacer = new Pacer({
 *   bytesPerSecond: 125_000_000, // 1 Gbit/s
 *   now: () => now,
 *   sleep: (ms) => Promise.resolve(void (now += ms)),
 * });
 * await pacer.take(500_000); // at once: one burst (4 ms of traffic)
 * assert.equal(now, 0);
 * await pacer.take(125_000); // after 1 ms
 * assert.equal(now, 1);
 * ```
 */
export class Pacer {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #last: number;
  #waitedMs = 0;

  /**
   * Creates a pacer at `options.bytesPerSecond`.
   *
   * @param options `bytesPerSecond` is the sustained rate; `burstBytes`
   *   (default 4 ms of traffic, at least 256 KiB) how far a sender may run
   *   ahead; `now` and `sleep` replace the real clock and timers.
   */
  constructor(options: PacerOptions) {
    const { bytesPerSecond } = options;
    if (!(bytesPerSecond > 0) || !Number.isFinite(bytesPerSecond)) {
      throw new RangeError(
        `Invalid pacing rate "${bytesPerSecond}": expected a positive number of bytes per second`,
      );
    }
    this.#rate = bytesPerSecond;
    this.#burst = options.burstBytes ??
      Math.max(256 << 10, bytesPerSecond * 0.004);
    this.#now = options.now ?? (() => performance.now());
    this.#sleep = options.sleep ?? _sleep;
    this.#tokens = this.#burst;
    this.#last = this.#now();
  }

  /** The sustained rate in bytes per second. */
  get bytesPerSecond(): number {
    return this.#rate;
  }

  /** Milliseconds spent waiting for tokens so far. */
  get waitedMs(): number {
    return this.#waitedMs;
  }

  /** Waits until `bytes` may go on the link, then takes them from the bucket. */
  async take(bytes: number): Promise<void> {
    this.#refill();
    this.#tokens -= bytes;
    if (this.#tokens >= 0) return;
    // Sleep until the debt is repaid; timers are coarse, so re-check after waking.
    while (this.#tokens < 0) {
      const ms = (-this.#tokens / this.#rate) * 1000;
      const t0 = this.#now();
      await this.#sleep(Math.max(1, Math.ceil(ms)));
      this.#waitedMs += this.#now() - t0;
      this.#refill();
    }
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(
      this.#burst,
      this.#tokens + ((now - this.#last) / 1000) * this.#rate,
    );
    this.#last = now;
  }
}
