/**
 * The replayed link under a resumable stream tunnel (not part of the public
 * API; `resume_source.ts` and `resume_receiver.ts` are its two ends). It
 * gives a session one logical connection that outlives the TCP/TLS
 * connections it runs on:
 *
 * - Each side keeps the frame bytes it wrote that its peer has not
 *   acknowledged, at most `maxRetainedBytes`: a write past that bound waits
 *   (so the tunnel stops reading its hypervisor, which just blocks).
 * - Each side counts the bytes of whole frames it read (`received`) and
 *   sends it as ACK, at least every `ackBytes` and every `ackMs` (a
 *   keepalive); an ACK goes only between two frames of the logical stream.
 * - A frame is handed on only once whole: a connection lost inside a frame
 *   drops that frame's part, and the resend starts at its first byte.
 * - When a connection is lost, `onLost` decides: the source reconnects
 *   (RESUME → RESUMED), the receiver parks; {@link ReplayLink.attach} then
 *   carries on over the new connection from the byte the peer holds.
 *
 * @module
 */

import { MigrationError, WireError } from "../errors.ts";
import {
  decodeFrameHeader,
  encodeFrame,
  FrameType,
  HEADER_BYTES,
  verifyFrameChecksum,
} from "../wire/frame.ts";
import { type Ack, decodeAck, encodeAck } from "../wire/messages.ts";
import type { WireConn } from "../wire/duplex.ts";

/** The peer claims to hold bytes this side never sent, or no longer keeps: the session cannot go on. */
export class ResendError extends MigrationError {}

/** Default bound on the bytes a side keeps for a resend: 64 MiB. */
export const DEFAULT_MAX_RETAINED_BYTES = 64 << 20;
/** Bytes the logical readable may hold that its reader has not taken. */
const READ_HIGH_WATER = 8 << 20;

/**
 * Reads whole frames, as their raw bytes, from a byte stream: headers are
 * checked (magic, type, length), checksums are not (the session's own
 * reader checks them; ACKs are checked here).
 */
export class RawFrameReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #frames: Uint8Array[] = [];
  #head = new Uint8Array(HEADER_BYTES);
  #headLen = 0;
  #frame: Uint8Array | null = null;
  #fill = 0;
  #offset = 0;
  /** Largest frame (header included) taken, for now; a larger one fails before it is allocated. */
  limit = Infinity;

  /** Takes `readable`'s lock. */
  constructor(readable: ReadableStream<Uint8Array>) {
    this.#reader = readable.getReader();
  }

  /**
   * The next whole frame, or null when the stream ended between frames.
   *
   * @throws {WireError} on a bad header, or when the stream ends inside a frame.
   */
  async next(): Promise<Uint8Array | null> {
    while (this.#frames.length === 0) {
      const { value, done } = await this.#reader.read();
      if (done) {
        if (this.#frame || this.#headLen > 0) {
          throw new WireError(
            `Truncated stream: the connection ended inside the frame at offset ${this.#offset}`,
            this.#offset,
          );
        }
        return null;
      }
      this.#push(value);
    }
    const f = this.#frames.shift()!;
    this.#offset += f.length;
    return f;
  }

  /** Stops reading; the stream is cancelled. */
  cancel(reason?: unknown): Promise<void> {
    return this.#reader.cancel(reason).catch(() => {});
  }

  #checked(total: number): number {
    if (total > this.limit) {
      throw new WireError(
        `The frame at offset ${this.#offset} announces ${total} bytes: at most ${this.limit} are taken here`,
        this.#offset,
      );
    }
    return total;
  }

  #push(chunk: Uint8Array): void {
    let pos = 0;
    const n = chunk.length;
    while (pos < n) {
      if (this.#frame) {
        const k = Math.min(this.#frame.length - this.#fill, n - pos);
        this.#frame.set(chunk.subarray(pos, pos + k), this.#fill);
        this.#fill += k;
        pos += k;
        if (this.#fill === this.#frame.length) {
          this.#frames.push(this.#frame);
          this.#frame = null;
        }
        continue;
      }
      if (this.#headLen === 0 && n - pos >= HEADER_BYTES) {
        const total = this.#checked(
          HEADER_BYTES +
            decodeFrameHeader(chunk.subarray(pos, pos + HEADER_BYTES)).length,
        );
        if (n - pos >= total) {
          // Whole in this chunk: a view, no copy (chunks are never reused).
          this.#frames.push(chunk.subarray(pos, pos + total));
          pos += total;
          continue;
        }
      }
      const k = Math.min(HEADER_BYTES - this.#headLen, n - pos);
      this.#head.set(chunk.subarray(pos, pos + k), this.#headLen);
      this.#headLen += k;
      pos += k;
      if (this.#headLen === HEADER_BYTES) {
        const total = this.#checked(
          HEADER_BYTES + decodeFrameHeader(this.#head).length,
        );
        this.#frame = new Uint8Array(total);
        this.#frame.set(this.#head);
        this.#fill = HEADER_BYTES;
        this.#headLen = 0;
        if (total === HEADER_BYTES) {
          this.#frames.push(this.#frame);
          this.#frame = null;
        }
      }
    }
  }
}

/** One connection under the link. */
export interface Physical {
  /** Whole frames from the peer. */
  readonly frames: RawFrameReader;
  /** Writes bytes to the peer. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the connection (both ways). */
  close(): void;
  /** The peer's address, when known. */
  readonly remote?: string;
}

/** A connection as a {@link Physical}. */
export function physical(
  conn: WireConn & { close?(): void },
  frames: RawFrameReader = new RawFrameReader(conn.readable),
): Physical {
  const writer = conn.writable.getWriter();
  return {
    frames,
    remote: conn.remote,
    write: (bytes) => writer.write(bytes),
    close: () => {
      frames.cancel();
      writer.abort().catch(() => {});
      try {
        conn.close?.();
      } catch { /* closed */ }
    },
  };
}

/** Options of {@link ReplayLink}. */
export interface ReplayLinkOptions {
  /** Most bytes kept for a resend (default {@link DEFAULT_MAX_RETAINED_BYTES}). */
  readonly maxRetainedBytes?: number;
  /** An ACK at least every this many bytes read (default an eighth of the bound, at most 4 MiB). */
  readonly ackBytes?: number;
  /** And every this many ms while connected, as a keepalive (default 250). */
  readonly ackMs?: number;
  /**
   * A connection with unacknowledged bytes and no ACK for this long is
   * taken as lost (a blackholed link); default: never.
   */
  readonly stallMs?: number;
  /**
   * The receiver's side: the session it made resumable, named in its first
   * ACK (written before anything else); ACKs flow from the start. Without
   * it (the source) ACKs start at {@link ReplayLink.startAcking}.
   */
  readonly grant?: { readonly session: string; readonly resumeMs: number };
  /** The connection was lost: reconnect or park, then {@link ReplayLink.attach} or {@link ReplayLink.fail}. */
  readonly onLost: (error: Error) => void;
  /** The peer's first ACK named a session (the receiver made the link resumable). */
  readonly onGrant?: (grant: Required<Ack>) => void;
  /** The first frame of the logical stream came in (the source: no grant before it means no resume). */
  readonly onFirstFrame?: () => void;
}

interface Kept {
  readonly bytes: Uint8Array;
  /** Whether the chunk ends a frame. */
  readonly endsFrame: boolean;
}

/** One session's logical connection over a series of real ones. */
export class ReplayLink {
  /** The logical connection the session reads and writes. */
  readonly conn: WireConn;
  readonly #options: ReplayLinkOptions;
  readonly #max: number;
  readonly #ackBytes: number;
  readonly #ackMs: number;
  // Outgoing: the kept chunks cover [#keptFrom, #sent).
  #kept: Kept[] = [];
  #keptFrom = 0;
  #sent = 0;
  #written = 0;
  #atBoundary = true;
  /** Bytes left of the frame being accepted, and a header split across writes. */
  #frameLeft = 0;
  #headPart: number[] = [];
  #retain = true;
  #acking = false;
  #grant: { readonly session: string; readonly resumeMs: number } | null;
  #peerAcked = 0;
  // Incoming.
  #received = 0;
  #ackedReceived = -1;
  #ackDue = false;
  #lastAckIn = performance.now();
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #pulled: (() => void) | null = null;
  #firstFrame = true;
  #readCancelled = false;
  /** The session closed its writable and this side said its last ACK: a loss is not resumed. */
  #finished = false;
  /** The session closed its writable (it has said its last word). */
  #writeClosed = false;
  // The connection.
  #phys: Physical | null = null;
  #pumping = false;
  #timer: ReturnType<typeof setInterval> | null = null;
  #spaceWaiters: (() => void)[] = [];
  #failed: Error | null = null;
  #closed = false;
  /** Connections lost so far. */
  losses = 0;

  /** Creates a link with no connection yet ({@link attach} gives it one). */
  constructor(options: ReplayLinkOptions) {
    this.#options = options;
    this.#max = options.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES;
    this.#ackBytes = options.ackBytes ??
      Math.min(4 << 20, Math.max(1, Math.floor(this.#max / 8)));
    this.#ackMs = options.ackMs ?? 250;
    this.#grant = options.grant ?? null;
    this.#acking = this.#grant !== null;
    const readable = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.#controller = c;
      },
      pull: () => {
        this.#pulled?.();
        this.#pulled = null;
      },
      // The session stops reading: frames are dropped from now on, ACKs
      // still read (a receiver waits for the source's last ACK).
      cancel: () => {
        this.#readCancelled = true;
        this.#pulled?.();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: READ_HIGH_WATER }));
    const writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#accept(chunk),
      close: () => this.#finish(),
      abort: () => this.close(),
    });
    this.conn = {
      readable,
      writable,
      get remote() {
        return undefined;
      },
    };
  }

  /** Bytes of whole frames read from the peer in the session. */
  get received(): number {
    return this.#received;
  }

  /** Frame bytes the session wrote. */
  get sent(): number {
    return this.#sent;
  }

  /** Bytes the peer acknowledged. */
  get acknowledged(): number {
    return this.#peerAcked;
  }

  /** Bytes kept for a resend now. */
  get retained(): number {
    return this.#sent - this.#keptFrom;
  }

  /** Whether the link ended (closed or failed): it carries nothing more. */
  get ended(): boolean {
    return this.#closed || this.#failed !== null;
  }

  /** Whether a connection carries the link now. */
  get attached(): boolean {
    return this.#phys !== null;
  }

  /** The current connection's peer address, when known. */
  get remote(): string | undefined {
    return this.#phys?.remote;
  }

  /** Stops keeping bytes for a resend (the link is not resumable). */
  stopRetaining(): void {
    this.#retain = false;
    this.#prune(this.#written);
  }

  /** The link is resumable (the source learnt it): ACKs flow, and a silent link is noticed. */
  startAcking(): void {
    this.#acking = true;
    this.#lastAckIn = performance.now();
  }

  /**
   * Carries the link on `phys`, resending from `peerReceived` (the bytes of
   * whole frames the peer holds, from RESUME/RESUMED; 0 at the start).
   *
   * @throws {MigrationError} when the peer claims bytes this side no longer
   *   keeps, or never sent.
   */
  attach(phys: Physical, peerReceived: number): void {
    if (this.#failed || this.#closed) {
      phys.close();
      throw this.#failed ?? new MigrationError("The link is closed");
    }
    if (peerReceived < this.#keptFrom || peerReceived > this.#sent) {
      // (#keptFrom is at most what the peer acknowledged)
      phys.close();
      throw new ResendError(
        `The peer holds ${peerReceived} bytes of the session, but this side kept bytes ${this.#keptFrom} to ${this.#sent} of it: it cannot resend from there`,
      );
    }
    if (peerReceived > this.#peerAcked) this.#peerAcked = peerReceived;
    this.#prune(peerReceived);
    this.#written = peerReceived;
    this.#atBoundary = true;
    this.#phys = phys;
    // The receiver's first ACK names the session, before anything else.
    this.#ackDue = this.#grant !== null && this.#ackedReceived < 0;
    this.#lastAckIn = performance.now();
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.#tick(), this.#ackMs);
    }
    void this.#readLoop(phys);
    this.#kick();
  }

  /** Drops the current connection as lost (a RESUME took the session over, say). */
  drop(reason: Error): void {
    if (this.#phys) this.#lose(this.#phys, reason);
  }

  /** Ends the link with `error`: the session's reads and writes fail with it. */
  fail(error: Error): void {
    if (this.#failed || this.#closed) return;
    this.#failed = error;
    try {
      this.#controller.error(error);
    } catch { /* closed */ }
    this.#end();
  }

  /** Ends the link (the session is over): nothing more is resent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#controller.close();
    } catch { /* errored or closed */ }
    this.#end();
  }

  #end(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#phys?.close();
    this.#phys = null;
    this.#kept = [];
    for (const w of this.#spaceWaiters.splice(0)) w();
    this.#pulled?.();
  }

  /** A write of the session: kept, sent when connected; waits while the bound is full. */
  async #accept(chunk: Uint8Array): Promise<void> {
    if (this.#failed) throw this.#failed;
    if (this.#closed) throw new MigrationError("The link is closed");
    const bytes = chunk.slice(); // the writer may reuse its buffer
    this.#kept.push({ bytes, endsFrame: this.#track(bytes) });
    this.#sent += bytes.length;
    this.#kick();
    while (
      this.#sent - this.#keptFrom > this.#max && !this.#failed && !this.#closed
    ) {
      await new Promise<void>((r) => this.#spaceWaiters.push(r));
    }
    if (this.#failed) throw this.#failed;
  }

  /** Follows frame boundaries through the written bytes; whether `bytes` ends a frame. */
  #track(bytes: Uint8Array): boolean {
    let pos = 0;
    while (pos < bytes.length) {
      if (this.#frameLeft > 0) {
        const k = Math.min(this.#frameLeft, bytes.length - pos);
        this.#frameLeft -= k;
        pos += k;
        continue;
      }
      while (this.#headPart.length < HEADER_BYTES && pos < bytes.length) {
        this.#headPart.push(bytes[pos++]);
      }
      if (this.#headPart.length === HEADER_BYTES) {
        const h = this.#headPart;
        this.#frameLeft = (h[8] | h[9] << 8 | h[10] << 16) + h[11] * 2 ** 24;
        this.#headPart = [];
      }
    }
    return this.#frameLeft === 0 && this.#headPart.length === 0;
  }

  /**
   * The session's writable closed: waits until what it wrote was written,
   * then tells the peer, in a last ACK, what this side holds of its frames
   * (a peer that waits to know its last frames arrived learns it).
   */
  async #finish(): Promise<void> {
    this.#writeClosed = true;
    // The source's last frames (an ABORT, say) wait for a reconnection in
    // progress too: its caller bounds how long (a detached receiver waits
    // for nobody: its source resumes, or not).
    while (
      this.#written < this.#sent && !this.#failed && !this.#closed &&
      (this.#phys || this.#grant === null)
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    if (!this.#acking || !this.#phys) return;
    this.#ackDue = true;
    this.#kick();
    for (let i = 0; i < 200 && this.#ackDue && this.#phys; i++) {
      await new Promise((r) => setTimeout(r, 5));
    }
    this.#finished = !this.#ackDue;
  }

  /**
   * Waits until the peer acknowledged everything written (its last frames
   * arrived, after a resume if need be), the link failed or closed, or
   * `ms` passed; whether everything was acknowledged.
   */
  async drain(ms: number): Promise<boolean> {
    const end = performance.now() + ms;
    while (
      this.#peerAcked < this.#sent && !this.#failed && !this.#closed &&
      performance.now() < end
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.#peerAcked >= this.#sent;
  }

  #prune(upTo: number): void {
    while (this.#kept.length > 0) {
      const first = this.#kept[0];
      const end = this.#keptFrom + first.bytes.length;
      if (end <= upTo) {
        this.#kept.shift();
        this.#keptFrom = end;
        continue;
      }
      break;
    }
    for (const w of this.#spaceWaiters.splice(0)) w();
  }

  /** Writes what the connection has not carried yet, and ACKs between frames. */
  #kick(): void {
    if (this.#pumping || !this.#phys) return;
    this.#pumping = true;
    void this.#pump().finally(() => {
      this.#pumping = false;
      if (
        this.#phys &&
        (this.#written < this.#sent ||
          (this.#ackDue && this.#atBoundary && this.#acking))
      ) this.#kick();
    });
  }

  async #pump(): Promise<void> {
    const phys = this.#phys!;
    while (this.#phys === phys) {
      if (this.#ackDue && this.#atBoundary && this.#acking) {
        this.#ackDue = false;
        const first = this.#ackedReceived < 0 && this.#grant !== null;
        this.#ackedReceived = this.#received;
        try {
          await phys.write(
            encodeFrame(
              FrameType.ACK,
              0,
              encodeAck({
                received: this.#received,
                ...(first ? this.#grant : {}),
              }),
            ),
          );
        } catch (e) {
          this.#lose(phys, asError(e));
          return;
        }
        continue;
      }
      if (this.#written >= this.#sent) return;
      // The kept chunk holding #written, from #written to its end.
      let at = this.#keptFrom;
      let piece: Kept | null = null;
      for (const k of this.#kept) {
        if (at + k.bytes.length > this.#written) {
          piece = k;
          break;
        }
        at += k.bytes.length;
      }
      if (!piece) return; // pruned meanwhile (the link ended)
      const bytes = piece.bytes.subarray(this.#written - at);
      try {
        await phys.write(bytes);
      } catch (e) {
        this.#lose(phys, asError(e));
        return;
      }
      if (this.#phys !== phys) return;
      this.#written += bytes.length;
      this.#atBoundary = piece.endsFrame;
      if (!this.#retain) this.#prune(this.#written);
    }
  }

  #tick(): void {
    const phys = this.#phys;
    if (!phys) return;
    if (!this.#acking) return;
    const stall = this.#options.stallMs;
    if (
      stall !== undefined && this.#sent > this.#peerAcked &&
      performance.now() - this.#lastAckIn > stall
    ) {
      this.#lose(
        phys,
        new MigrationError(
          `no ACK for ${stall} ms while ${
            this.#sent - this.#keptFrom
          } bytes wait for one: the link went silent`,
        ),
      );
      return;
    }
    this.#ackDue = true;
    this.#kick();
  }

  async #readLoop(phys: Physical): Promise<void> {
    try {
      for (;;) {
        const f = await phys.frames.next();
        if (this.#phys !== phys) return;
        if (f === null) {
          this.#lose(phys, new MigrationError("the connection was closed"));
          return;
        }
        if (f[2] === FrameType.ACK) {
          const payload = f.subarray(HEADER_BYTES);
          verifyFrameChecksum(f.subarray(0, HEADER_BYTES), payload);
          this.#ack(decodeAck(payload));
          continue;
        }
        if (this.#firstFrame) {
          this.#firstFrame = false;
          this.#options.onFirstFrame?.();
        }
        this.#received += f.length;
        if (
          this.#received - Math.max(0, this.#ackedReceived) >= this.#ackBytes
        ) {
          this.#ackDue = true;
          this.#kick();
        }
        if (this.#readCancelled) continue;
        try {
          this.#controller.enqueue(f);
        } catch {
          this.#readCancelled = true; // the session is done reading
          continue;
        }
        while (
          (this.#controller.desiredSize ?? 1) <= 0 && this.#phys === phys &&
          !this.#closed && !this.#failed && !this.#readCancelled
        ) {
          await new Promise<void>((r) => this.#pulled = r);
        }
      }
    } catch (e) {
      this.#lose(phys, asError(e));
    }
  }

  #ack(ack: Ack): void {
    this.#lastAckIn = performance.now();
    if (ack.session !== undefined) {
      this.#options.onGrant?.(ack as Required<Ack>);
    }
    if (ack.received > this.#sent) {
      this.fail(
        new MigrationError(
          `The peer acknowledged ${ack.received} bytes, but only ${this.#sent} were sent`,
        ),
      );
      return;
    }
    if (ack.received > this.#peerAcked) this.#peerAcked = ack.received;
    if (ack.received > this.#keptFrom) this.#prune(ack.received);
  }

  #lose(phys: Physical, error: Error): void {
    if (this.#phys !== phys) return;
    this.#phys = null;
    this.losses++;
    phys.close();
    if (this.#closed || this.#failed) return;
    if (this.#finished && this.#options.grant === undefined) {
      // The source said its last word: nothing more to resume for.
      this.close();
      return;
    }
    if (
      this.#grant !== null && this.#writeClosed &&
      this.#peerAcked >= this.#sent
    ) {
      // The receiver's session said its last word and the source holds all
      // of it: the source closing now is the session's end, not a loss.
      this.close();
      return;
    }
    this.#options.onLost(error);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
