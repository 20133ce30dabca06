/**
 * The resumable sessions of one receiver. A session that asked for it gets
 * an unguessable id (128 random bits) in its WELCOME, sent inside the
 * authenticated channel; when its connection is lost before FINAL it parks
 * here for its grace period, holding its memory, until a new connection
 * from the same source identity names the id in a RESUME and is handed
 * over. A RESUME that names an unknown id, or comes from another identity,
 * gets one and the same refusal and leaves the session alone; a session
 * whose grace passed, or that failed, is refused with what ended it.
 *
 * @module
 */

import { MigrationError } from "../errors.ts";
import type { FrameReader } from "../wire/frame_reader.ts";
import type { FrameWriter } from "../wire/frame_writer.ts";

/** Default longest grace a receiver keeps a session whose connection was lost: 2 minutes. */
export const DEFAULT_MAX_RESUME_GRACE_MS = 120_000;

/** How many ended sessions a registry remembers, to say why a late RESUME is refused. */
const MAX_TOMBSTONES = 256;

/** A connection that resumed a session: the session reads and writes on it until it calls `release`. */
export interface Handover {
  /** Frames from the source (RESUME already read). */
  readonly reader: FrameReader;
  /** Frames to the source. */
  readonly writer: FrameWriter;
  /** The session is done with this connection (it ended, or lost this one too). */
  release(): void;
}

/** Options of {@link ResumeRegistry}. */
export interface ResumeRegistryOptions {
  /** Longest grace a session may have, whatever HELLO asks (default 2 minutes; 0: no session is resumable). */
  readonly maxGraceMs?: number;
}

/**
 * The parked and resumable sessions of one receiver, shared by all its
 * connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResumeRegistry } from "./resume_registry.ts";
 *
 * const registry = new ResumeRegistry({ maxGraceMs: 1000 });
 * const session = registry.open("src-a", 500);
 * assert.match(session.id, /^[0-9a-f]{32}$/);
 * // Another identity cannot take it over, nor can a wrong id:
 * assert.throws(
 *   () => registry.claim(session.id, "src-b", {} as never),
 *   /No resumable session/,
 * );
 * assert.throws(
 *   () => registry.claim("0".repeat(32), "src-a", {} as never),
 *   /No resumable session/,
 * );
 * session.close("verified");
 * assert.throws(
 *   () => registry.claim(session.id, "src-a", {} as never),
 *   /has ended: verified/,
 * );
 * ```
 */
export class ResumeRegistry<H extends { release(): void } = Handover> {
  /** Longest grace a session gets. */
  readonly maxGraceMs: number;
  readonly #sessions = new Map<string, ResumableSession<H>>();
  readonly #ended = new Map<
    string,
    { identity: string | null; why: string; committed: string | null }
  >();
  #takeovers = 0;

  /**
   * Creates an empty registry.
   *
   * @param options The longest grace a session gets.
   */
  constructor(options: ResumeRegistryOptions = {}) {
    const max = options.maxGraceMs ?? DEFAULT_MAX_RESUME_GRACE_MS;
    if (!Number.isSafeInteger(max) || max < 0) {
      throw new RangeError(
        `Bad resume grace "${max}": expected a whole number of milliseconds, 0 or more`,
      );
    }
    this.maxGraceMs = max;
  }

  /**
   * RESUMEs that took a session over from a connection it was still
   * attached to: a half-open link (a blackhole, a peer gone without a
   * close) that this receiver had not seen fail yet.
   */
  get takeovers(): number {
    return this.#takeovers;
  }

  /** Sessions whose connection is lost, waiting for a RESUME. */
  get parked(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (s.parked) n++;
    return n;
  }

  /**
   * Registers a resumable session of source `identity` (null over plain
   * TCP) with `graceMs` (capped at {@link maxGraceMs}).
   */
  open(identity: string | null, graceMs: number): ResumableSession<H> {
    const id = randomId();
    const session = new ResumableSession<H>(
      id,
      identity,
      Math.min(graceMs, this.maxGraceMs),
      (why, committed) => {
        this.#sessions.delete(id);
        this.#ended.set(id, { identity, why, committed });
        if (this.#ended.size > MAX_TOMBSTONES) {
          this.#ended.delete(this.#ended.keys().next().value!);
        }
      },
      () => this.#takeovers++,
    );
    this.#sessions.set(id, session);
    return session;
  }

  /**
   * Why session `id` of source `identity` can no longer be resumed (the
   * message a RESUME of it is refused with), or null while it can, or when
   * no such session of `identity` was known.
   */
  endedMessage(id: string, identity: string | null): string | null {
    const ended = this.#ended.get(id);
    return ended && ended.identity === identity
      ? `Session ${id} cannot be resumed: it has ended: ${ended.why}`
      : null;
  }

  /**
   * Hands `handover` to session `id`, if source `identity` owns it. A
   * session still attached to a connection (a half-open link that has not
   * failed yet on this side) lets that one go and takes the new one.
   * Resolves when the session releases the connection.
   *
   * @throws {SessionEndedError} when session `id` of `identity` has ended
   *   (saying whether its memory was committed);
   *   {@link MigrationError} when no session `id` of `identity` is known.
   */
  claim(
    id: string,
    identity: string | null,
    handover: H,
  ): Promise<void> {
    const session = this.#sessions.get(id);
    if (!session || session.identity !== identity) {
      const ended = this.#ended.get(id);
      if (ended && ended.identity === identity) {
        throw new SessionEndedError(
          `Session ${id} cannot be resumed: it has ended: ${ended.why}`,
          ended.committed,
        );
      }
      // One answer for an unknown id and another source's: a prober learns nothing.
      throw new MigrationError(
        `No resumable session ${id} for ${
          identity === null ? "this source" : `source "${identity}"`
        } on this receiver`,
      );
    }
    return session.take(handover);
  }
}

/**
 * One resumable session's side of the registry, held by its session core
 * (`H`: what a RESUME's connection hands over; a stream tunnel's replayed
 * link hands over its own).
 */
export class ResumableSession<H extends { release(): void } = Handover> {
  /** The session id (32 hex digits). */
  readonly id: string;
  /** The source identity that opened it (null over plain TCP). */
  readonly identity: string | null;
  /** How long it waits for a RESUME once parked. */
  readonly graceMs: number;
  readonly #onClose: (why: string, committed: string | null) => void;
  readonly #onTakenOver: () => void;
  #pending: { handover: H } | null = null;
  #waiter: ((h: H) => void) | null = null;
  /** Ends a {@link park} in progress when the session closes. */
  #ender: ((e: Error) => void) | null = null;
  #why = "";
  #committed: string | null = null;
  #detach: (() => void) | null = null;
  #closed = false;

  /** @internal Made by {@link ResumeRegistry.open}. */
  constructor(
    id: string,
    identity: string | null,
    graceMs: number,
    onClose: (why: string, committed: string | null) => void,
    onTakenOver: () => void = () => {},
  ) {
    this.id = id;
    this.identity = identity;
    this.graceMs = graceMs;
    this.#onClose = onClose;
    this.#onTakenOver = onTakenOver;
  }

  /** Whether the session waits for a RESUME. */
  get parked(): boolean {
    return this.#waiter !== null;
  }

  /** While attached: how to let the current connection go when a RESUME takes over. */
  onTakeover(detach: () => void): void {
    this.#detach = detach;
  }

  /**
   * The connection was lost: waits for a RESUME's connection, at most
   * {@link graceMs}.
   *
   * @throws {MigrationError} once the grace passed.
   */
  async park(): Promise<H> {
    if (this.#closed) throw this.#endedError();
    if (this.#pending) return this.#accept();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#waiter = () => resolve();
        // A session that ends while parked stops waiting (its grace timer
        // with it): nothing can resume it any more.
        this.#ender = reject;
        timer = setTimeout(
          () =>
            reject(
              new MigrationError(
                `no RESUME came within the session's grace of ${this.graceMs} ms`,
              ),
            ),
          this.graceMs,
        );
      });
    } finally {
      clearTimeout(timer);
      this.#waiter = null;
      this.#ender = null;
    }
    return this.#accept();
  }

  /**
   * The session ended (verified, aborted, failed): later RESUMEs are refused
   * with `why`, and told whether the memory was committed (`committed`: the
   * whole digest of what was, hex; null: it was discarded, never to be
   * committed).
   */
  close(why: string, committed: string | null = null): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#why = why;
    this.#committed = committed;
    this.#onClose(why, committed);
    // A RESUME not taken yet is let go: its connection is refused, as any
    // RESUME that comes from now on.
    this.#pending?.handover.release();
    this.#pending = null;
    this.#ender?.(this.#endedError());
  }

  #endedError(): SessionEndedError {
    return new SessionEndedError(
      `Session ${this.id} cannot be resumed: it has ended: ${this.#why}`,
      this.#committed,
    );
  }

  /** @internal A RESUME's connection, from {@link ResumeRegistry.claim}. */
  take(handover: H): Promise<void> {
    if (this.#closed) {
      handover.release();
      return Promise.resolve();
    }
    // A newer RESUME wins over one not yet taken.
    this.#pending?.handover.release();
    let released!: () => void;
    const done = new Promise<void>((r) => released = r);
    const wrapped: H = {
      ...handover,
      release: () => {
        handover.release();
        released();
      },
    };
    this.#pending = { handover: wrapped };
    if (this.#waiter) this.#waiter(wrapped);
    else if (this.#detach) {
      // Still attached: its connection looks open here (half-open).
      this.#onTakenOver();
      this.#detach();
    }
    return done;
  }

  #accept(): H {
    // The session may have closed between the RESUME and this (its
    // handover was let go then).
    if (this.#pending === null) throw this.#endedError();
    const h = this.#pending.handover;
    this.#pending = null;
    return h;
  }
}

/**
 * A RESUME named a session that has ended. `committed` says how: the digest
 * of the memory the receiver committed (the source may learn its COMMIT
 * went through), or null when the receiver discarded it and never will
 * commit it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResumeRegistry, SessionEndedError } from "./resume_registry.ts";
 *
 * const registry = new ResumeRegistry();
 * const session = registry.open(null, 1000);
 * session.close("it committed on COMMIT", "ab".repeat(32));
 * const e = (() => {
 *   try {
 *     registry.claim(session.id, null, {} as never);
 *   } catch (e) {
 *     return e;
 *   }
 * })();
 * assert.ok(e instanceof SessionEndedError);
 * assert.equal(e.committed, "ab".repeat(32));
 * ```
 */
export class SessionEndedError extends MigrationError {
  /** The digest of the committed memory, hex; null: discarded. */
  readonly committed: string | null;
  /**
   * Creates the error.
   *
   * @param message Which session, and why it ended.
   * @param committed The committed digest, or null when discarded.
   */
  constructor(message: string, committed: string | null) {
    super(message);
    this.committed = committed;
  }
}

/** 128 random bits as 32 lower-case hex digits. */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
