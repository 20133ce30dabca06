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
 * import assert from "node:assert/strict";
 * import { parseXenStream, XenStreamError } from "@hakobu/hakobu";
 *
 * try {
 *   parseXenStream(new Uint8Array(20)); // not even an image header
 *   assert.fail("a truncated stream parses");
 * } catch (e) {
 *   assert.ok(e instanceof XenStreamError);
 *   assert.equal(e.offset, 20); // where the bytes ran out
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
