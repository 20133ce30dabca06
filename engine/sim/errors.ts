/**
 * The simulated VM's error type.
 *
 * @module
 */

import { HakobuError } from "../errors.ts";

/**
 * The simulated VM or its memory sink refused an input: an unknown workload,
 * a bad memory size, a pfn out of range, a page of the wrong length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimError, SimVm } from "@hakobu/hakobu";
 *
 * await assert.rejects(
 *   SimVm.create({ memoryBytes: 1000, workload: "idle" }),
 *   (e) => e instanceof SimError && e.field === "memoryBytes",
 * );
 * ```
 */
export class SimError extends HakobuError {
  /**
   * Creates the error.
   *
   * @param message What went wrong and why.
   * @param field The option or argument that was refused, when there is one (e.g. `"pfn"`).
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, field?: string, options?: ErrorOptions) {
    super(message, { ...options, field });
  }
}
