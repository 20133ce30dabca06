/**
 * The error of the QEMU stream layer: the parser, the rebuilder and the
 * tunnel throw {@link QemuStreamError} naming the byte offset that failed.
 *
 * @module
 */

import { HakobuError } from "../../errors.ts";

/**
 * A QEMU migration stream could not be parsed or tunnelled: it is not a QEMU
 * stream, it ended inside a record, or (strict mode) it uses a feature the
 * parser does not delimit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseQemuStream, QemuStreamError } from "@hakobu/hakobu";
 *
 * const notQemu = new TextEncoder().encode("this is not a QEMU stream");
 * assert.throws(
 *   () => parseQemuStream(notQemu),
 *   (e) => e instanceof QemuStreamError && e.offset === 0,
 * );
 * ```
 */
export class QemuStreamError extends HakobuError {
  /** Byte offset in the QEMU stream where the problem was found. */
  declare readonly offset: number;
  /**
   * Creates the error at stream offset `offset`.
   *
   * @param message What went wrong and why.
   * @param offset Byte offset in the QEMU stream.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, offset: number, options?: ErrorOptions) {
    super(message, { ...options, offset });
  }
}
