/**
 * The receiving tunnel's side of a resumable stream tunnel. Every
 * connection that authenticated goes through {@link StreamResumeServer.admit}:
 *
 * - A HELLO that asks for a resumable session (`resumeMs`) opens one: the
 *   server answers, before anything else, with an ACK naming the session
 *   id (128 random bits) and its grace, and gives the session a logical
 *   connection that outlives this one. When the connection is lost the
 *   session parks — its destination (QEMU's or xl's pipe) stays open and
 *   just sees no bytes — until a RESUME takes it on, or the grace passes
 *   and the session fails ("no RESUME came within the session's grace").
 * - A RESUME is handed to its session only when it names its id and comes
 *   from the same source identity (TLS client certificate or PSK identity),
 *   as for native sessions (`engine/session/resume_registry.ts`); anything
 *   else is refused with one and the same ERROR, and the session is left
 *   alone. A RESUME for a session whose connection still looks open here
 *   (half-open) takes it over.
 * - Any other first frame (a HELLO that does not ask) goes to the session as
 *   it is, on the plain connection.
 *
 * @module
 */

import { LinkLostError, MigrationError, WireError } from "../errors.ts";
import {
  ResumableSession,
  ResumeRegistry,
} from "../session/resume_registry.ts";
import {
  encodeFrame,
  FrameType,
  HEADER_BYTES,
  MAX_JSON_PAYLOAD,
  verifyFrameChecksum,
} from "../wire/frame.ts";
import type { WireConn } from "../wire/duplex.ts";
import {
  decodeHello,
  decodeResume,
  encodeError,
  encodeResumed,
} from "../wire/messages.ts";
import {
  DEFAULT_MAX_RETAINED_BYTES,
  type Physical,
  physical,
  RawFrameReader,
  ReplayLink,
  ResendError,
} from "./_replay_link.ts";

/** What a RESUME's connection hands its session. */
interface StreamHandover {
  readonly phys: Physical;
  /** Bytes of whole frames the source holds of this side's. */
  readonly received: number;
  /** The session carries on over this connection (before it answers RESUMED). */
  use(): void;
  /** The session is done with this connection; one it never used is refused. */
  release(): void;
}

/** Options of {@link StreamResumeServer}. */
export interface StreamResumeServerOptions {
  /** Longest grace a session gets, whatever HELLO asks (default 2 minutes; 0: no session is resumable). */
  readonly maxGraceMs?: number;
  /** Most bytes a session keeps for a resend to the source (xl's answers; default 64 MiB). */
  readonly maxRetainedBytes?: number;
  /** Called for each session that parks and each that resumes (for logs). */
  readonly onEvent?: (event: StreamResumeEvent) => void;
  /** Most milliseconds from the connection to its whole first frame (default 10 000). */
  readonly firstFrameMs?: number;
}

/** What {@link StreamResumeServerOptions.onEvent} is told. */
export type StreamResumeEvent =
  | {
    readonly type: "parked";
    readonly session: string;
    readonly reason: string;
    /** Bytes of whole frames the session holds of the source's. */
    readonly received: number;
  }
  | {
    readonly type: "resumed";
    readonly session: string;
    /** Bytes the source said it holds of this side's; what follows is sent again. */
    readonly sourceHeld: number;
    readonly received: number;
  }
  | { readonly type: "refused"; readonly message: string };

/** What {@link StreamResumeServer.admit} made of a connection. */
export type Admitted =
  | {
    /**
     * A new session: run it (`receiveStream`) on `conn`, then call
     * `done(why)` once it ended, whatever the outcome: it resolves once
     * the source holds what the session sent (after a resume, if its
     * connection is lost meanwhile), or cannot, and closes the connection.
     */
    readonly kind: "session";
    readonly conn: WireConn;
    /** The session id, when resumable. */
    readonly session: string | null;
    done(why: string): Promise<void>;
  }
  | {
    /** A RESUME carried a session on; resolved once that session let this connection go. */
    readonly kind: "resumed";
    readonly session: string;
  }
  | {
    /** A RESUME refused (the ERROR was sent), or the connection ended first. */
    readonly kind: "refused";
    readonly message: string;
  };

/**
 * The resumable sessions of one receiving tunnel.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuFormat, sendStream } from "@hakobu/hakobu";
 * import { receiveStream } from "./receive.ts";
 * import { StreamResumeServer } from "./resume_receiver.ts";
 *
 * // On a host: a TLS listener, each connection with its identity.
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const { port } = listener.addr as Deno.NetAddr;
 * const server = new StreamResumeServer({ maxGraceMs: 60_000 });
 * const received = (async () => {
 *   const admitted = await server.admit(await listener.accept(), null);
 *   assert.equal(admitted.kind, "session"); // a HELLO; a RESUME is served inside
 *   if (admitted.kind !== "session") return;
 *   try {
 *     return await receiveStream(admitted.conn, {
 *       format: "qemu",
 *       out: new WritableStream(),
 *       // The session waits through a cut: its frame timeout must too.
 *       frameTimeoutMs: 120_000 + server.maxGraceMs,
 *     });
 *   } finally {
 *     await admitted.done("ended");
 *   }
 * })();
 * const gz = await Deno.open(
 *   new URL("../qemu/stream/testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
 * const stats = await sendStream(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 *   await connect(),
 *   { format: qemuFormat, channels: 1, resume: { graceMs: 30_000, reconnect: connect } },
 * );
 * assert.equal((await received)?.verified, true);
 * assert.equal(stats.verified, true);
 * assert.deepEqual(stats.resumes, []); // no cut here: nothing to resume
 * listener.close();
 * ```
 */
export class StreamResumeServer {
  /** The sessions, shared by every connection. */
  readonly #registry: ResumeRegistry<StreamHandover>;
  readonly #options: StreamResumeServerOptions;

  /** Creates a server with no session. */
  constructor(options: StreamResumeServerOptions = {}) {
    this.#options = options;
    this.#registry = new ResumeRegistry<StreamHandover>({
      maxGraceMs: options.maxGraceMs,
    });
  }

  /** Longest grace a session gets. */
  get maxGraceMs(): number {
    return this.#registry.maxGraceMs;
  }

  /** Sessions whose connection is lost, waiting for a RESUME. */
  get parked(): number {
    return this.#registry.parked;
  }

  /** RESUMEs that took a session over from a connection still open here (half-open). */
  get takeovers(): number {
    return this.#registry.takeovers;
  }

  /**
   * Reads the first frame of `conn` (which authenticated as `identity`;
   * null over plain TCP) and says what it is. A refused RESUME is answered
   * with ERROR and its connection closed here.
   *
   * @param options `hello: false`: take only RESUMEs (a tunnel that serves
   *   one migration and has it already).
   */
  async admit(
    conn: WireConn & { close?(): void },
    identity: string | null,
    options: { hello?: boolean } = {},
  ): Promise<Admitted> {
    const frames = new RawFrameReader(conn.readable);
    let phys: Physical | null = null;
    const refuse = async (message: string): Promise<Admitted> => {
      this.#options.onEvent?.({ type: "refused", message });
      phys ??= physical(conn, frames);
      await bounded(
        phys.write(encodeFrame(FrameType.ERROR, 0, encodeError({ message }))),
      );
      phys.close();
      return { kind: "refused", message };
    };
    let first: Uint8Array | null;
    // A first frame is HELLO or RESUME: JSON, small, and soon.
    frames.limit = HEADER_BYTES + MAX_JSON_PAYLOAD;
    const firstMs = this.#options.firstFrameMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      first = await Promise.race([
        frames.next(),
        new Promise<never>((_, reject) =>
          timer = setTimeout(
            () =>
              reject(
                new WireError(
                  `No first frame within ${firstMs} ms of connecting: the peer is idle or too slow`,
                ),
              ),
            firstMs,
          )
        ),
      ]);
    } catch (e) {
      return await refuse(e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
      frames.limit = Infinity;
    }
    if (first === null) {
      return await refuse("The connection ended before its first frame");
    }
    const type = first[2];
    const payload = first.subarray(HEADER_BYTES);
    if (type === FrameType.RESUME) {
      let resume;
      try {
        verifyFrameChecksum(first.subarray(0, HEADER_BYTES), payload);
        resume = decodeResume(payload);
      } catch (e) {
        return await refuse(e instanceof Error ? e.message : String(e));
      }
      if (resume.received === undefined) {
        return await refuse(
          "RESUME for a stream tunnel must say how many bytes the source holds (received)",
        );
      }
      phys = physical(conn, frames);
      let claimed: Promise<void>;
      let used = false;
      try {
        claimed = this.#registry.claim(resume.session, identity, {
          phys,
          received: resume.received,
          use: () => used = true,
          release: () => {},
        });
      } catch (e) {
        return await refuse(e instanceof Error ? e.message : String(e));
      }
      await claimed;
      if (!used) {
        // Let go before the session took it: the session ended meanwhile
        // (a RESUME after its end), or a newer RESUME took its place.
        return await refuse(
          this.#registry.endedMessage(resume.session, identity) ??
            `Session ${resume.session} was resumed by a newer RESUME`,
        );
      }
      return { kind: "resumed", session: resume.session };
    }
    if (type === FrameType.HELLO && options.hello === false) {
      return await refuse(
        "This tunnel serves one migration and takes only RESUMEs of it now",
      );
    }
    // A HELLO that asks for a resumable session gets one; anything else goes
    // on as it came, for the session to judge.
    let resumeMs = 0;
    if (type === FrameType.HELLO) {
      try {
        verifyFrameChecksum(first.subarray(0, HEADER_BYTES), payload);
        resumeMs = decodeHello(payload).resumeMs ?? 0;
      } catch { /* the session refuses it with its reasons */ }
    }
    if (resumeMs <= 0 || this.#registry.maxGraceMs === 0) {
      return {
        kind: "session",
        conn: plain(conn, first, frames),
        session: null,
        done: () => {
          try {
            conn.close?.();
          } catch { /* closed */ }
          return Promise.resolve();
        },
      };
    }
    const session = this.#registry.open(identity, resumeMs);
    return this.#open(session, conn, frames, first);
  }

  #open(
    session: ResumableSession<StreamHandover>,
    conn: WireConn & { close?(): void },
    frames: RawFrameReader,
    hello: Uint8Array,
  ): Admitted {
    let release: (() => void) | null = null;
    let ended = false;
    const emit = this.#options.onEvent ?? (() => {});
    const link: ReplayLink = new ReplayLink({
      maxRetainedBytes: this.#options.maxRetainedBytes ??
        DEFAULT_MAX_RETAINED_BYTES,
      grant: { session: session.id, resumeMs: session.graceMs },
      onLost: (error) => void park(error),
    });
    const park = async (lost: Error): Promise<void> => {
      release?.();
      release = null;
      emit({
        type: "parked",
        session: session.id,
        reason: lost.message,
        received: link.received,
      });
      let handover: StreamHandover;
      try {
        handover = await session.park();
      } catch (e) {
        // Closed while parked: it ended, and said so; nothing to fail.
        if (ended) return;
        const why = e instanceof Error ? e.message : String(e);
        session.close(`it failed: ${lost.message}; ${why}`);
        link.fail(
          new LinkLostError(
            `The link to the sending tunnel was lost (${lost.message}), and ${why}`,
            { side: "source", peer: conn.remote ?? null, phase: "the stream" },
            { cause: lost },
          ),
        );
        return;
      }
      if (ended) {
        handover.release(); // refused: the session has ended
        return;
      }
      handover.use();
      release = handover.release;
      try {
        await handover.phys.write(
          encodeFrame(
            FrameType.RESUMED,
            0,
            encodeResumed({ channelPages: [], received: link.received }),
          ),
        );
        link.attach(handover.phys, handover.received);
      } catch (e) {
        // This connection failed too (or claims bytes never sent): park again.
        handover.phys.close();
        if (e instanceof ResendError) {
          session.close(`it failed: ${e.message}`);
          link.fail(e);
          return;
        }
        return park(e instanceof Error ? e : new Error(String(e)));
      }
      emit({
        type: "resumed",
        session: session.id,
        sourceHeld: handover.received,
        received: link.received,
      });
    };
    session.onTakeover(() =>
      link.drop(
        new MigrationError(
          "a RESUME took the session over from a connection still open here (half-open)",
        ),
      )
    );
    // HELLO is the link's first frame: hand it to the session first.
    const phys = physical(conn, frames);
    const withHello: Physical = {
      ...phys,
      frames: prepend(frames, hello),
    };
    link.attach(withHello, 0);
    return {
      kind: "session",
      conn: link.conn,
      session: session.id,
      done: async (why: string) => {
        // The source's last frames (RESULT, xl's last words) may be lost
        // with a connection: the session stays resumable until the source
        // acknowledged them, or its grace passes while parked.
        await link.drain(session.graceMs + 5000);
        ended = true;
        session.close(why);
        link.close();
        release?.();
        release = null;
      },
    };
  }
}

/** Waits for `p` at most 2 s (a refused peer's last words are not waited for long). */
async function bounded(p: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    p.catch(() => {}),
    new Promise((r) => timer = setTimeout(r, 2000)),
  ]);
  clearTimeout(timer);
}

/** `frames`, with `first` read again first. */
function prepend(frames: RawFrameReader, first: Uint8Array): RawFrameReader {
  let pending: Uint8Array | null = first;
  return {
    next: () => {
      if (pending) {
        const f = pending;
        pending = null;
        return Promise.resolve(f);
      }
      return frames.next();
    },
    cancel: (reason?: unknown) => frames.cancel(reason),
  } as RawFrameReader;
}

/** The connection as it came: `first`, then the rest as it is read. */
function plain(
  conn: WireConn,
  first: Uint8Array,
  frames: RawFrameReader,
): WireConn {
  const f = prepend(frames, first);
  return {
    remote: conn.remote,
    writable: conn.writable,
    readable: new ReadableStream<Uint8Array>({
      async pull(c) {
        try {
          const next = await f.next();
          if (next === null) c.close();
          else c.enqueue(next);
        } catch (e) {
          c.error(e);
        }
      },
      cancel: (reason) => f.cancel(reason),
    }),
  };
}
