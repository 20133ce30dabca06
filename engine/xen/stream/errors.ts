/**
 * {@link XenStreamError}: a libxc stream is truncated or malformed, with the
 * stream offset of the bad field.
 *
 * @module
 */

import { HakobuError } from "../../errors.ts";

/**
 * A libxc migration stream could not be parsed.
 *
 * @example
 * ```ts
 * try { parseXenStream(bytes); } catch (e) {
 *   if (e instanceof XenStreamError) console.error(e.offset);
 * }
 * ```
 */
export class XenStreamError extends HakobuError {
  /** Offset in the stream (from the first byte given to the parser) of the problem. */
  declare readonly offset: number;
  /**
   * Creates the error at stream offset `offset`.
   *
   * @param message What went wrong, with the offset in words.
   * @param offset Stream offset of the bad field.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(message, { ...options, offset });
  }
}
