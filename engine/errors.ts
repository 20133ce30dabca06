/**
 * Typed errors of the engine's layers. Each carries the field or offset that
 * failed so callers and tests can tell one failure from another.
 *
 * @module
 */

/** A codec refused its input: malformed encoded data or an unusable option. */
export class CodecError extends Error {
  /** Name of the codec that failed. */
  readonly codec: string;
  /**
   * Creates the error for codec `codec`.
   *
   * @param codec Name of the codec that failed.
   * @param message What went wrong and why.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(codec: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CodecError";
    this.codec = codec;
  }
}

/** The wire protocol was violated: a bad frame, a failed check, an unexpected message. */
export class WireError extends Error {
  /** Byte offset in the stream (or frame) where the problem was found, when known. */
  readonly offset: number | undefined;
  /**
   * Creates the error, with the offset of the bad bytes when known.
   *
   * @param message What went wrong and why.
   * @param offset Byte offset where the problem was found, when known.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, offset?: number, options?: ErrorOptions) {
    super(message, options);
    this.name = "WireError";
    this.offset = offset;
  }
}

/** A migration could not complete: aborted by policy, peer failure, or verification failure. */
export class MigrationError extends Error {
  /**
   * Creates the error.
   *
   * @param message What went wrong and why.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
  }
}
