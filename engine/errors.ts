/**
 * Typed errors of the engine's layers, and {@link HakobuError}, the base of
 * every error class in hakobu: each carries the field or offset that failed
 * so callers and tests can tell one failure from another.
 *
 * This file imports nothing, so that every layer down to `ffi/` can extend
 * {@link HakobuError} without depending on the rest of the engine.
 *
 * @module
 */

/** Options of {@link HakobuError}: `cause`, and what failed where it is known. */
export interface HakobuErrorOptions extends ErrorOptions {
  /** The field, option or argument that failed, e.g. `"bandwidth"` or `"vms[3].host"`. */
  readonly field?: string;
  /** Byte offset in the stream, frame or file where the problem was found. */
  readonly offset?: number;
}

/**
 * The base of hakobu's error classes. `name` is the subclass's name (so it
 * survives a trip through a Worker's message as a string), `field` names the
 * option or field that failed and `offset` the byte where a parser stopped,
 * each when the layer knows it. Catch one layer's failures with its subclass
 * (`PolicyError`, `WireError`, …), or any of hakobu's with this one.
 *
 * @example
 * ```ts
 * import { HakobuError, WireError } from "./errors.ts";
 *
 * const e = new WireError("Bad frame magic 0x0 at offset 12", 12);
 * console.assert(e instanceof HakobuError && e.name === "WireError");
 * console.assert(e.offset === 12 && e.field === undefined);
 * ```
 */
export class HakobuError extends Error {
  /** The field, option or argument that failed, when known. */
  readonly field: string | undefined;
  /** Byte offset where the problem was found, when known. */
  readonly offset: number | undefined;
  /**
   * Creates the error; `name` becomes the class's name.
   *
   * @param message What went wrong, the value in quotes, and why.
   * @param options `cause`, and the `field` or `offset` that failed.
   */
  constructor(message: string, options?: HakobuErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.field = options?.field;
    this.offset = options?.offset;
  }
}

/** A codec refused its input: malformed encoded data or an unusable option. */
export class CodecError extends HakobuError {
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
    this.codec = codec;
  }
}

/** The wire protocol was violated: a bad frame, a failed check, an unexpected message. */
export class WireError extends HakobuError {
  /**
   * Creates the error, with the offset of the bad bytes when known.
   *
   * @param message What went wrong and why.
   * @param offset Byte offset in the stream (or frame) where the problem was found, when known.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, offset?: number, options?: ErrorOptions) {
    super(message, { ...options, offset });
  }
}

/** A migration could not complete: aborted by policy, peer failure, or verification failure. */
export class MigrationError extends HakobuError {}

/** Where a {@link LinkLostError} happened. */
export interface LinkLoss {
  /** The side that was lost: the peer of the one reporting it. */
  readonly side: "receiver" | "source";
  /** The lost side's address, `host:port`, when known. */
  readonly peer: string | null;
  /** What the migration was doing, e.g. `"round 3"`, `"the handshake"`. */
  readonly phase: string;
}

/**
 * The connection to the other side of a migration was lost: it closed it,
 * reset it, or the link broke. The message names the side, its address and
 * the phase, with the transport's own words in parentheses; `cause` holds
 * the transport's error. Unlike a peer's ERROR, nobody decided to stop: a
 * resumable migration reconnects and carries on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LinkLostError, MigrationError } from "./errors.ts";
 *
 * const e = new LinkLostError(
 *   "The receiver 127.0.0.1:4444 closed the connection during round 3 (write EPIPE)",
 *   { side: "receiver", peer: "127.0.0.1:4444", phase: "round 3" },
 * );
 * assert.ok(e instanceof MigrationError);
 * assert.equal(e.phase, "round 3");
 * ```
 */
export class LinkLostError extends MigrationError implements LinkLoss {
  /** The side that was lost. */
  readonly side: "receiver" | "source";
  /** Its address, when known. */
  readonly peer: string | null;
  /** What the migration was doing. */
  readonly phase: string;
  /**
   * Creates the error.
   *
   * @param message The side, its address and the phase, in words.
   * @param loss The same, as fields.
   * @param options Passed on to `Error` (`cause`: the transport's error).
   */
  constructor(message: string, loss: LinkLoss, options?: ErrorOptions) {
    super(message, options);
    this.side = loss.side;
    this.peer = loss.peer;
    this.phase = loss.phase;
  }
}

/**
 * The source sent COMMIT (commit protocol) and could not learn whether the
 * receiver committed: the link failed before COMMITTED came, and no
 * reconnection within the policy's resume grace (or none, without a resume
 * policy) told it. The VM stays **paused at the source** and is never
 * resumed by hakobu: the destination may be running it. An operator
 * decides: if the receiver committed {@link session}, the VM lives there;
 * if it did not (it discards a session that gets no COMMIT once its grace
 * passes), resume the source's copy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CommitUnknownError, MigrationError } from "./errors.ts";
 *
 * const e = new CommitUnknownError("Outcome unknown: …", {
 *   receiver: "10.0.0.2:4444",
 *   session: null,
 * });
 * assert.ok(e instanceof MigrationError);
 * assert.equal(e.vmPaused, true);
 * ```
 */
export class CommitUnknownError extends MigrationError {
  /** Always true: the source's copy of the VM is paused, not resumed. */
  readonly vmPaused = true;
  /** The receiver COMMIT went to, `host:port`, when known. */
  readonly receiver: string | null;
  /** The receiver's session id (null when the session was not resumable). */
  readonly session: string | null;
  /**
   * Creates the error.
   *
   * @param message What happened, and what the operator should check.
   * @param where The receiver and the session.
   * @param options Passed on to `Error` (`cause`: the last failure).
   */
  constructor(
    message: string,
    where: { receiver: string | null; session: string | null },
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.receiver = where.receiver;
    this.session = where.session;
  }
}
