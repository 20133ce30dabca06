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
   * @param codec Name of the codec that failed.
   * @param message What went wrong and why.
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
   * @param message What went wrong and why.
   * @param offset Byte offset where the problem was found, when known.
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
   * @param message What went wrong and why.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "MigrationError";
  }
}
