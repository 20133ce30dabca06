/**
 * The sending side's connection, whatever is sent: the handshake (HELLO →
 * WELCOME, or the receiver's refusal), paced frame writes counted in wire
 * bytes, a background watch for the receiver's ERROR (which fails the next
 * step with the receiver's own words), waiting for a reply of one type, and
 * ABORT. Native migrations and the hypervisor tunnels send through it.
 *
 * @module
 */

import { MigrationError } from "../errors.ts";
import { DEFAULT_DEADLINES } from "../plan.ts";
import { bestEffort } from "./best_effort.ts";
import { Pacer } from "../transport/pacer.ts";
import type { WireConn } from "../wire/duplex.ts";
import {
  encodeFrame,
  type Frame,
  FrameType,
  frameTypeName,
} from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeError,
  decodeWelcome,
  encodeAbort,
  encodeHello,
  type Hello,
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
}

/** Options of {@link SourceLink.hello}. */
export interface HelloOptions {
  /**
   * Runs once HELLO is written, while the receiver answers; the handshake
   * ends when both are done, and its failure is thrown first.
   */
  readonly meanwhile?: () => void | Promise<void>;
}

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
  #inbox: Promise<Frame | null> | null = null;
  #aborted = false;
  /** Frames the receiver may send at any time, and who takes them. */
  #unsolicited = new Map<number, (frame: Frame) => Promise<void>>();
  /** Writes in flight, chained: frames from several tasks never interleave. */
  #tail: Promise<void> = Promise.resolve();
  readonly #replyMs: number;

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
   * Sends HELLO and waits for WELCOME; then watches the receiver in the
   * background. `options.meanwhile` runs once HELLO is written, while the
   * receiver answers (a sender starts its channel Workers there: their
   * start-up is the largest fixed cost of a short migration); its failure
   * is thrown first.
   *
   * @returns The receiver's WELCOME (e.g. the verification scheme it chose).
   * @throws {MigrationError} with the receiver's reason when it refuses.
   */
  async hello(hello: Hello, options: HelloOptions = {}): Promise<Welcome> {
    await this.write(FrameType.HELLO, 0, encodeHello(hello));
    const welcome = this.#within(
      this.#welcome(hello.protocol),
      () =>
        `The receiver did not answer HELLO within ${this.#replyMs} ms (the reply deadline): it is stuck, or the link is`,
    );
    if (options.meanwhile) {
      welcome.catch(() => {}); // awaited below, once `meanwhile` succeeded
      await options.meanwhile();
    }
    const answer = await welcome;
    this.#watch();
    return answer;
  }

  /** Reads the receiver's answer to HELLO: WELCOME, or a refusal. */
  async #welcome(protocol: number): Promise<Welcome> {
    let frame = await this.#reader.next();
    for (
      let take = frame && this.#unsolicited.get(frame.type);
      frame && take;
      take = frame && this.#unsolicited.get(frame.type)
    ) {
      await take(frame);
      frame = await this.#reader.next();
    }
    if (frame === null) {
      throw new MigrationError(
        "Receiver closed the connection during the handshake",
      );
    }
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
      await this.#pacer?.take(bytes.length);
      await this.#within(
        this.#writer.writeRaw(bytes),
        () =>
          `A write of ${bytes.length} bytes to the receiver did not complete within ${this.#replyMs} ms (the reply deadline): the link or the receiver stopped taking data`,
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
    if (frame === null || frame === undefined) {
      throw new MigrationError(
        "Receiver closed the connection before answering",
      );
    }
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

  /** Closes the connection's write side (best effort, 2 s at most). */
  async close(): Promise<void> {
    await bestEffort(this.#writer.close());
  }

  /** `p`, or a {@link MigrationError} with `message()` once the reply deadline passes. */
  async #within<T>(p: Promise<T>, message: () => string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new MigrationError(message())),
            this.#replyMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
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
        this.#peerError = new MigrationError(
          `Receiver failed: ${decodeError(frame.payload).message}`,
        );
      }
      return frame;
    }, (error) => {
      this.#peerError = new MigrationError(
        `Lost the receiver: ${error instanceof Error ? error.message : error}`,
      );
      return null;
    });
  }
}
