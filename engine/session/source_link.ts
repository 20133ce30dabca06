/**
 * The sending side's connection, whatever is sent: the handshake (HELLO →
 * WELCOME, or the receiver's refusal), paced frame writes counted in wire
 * bytes, a background watch for the receiver's ERROR (which fails the next
 * step with the receiver's own words), waiting for a reply of one type, and
 * ABORT. Native migrations and the hypervisor tunnels send through it.
 *
 * @module
 */

import { type LinkLoss, LinkLostError, MigrationError } from "../errors.ts";
import { within } from "./_within.ts";
import { DEFAULT_DEADLINES } from "../plan.ts";
import { bestEffort } from "./best_effort.ts";
import { Pacer } from "../transport/pacer.ts";
import type { WireConn } from "../wire/duplex.ts";
import {
  encodeFrame,
  type Frame,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
} from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeCommitted,
  decodeError,
  decodeResumed,
  decodeStarting,
  decodeWelcome,
  encodeAbort,
  encodeHello,
  encodeResume,
  type Hello,
  type Result,
  type Resumed,
  type Starting,
  type Welcome,
} from "../wire/messages.ts";

/** Options of {@link SourceLink}. */
export interface SourceLinkOptions {
  /** Link pacing in bytes per second; null or absent for an unpaced link. */
  readonly bandwidth?: number | null;
  /**
   * Most milliseconds for each answer of the receiver (WELCOME, or a reply
   * {@link SourceLink.expect} waits for) and for each write to complete
   * (pacing not counted); default 60 000 (`DEFAULT_DEADLINES.replyMs`).
   */
  readonly replyMs?: number;
  /**
   * Most milliseconds from HELLO to WELCOME while the receiver says it is
   * still starting (STARTING frames, each of which restarts the reply
   * deadline); default {@link MAX_START_MS}.
   */
  readonly maxStartMs?: number;
}

/**
 * How long a receiver may keep saying it is starting (STARTING) before
 * WELCOME: 5 minutes. Its channel Workers start in 0.1–0.4 s, and in
 * 5–10 s where Deno type-checks their modules on a cold cache (`deno
 * test`) on a loaded machine; one still starting after this is as stuck
 * as a silent one.
 */
export const MAX_START_MS = 300_000;

/**
 * HELLO's `keepAliveMs` for a reply deadline: a STARTING at least four
 * times per deadline, so that one late frame does not fail the handshake.
 */
function keepAliveFor(replyMs: number): number {
  return Math.max(1, Math.floor(replyMs / 4));
}

/** Options of {@link SourceLink.hello}. */
export interface HelloOptions {
  /**
   * Runs once HELLO is written, while the receiver answers; the handshake
   * ends when both are done, and its failure is thrown first.
   */
  readonly meanwhile?: () => void | Promise<void>;
}

/** What a RESUME after the verdict phase learnt ({@link SourceLink.recover}). */
export type Recovered =
  | {
    /** The session waits for COMMIT; `result` is the RESULT it sent (null: it is not past its verdict). */
    readonly kind: "resumed";
    readonly result: Result | null;
  }
  | {
    /** The session ended committed: the COMMIT went through. */
    readonly kind: "committed";
    /** The committed memory's digest, hex. */
    readonly digest: string;
  }
  | {
    /** The receiver refused the RESUME. */
    readonly kind: "refused";
    /** Its words. */
    readonly message: string;
    /** It said the session's memory is discarded and will never be committed. */
    readonly discarded: boolean;
  };

/**
 * One source connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   decodeFinal,
 *   encodeFinal,
 *   encodeReady,
 *   encodeWelcome,
 *   FrameReader,
 *   FrameType,
 *   FrameWriter,
 *   memoryDuplex,
 *   PROTOCOL_VERSION,
 * } from "@hakobu/hakobu";
 * import { SourceLink } from "./source_link.ts";
 *
 * const [conn, peer] = memoryDuplex();
 * // A receiver in miniature: WELCOME to HELLO, READY to FINAL.
 * const receiver = (async () => {
 *   const reader = new FrameReader(peer.readable);
 *   const writer = new FrameWriter(peer.writable);
 *   await reader.next(); // HELLO
 *   await writer.write(
 *     FrameType.WELCOME,
 *     0,
 *     encodeWelcome({ protocol: PROTOCOL_VERSION, accepted: true }),
 *   );
 *   const final = decodeFinal((await reader.next())!.payload);
 *   await writer.write(
 *     FrameType.READY,
 *     0,
 *     encodeReady({ pagesApplied: final.pagesTotal }),
 *   );
 * })();
 *
 * const link = new SourceLink(conn, { bandwidth: 125e6 });
 * await link.hello({
 *   protocol: PROTOCOL_VERSION,
 *   memoryBytes: 4096,
 *   pageSize: 4096,
 *   codecs: [{ id: 0, name: "raw" }],
 *   vm: "sim",
 *   policy: "p",
 *   channels: 1,
 * });
 * await link.write(
 *   FrameType.FINAL,
 *   3,
 *   encodeFinal({ round: 3, pagesTotal: 1 }),
 * );
 * const ready = await link.expect(FrameType.READY);
 * assert.equal(JSON.parse(new TextDecoder().decode(ready)).pagesApplied, 1);
 * assert.ok(link.wireBytes > 0); // frame bytes written, HELLO and FINAL
 * await receiver;
 * await link.close();
 * ```
 */
export class SourceLink {
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  readonly #pacer: Pacer | null;
  #wireBytes = 0;
  #peerError: Error | null = null;
  /** The receiver's ERROR said its memory is discarded (commit protocol). */
  #peerDiscarded = false;
  #inbox: Promise<Frame | null> | null = null;
  #aborted = false;
  /** Frames the receiver may send at any time, and who takes them. */
  #unsolicited = new Map<number, (frame: Frame) => Promise<void>>();
  /** Writes in flight, chained: frames from several tasks never interleave. */
  #tail: Promise<void> = Promise.resolve();
  readonly #replyMs: number;
  readonly #maxStartMs: number;
  /** The receiver's address, when the connection knows it. */
  readonly #remote: string | null;
  /** What the migration is doing, from the last frame written: errors name it. */
  #phase = "the handshake";
  #welcomed: Welcome | null = null;

  /**
   * @param conn The connection to the receiver.
   * @param options Pacing.
   */
  constructor(conn: WireConn, options: SourceLinkOptions = {}) {
    this.#writer = new FrameWriter(conn.writable);
    this.#reader = new FrameReader(conn.readable);
    this.#pacer = options.bandwidth
      ? new Pacer({ bytesPerSecond: options.bandwidth })
      : null;
    this.#replyMs = options.replyMs ?? DEFAULT_DEADLINES.replyMs;
    this.#maxStartMs = options.maxStartMs ?? MAX_START_MS;
    this.#remote = conn.remote ?? null;
  }

  /** Frame bytes written so far. */
  get wireBytes(): number {
    return this.#wireBytes;
  }

  /** The receiver's failure, once it reported one (or the link broke). */
  get peerError(): Error | null {
    return this.#peerError;
  }

  /**
   * Whether the receiver's ERROR said that it discarded the session's
   * memory and will never commit it (commit protocol).
   */
  get peerDiscarded(): boolean {
    return this.#peerDiscarded;
  }

  /** The receiver's WELCOME, once {@link hello} succeeded (its `session` makes the session resumable). */
  get welcome(): Welcome | null {
    return this.#welcomed;
  }

  /**
   * Sends HELLO and waits for WELCOME; then watches the receiver in the
   * background. `options.meanwhile` runs once HELLO is written, while the
   * receiver answers (a sender starts its channel Workers there: their
   * start-up is the largest fixed cost of a short migration); its failure
   * is thrown first. HELLO asks for STARTING frames (`keepAliveMs`, a
   * quarter of the reply deadline): a receiver that is still starting its
   * own channel Workers says so, and each STARTING restarts the reply
   * deadline, for at most `maxStartMs` in all; a silent receiver fails the
   * handshake at the reply deadline as before.
   *
   * @returns The receiver's WELCOME (e.g. the verification scheme it chose).
   * @throws {MigrationError} with the receiver's reason when it refuses.
   */
  async hello(hello: Hello, options: HelloOptions = {}): Promise<Welcome> {
    await this.write(
      FrameType.HELLO,
      0,
      encodeHello({ ...hello, keepAliveMs: keepAliveFor(this.#replyMs) }),
    );
    const welcome = this.#welcome(hello.protocol);
    if (options.meanwhile) {
      welcome.catch(() => {}); // awaited below, once `meanwhile` succeeded
      await options.meanwhile();
    }
    const answer = await welcome;
    this.#watch();
    return answer;
  }

  /**
   * On a new connection, instead of {@link hello}: sends RESUME for
   * `session` and waits for RESUMED (what the receiver holds); then watches
   * the receiver in the background. `options.meanwhile` runs while the
   * receiver answers, as for HELLO.
   *
   * @throws {MigrationError} with the receiver's reason when it refuses
   *   (the session is gone, or not this source's); {@link LinkLostError}
   *   when this connection fails too.
   */
  async resume(
    session: string,
    options: HelloOptions = {},
  ): Promise<Resumed> {
    const answer = this.#askResume(session).then((frame) => {
      if (frame.type === FrameType.ERROR) {
        throw new MigrationError(
          `Receiver refused RESUME: ${decodeError(frame.payload).message}`,
        );
      }
      if (frame.type !== FrameType.RESUMED) {
        throw new MigrationError(
          `Unexpected ${
            frameTypeName(frame.type)
          } frame from the receiver: expected RESUMED`,
        );
      }
      return decodeResumed(frame.payload);
    });
    if (options.meanwhile) {
      answer.catch(() => {});
      await options.meanwhile();
    }
    const resumed = await answer;
    this.#watch();
    return resumed;
  }

  /**
   * Commit protocol, on a new connection after the link was lost once END
   * was sent: sends RESUME for `session` and reads what became of it — the
   * session still waits for COMMIT (RESUMED with the RESULT it sent), it
   * committed (COMMITTED), or it is refused (ERROR, saying whether its
   * memory was discarded). After RESUMED the receiver is watched as after
   * {@link hello}.
   *
   * @throws {LinkLostError} when this connection fails too, or the
   *   receiver does not answer within the reply deadline.
   */
  async recover(session: string): Promise<Recovered> {
    const frame = await this.#askResume(session);
    switch (frame.type) {
      case FrameType.ERROR: {
        const e = decodeError(frame.payload);
        return {
          kind: "refused",
          message: e.message,
          discarded: e.discarded === true,
        };
      }
      case FrameType.COMMITTED:
        return {
          kind: "committed",
          digest: decodeCommitted(frame.payload).digest,
        };
      case FrameType.RESUMED: {
        const resumed = decodeResumed(frame.payload);
        this.#watch();
        return { kind: "resumed", result: resumed.result ?? null };
      }
    }
    throw new MigrationError(
      `Unexpected ${
        frameTypeName(frame.type)
      } frame from the receiver: expected RESUMED, COMMITTED or ERROR`,
    );
  }

  /**
   * Waits until the receiver's next frame (or the end of its connection)
   * has been read, at most `ms`: after a failed write, whether the receiver
   * had said why (ERROR) before the link went.
   */
  async settle(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#inbox ?? Promise.resolve(),
      new Promise((r) => timer = setTimeout(r, ms)),
    ]);
    clearTimeout(timer);
  }

  /**
   * Sends RESUME for `session` on this new connection and reads the
   * receiver's answer, within the reply deadline (its payload is valid
   * until the next read).
   */
  async #askResume(session: string): Promise<Frame> {
    await this.write(FrameType.RESUME, 0, encodeResume({ session }));
    const frame = await this.#within(
      this.#reader.next().catch((e) => this.#lost(e)),
      () =>
        `The receiver did not answer RESUME within ${this.#replyMs} ms (the reply deadline)`,
      true,
    );
    if (frame === null) throw this.#closed(FrameType.RESUMED);
    return frame;
  }

  /**
   * Reads the receiver's answer to HELLO: WELCOME, or a refusal, within the
   * reply deadline from HELLO or from the receiver's last STARTING.
   */
  async #welcome(protocol: number): Promise<Welcome> {
    const since = performance.now();
    let deadline = since + this.#replyMs;
    let starting: Starting | null = null;
    const next = () =>
      within(
        this.#reader.next().catch((e) => this.#lost(e)),
        deadline - performance.now(),
        () =>
          new MigrationError(
            starting === null
              ? `The receiver did not answer HELLO within ${this.#replyMs} ms (the reply deadline): it is stuck, or the link is`
              : `The receiver said it was starting (${starting.elapsedMs} ms in), then sent nothing for ${this.#replyMs} ms (the reply deadline): it is stuck, or the link is`,
          ),
      );
    let frame: Frame | null;
    for (;;) {
      frame = await next();
      if (frame?.type === FrameType.STARTING) {
        starting = decodeStarting(frame.payload);
        const now = performance.now();
        if (now - since > this.#maxStartMs) {
          throw new MigrationError(
            `The receiver was still starting ${
              Math.round(now - since)
            } ms after HELLO (at most ${this.#maxStartMs} ms): it is stuck`,
          );
        }
        deadline = now + this.#replyMs;
        continue;
      }
      const take = frame && this.#unsolicited.get(frame.type);
      if (!take) break;
      await take(frame!);
    }
    if (frame === null) throw this.#closed(FrameType.WELCOME);
    if (frame.type === FrameType.ERROR) {
      throw new MigrationError(
        `Receiver refused the migration: ${decodeError(frame.payload).message}`,
      );
    }
    if (frame.type !== FrameType.WELCOME) {
      throw new MigrationError(
        `Unexpected ${
          frameTypeName(frame.type)
        } frame from the receiver: expected WELCOME`,
      );
    }
    const welcome = decodeWelcome(frame.payload);
    this.#welcomed = welcome;
    if (welcome.protocol !== protocol || !welcome.accepted) {
      throw new MigrationError(
        `Receiver's WELCOME does not accept this session: protocol ${welcome.protocol}, accepted ${welcome.accepted} ` +
          `(this source speaks protocol ${protocol})`,
      );
    }
    return welcome;
  }

  /**
   * Takes frames of `type` the receiver sends unasked (a stream tunnel's
   * BACK bytes): they go to `handler`, in order, as they come, and never to
   * {@link expect}. Call before {@link hello}.
   */
  onFrame(type: FrameType, handler: (frame: Frame) => Promise<void>): void {
    this.#unsolicited.set(type, handler);
  }

  /** Throws the receiver's failure, if it reported one. */
  checkPeer(): void {
    if (this.#peerError) throw this.#peerError;
  }

  /** Frames and writes one frame, paced. */
  async write(
    type: FrameType,
    round: number,
    payload: Uint8Array,
    channel = 0,
  ): Promise<void> {
    await this.writeRaw(encodeFrame(type, round, payload, channel));
  }

  /**
   * Writes bytes that form whole frames, paced. Calls may overlap (a
   * records task and a channel pump): each write starts after the previous
   * one ended, in call order.
   */
  writeRaw(bytes: Uint8Array): Promise<void> {
    const run = async () => {
      this.#notePhase(bytes);
      await this.#pacer?.take(bytes.length);
      await this.#within(
        this.#writer.writeRaw(bytes).catch((e) => this.#lost(e)),
        () =>
          `A write of ${bytes.length} bytes to ${this.#receiver()} did not complete within ${this.#replyMs} ms (the reply deadline) during ${this.#phase}: the link or the receiver stopped taking data`,
        true,
      );
      this.#wireBytes += bytes.length;
    };
    const p = this.#tail.then(run);
    this.#tail = p.catch(() => {});
    return p;
  }

  /**
   * Waits for the receiver's next frame, which must be of `type`.
   *
   * @throws {MigrationError} on the receiver's ERROR, a closed connection or
   *   another frame type.
   */
  async expect(type: FrameType): Promise<Uint8Array> {
    return (await this.expectOneOf([type])).payload;
  }

  /**
   * Waits for the receiver's next frame, which must be of one of `types`;
   * returns its type and a copy of its payload.
   *
   * @throws {MigrationError} on the receiver's ERROR, a closed connection or
   *   another frame type.
   */
  async expectOneOf(
    types: readonly FrameType[],
  ): Promise<{ type: FrameType; payload: Uint8Array }> {
    const names = types.map(frameTypeName).join(" or ");
    const frame = await this.#within(
      this.#inbox ?? Promise.resolve(null),
      () =>
        `The receiver did not send ${names} within ${this.#replyMs} ms (the reply deadline): it is stuck, or the link is`,
    );
    if (this.#peerError) throw this.#peerError;
    if (frame === null || frame === undefined) throw this.#closed(types[0]);
    // The reader reuses its buffer on the next read: copy first.
    const payload = frame.payload.slice();
    this.#watch();
    if (!types.includes(frame.type)) {
      throw new MigrationError(
        `Unexpected ${
          frameTypeName(frame.type)
        } frame from the receiver: expected ${names}`,
      );
    }
    return { type: frame.type, payload };
  }

  /** Tells the receiver the migration is given up (best effort, once). */
  async abort(reason: string): Promise<void> {
    if (this.#aborted) return;
    this.#aborted = true;
    // A write stuck before it would hold ABORT back for ever: give up.
    await bestEffort(this.write(FrameType.ABORT, 0, encodeAbort({ reason })));
  }

  /**
   * On a new connection, after the old one was lost while the receiver
   * may have parked the session: sends RESUME for `session` and ABORT
   * right behind it (no round trip in between), then waits, within the
   * reply deadline, until the receiver answers and closes. An ABORT on the
   * old connection would never reach a receiver that closed it when it
   * parked; this one ends the session at once instead of at its grace.
   *
   * @returns True when the receiver took the RESUME (RESUMED) and then
   *   ended the session; false when it refused it (the session had ended
   *   already, or was never this source's).
   * @throws {LinkLostError} when this connection fails too, or an answer
   *   does not come within the reply deadline.
   */
  async abandon(session: string, reason: string): Promise<boolean> {
    this.#aborted = true;
    await this.write(FrameType.RESUME, 0, encodeResume({ session }));
    await this.write(FrameType.ABORT, 0, encodeAbort({ reason }));
    const next = (what: string) =>
      this.#within(
        this.#reader.next().catch((e) => this.#lost(e)),
        () =>
          `The receiver did not ${what} within ${this.#replyMs} ms (the reply deadline)`,
        true,
      );
    const answer = await next("answer RESUME");
    if (answer?.type !== FrameType.RESUMED) return false;
    // It reads ABORT next, discards, and closes the connection.
    for (let frame = await next("close after ABORT"); frame !== null;) {
      frame = await next("close after ABORT");
    }
    return true;
  }

  /** Closes the connection's write side (best effort, 2 s at most). */
  async close(): Promise<void> {
    await bestEffort(this.#writer.close());
  }

  /**
   * `p`, or a {@link MigrationError} with `message()` once the reply
   * deadline passes (a {@link LinkLostError} when `lost`: the link, not the
   * receiver, is what stopped).
   */
  #within<T>(
    p: Promise<T>,
    message: () => string,
    lost = false,
  ): Promise<T> {
    return within(
      p,
      this.#replyMs,
      () =>
        lost
          ? new LinkLostError(message(), this.#loss())
          : new MigrationError(message()),
    );
  }

  /** Reads the receiver's next frame in the background; an ERROR there fails the migration. */
  #watch(): void {
    const next = async (): Promise<Frame | null> => {
      for (;;) {
        const frame = await this.#reader.next();
        const take = frame && this.#unsolicited.get(frame.type);
        if (!take) return frame;
        await take(frame);
      }
    };
    this.#inbox = next().then((frame) => {
      if (frame?.type === FrameType.ERROR) {
        const e = decodeError(frame.payload);
        this.#peerDiscarded = e.discarded === true;
        this.#peerError = new MigrationError(`Receiver failed: ${e.message}`);
      }
      return frame;
    }, (error) => {
      try {
        this.#lost(error);
      } catch (lost) {
        this.#peerError = lost as Error;
      }
      return null;
    });
  }

  /** Where the link was lost: the receiver, its address, the phase. */
  #loss(): LinkLoss {
    return { side: "receiver", peer: this.#remote, phase: this.#phase };
  }

  /** The receiver, named by its address when known. */
  #receiver(): string {
    return this.#remote === null
      ? "the receiver"
      : `the receiver ${this.#remote}`;
  }

  /** Notes the phase that the frame starting `bytes` belongs to. */
  #notePhase(bytes: Uint8Array): void {
    if (bytes.length < HEADER_BYTES) return;
    const type = bytes[2];
    const round = new DataView(bytes.buffer, bytes.byteOffset + 4, 4)
      .getUint32(0, true);
    const phase = PHASES[type]?.(round);
    if (phase !== undefined) this.#phase = phase;
  }

  /** The receiver closed the connection before sending `awaited`. */
  #closed(awaited: FrameType): LinkLostError {
    return new LinkLostError(
      `${
        capitalise(this.#receiver())
      } closed the connection during ${this.#phase}, before sending ${
        frameTypeName(awaited)
      }`,
      { side: "receiver", peer: this.#remote, phase: this.#phase },
    );
  }

  /**
   * Throws the transport's failure `error` as a {@link LinkLostError} that
   * names the receiver and the phase; hakobu's own errors (a timeout, the
   * receiver's words) pass as they are.
   */
  #lost(error: unknown): never {
    if (error instanceof MigrationError) throw error;
    const words = error instanceof Error ? error.message : String(error);
    const how = lossKind(error);
    const who = this.#receiver();
    throw new LinkLostError(
      how === null
        ? `The connection to ${who} failed during ${this.#phase}: ${words}`
        : `${
          capitalise(who)
        } ${how} the connection during ${this.#phase} (${words})`,
      { side: "receiver", peer: this.#remote, phase: this.#phase },
      { cause: error },
    );
  }
}

/** Phase words by the type of the frame the source writes (ABORT, CODEC: no change). */
const PHASES: Readonly<Record<number, (round: number) => string>> = {
  [FrameType.HELLO]: () => "the handshake",
  [FrameType.BATCH]: (round) => `round ${round}`,
  [FrameType.ROUND_END]: (round) => `round ${round}`,
  [FrameType.RECORDS]: (round) => `round ${round}`,
  [FrameType.FINAL]: (round) => `stop-and-copy (round ${round})`,
  [FrameType.STREAM_END]: (round) => `the stream's end (round ${round})`,
  [FrameType.END]: () => "verification",
  [FrameType.COMMIT]: () => "the commit",
};

/** Errors by which the transport says the peer closed the connection. */
const CLOSED_CODES = new Set([
  "EPIPE",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ENOTCONN",
]);
/** … and reset it. */
const RESET_CODES = new Set(["ECONNRESET", "ECONNABORTED"]);

/** "closed" or "reset" when `error` says the peer did so, else null. */
function lossKind(error: unknown): "closed" | "reset" | null {
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted
  ) return "reset";
  if (
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.BadResource ||
    error instanceof Deno.errors.UnexpectedEof
  ) return "closed";
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") {
    if (RESET_CODES.has(code)) return "reset";
    if (CLOSED_CODES.has(code)) return "closed";
  }
  // A Deno.Conn's stream once its socket failed.
  if (
    error instanceof Error &&
    /underlying resource was closed/.test(error.message)
  ) return "closed";
  return null;
}

/** `text` with its first letter upper case. */
function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
