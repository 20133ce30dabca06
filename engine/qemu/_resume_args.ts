/**
 * The tunnel command line's `--resume-grace` for a grace given in a
 * program (the `exec:` sender, the resident sender and receiver). Not part
 * of the public API.
 *
 * @module
 */

/**
 * `--resume-grace MS` for a grace above 0, nothing for none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resumeGraceArgs } from "./_resume_args.ts";
 *
 * assert.deepEqual(resumeGraceArgs(30_000), ["--resume-grace", "30000"]);
 * assert.deepEqual(resumeGraceArgs(undefined), []);
 * ```
 *
 * @throws {RangeError} on a grace that is no whole number of ms, 0 or more.
 */
export function resumeGraceArgs(graceMs: number | undefined): string[] {
  if (graceMs === undefined || graceMs === 0) return [];
  if (!Number.isSafeInteger(graceMs) || graceMs < 0) {
    throw new RangeError(
      `Bad resume grace "${graceMs}" for a tunnel: expected a whole number of milliseconds, 0 or more`,
    );
  }
  return ["--resume-grace", String(graceMs)];
}
