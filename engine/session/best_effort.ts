/**
 * Best effort on a connection that may be dead: the last words of a failed
 * session (ERROR, ABORT, closing) are tried, never waited on for long.
 *
 * @module
 */

/** How long a best-effort step may take before it is given up: 2 s. */
export const GIVE_UP_MS = 2000;

/**
 * Waits for `p` at most {@link GIVE_UP_MS}, ignoring its failure: the
 * connection may be gone (the step fails) or stuck (it never ends).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bestEffort } from "./best_effort.ts";
 *
 * // A dead connection's failure is swallowed:
 * const reset = Promise.reject(new Error("connection reset"));
 * assert.equal(await bestEffort(reset), undefined);
 * ```
 */
export async function bestEffort(p: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      p,
      new Promise((resolve) => timer = setTimeout(resolve, GIVE_UP_MS)),
    ]);
  } catch {
    // Already closed or reset.
  } finally {
    clearTimeout(timer);
  }
}
