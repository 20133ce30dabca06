/**
 * The shared-memory handshake between `save.ts` and `_save_worker.ts`:
 * `Int32Array(sab, 0, 4)` holds the state and the answer,
 * `Float64Array(sab, 16, 3)` the stats (iteration, totalWritten, dirtyCount).
 *
 * @module
 */

/** Indices and states of the control words. */
export const Ctl = {
  /** Index of the state word. */
  STATE: 0,
  /** Index of the answer word (an `XGS_POLICY_*`). */
  ANSWER: 1,
  /** No request outstanding. */
  IDLE: 0,
  /** The worker waits for an answer. */
  REQUEST: 1,
  /** The main thread answered. */
  ANSWERED: 2,
} as const;

/** Bytes of the shared buffer. */
export const SAB_BYTES = 16 + 3 * 8;

/** How long the worker waits for the plan before answering ABORT (ms). */
export const POLICY_WAIT_MS = 60_000;

/**
 * The worker's side of one request: waits until the main thread has
 * answered (`STATE` no longer `REQUEST`) and returns the answer, or `null`
 * after `timeoutMs`. A wake-up is not an answer: `Atomics.notify` for the
 * previous request can arrive late, while this one already waits (the main
 * thread stores `ANSWERED` before it notifies, and the worker may have seen
 * the store and moved on), so the state is checked again after every wake.
 */
export function awaitAnswer(ctl: Int32Array, timeoutMs: number): number | null {
  const until = performance.now() + timeoutMs;
  while (Atomics.load(ctl, Ctl.STATE) === Ctl.REQUEST) {
    const left = until - performance.now();
    if (left <= 0) return null;
    Atomics.wait(ctl, Ctl.STATE, Ctl.REQUEST, left);
  }
  return Atomics.load(ctl, Ctl.ANSWER);
}
