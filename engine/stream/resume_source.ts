/**
 * The sending tunnel's side of a resumable stream tunnel: a connection to
 * the receiving tunnel that survives the loss of the TCP/TLS link under it.
 * It keeps the frames the receiving tunnel has not acknowledged (at most
 * `maxRetainedBytes`; past that, writes wait, so the tunnel stops reading
 * its hypervisor, whose stream just stalls), and when the link is lost it
 * reconnects within the grace, sends RESUME with the session id the
 * receiver gave (its first ACK) and what it holds of the receiver's
 * frames, and, on RESUMED, sends again only the frames after the last one
 * the receiver holds. The session above (`sendStream`) never sees the cut.
 * See `docs/wire-format.md`, "Resuming a stream tunnel".
 *
 * @module
 */

import { LinkLostError, MigrationError } from "../errors.ts";
import {
  encodeFrame,
  FrameType,
  frameTypeName,
  HEADER_BYTES,
  verifyFrameChecksum,
} from "../wire/frame.ts";
import type { WireConn } from "../wire/duplex.ts";
import { decodeError, decodeResumed, encodeResume } from "../wire/messages.ts";
import {
  DEFAULT_MAX_RETAINED_BYTES,
  physical,
  RawFrameReader,
  ReplayLink,
  ResendError,
} from "./_replay_link.ts";

/** A connection the tunnel reconnects with: TCP, or TLS (authenticated as the first one). */
export type Reconnected = WireConn & { close?(): void };

/** How a sending tunnel resumes (`sendStream`'s `resume`). */
export interface StreamResumeOptions {
  /** Opens a new connection to the same receiving tunnel, authenticated as the first. */
  readonly reconnect: () => Promise<Reconnected>;
  /**
   * Most milliseconds from a lost link to the end of the RESUME that
   * carries the session on (the receiver may keep it for less: its first
   * ACK says how long, and the shorter counts).
   */
  readonly graceMs: number;
  /** Most reconnections per lost link (default 5). */
  readonly attempts?: number;
  /** Most bytes kept for a resend (default 64 MiB). */
  readonly maxRetainedBytes?: number;
  /**
   * A link with unacknowledged frames and no ACK from the receiver for
   * this long is taken as lost (default 15 000 ms; the receiver ACKs every
   * 250 ms).
   */
  readonly stallMs?: number;
}

/** One lost link the tunnel resumed from. */
export interface StreamResumeReport {
  /** Why the link was taken as lost. */
  readonly reason: string;
  /** Connections tried. */
  readonly attempts: number;
  /** Milliseconds from the loss to RESUMED. */
  readonly downMs: number;
  /** Frame bytes written to the session when the loss was noticed. */
  readonly sentAtLoss: number;
  /** Of those, bytes the receiver had acknowledged then. */
  readonly acknowledgedAtLoss: number;
  /** Bytes the receiver said it held (RESUMED); the resend starts there. */
  readonly receiverHeld: number;
}

/** The logical connection a resumable sending tunnel writes its session to. */
export interface ResumableStreamConn extends WireConn {
  /** Whether the receiving tunnel made the link resumable (its first ACK); null: not known yet. */
  readonly resumable: boolean | null;
  /** The session id the receiver gave, once it did. */
  readonly session: string | null;
  /** Each lost link resumed, in order. */
  readonly resumes: readonly StreamResumeReport[];
  /** Frame bytes the session wrote. */
  readonly sent: number;
  /** Frame bytes the receiver acknowledged. */
  readonly acknowledged: number;
  /** Ends the link (the session is over). */
  close(): void;
}

/**
 * Wraps `conn` (the first connection to the receiving tunnel, already
 * authenticated) in a link that resumes. Resumable only when the receiving
 * tunnel says so (its first ACK, sent when HELLO asks with `resumeMs`);
 * otherwise, from the receiver's first answer on, it is a plain link and
 * keeps nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FrameType, FrameWriter, memoryDuplex } from "@hakobu/hakobu";
 * import { resumableSource } from "./resume_source.ts";
 *
 * // On a host: `conn` from connectChannel, `reconnect` the same again.
 * const [conn, receiver] = memoryDuplex();
 * const link = resumableSource(conn, {
 *   graceMs: 30_000,
 *   reconnect: () => Promise.reject(new Error("no second connection here")),
 * });
 * assert.equal(link.resumable, null); // the receiving tunnel has not answered
 * // A receiving tunnel that resumes nothing answers without an ACK first:
 * await new FrameWriter(receiver.writable).write(
 *   FrameType.ERROR,
 *   0,
 *   new TextEncoder().encode('{"message":"no"}'),
 * );
 * const reader = link.readable.getReader();
 * assert.equal((await reader.read()).value?.[2], FrameType.ERROR);
 * assert.equal(link.resumable, false); // a plain link now: nothing is kept
 * link.close();
 * ```
 */
export function resumableSource(
  conn: Reconnected,
  options: StreamResumeOptions,
): ResumableStreamConn {
  const resumes: StreamResumeReport[] = [];
  let session: string | null = null;
  let receiverGraceMs = 0;
  let resumable: boolean | null = null;
  let reconnecting = false;
  let lostAgain: Error | null = null;
  const addr = (conn as { remoteAddr?: Deno.Addr }).remoteAddr;
  const remote = conn.remote ??
    (addr && "hostname" in addr ? `${addr.hostname}:${addr.port}` : null);
  const name = remote
    ? `the receiving tunnel at ${remote}`
    : "the receiving tunnel";
  const link: ReplayLink = new ReplayLink({
    maxRetainedBytes: options.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES,
    stallMs: options.stallMs ?? 15_000,
    onGrant: (g) => {
      if (session !== null) return;
      session = g.session;
      receiverGraceMs = g.resumeMs;
      resumable = true;
      link.startAcking();
    },
    onFirstFrame: () => {
      if (session === null) {
        // The receiver answered HELLO without making the link resumable.
        resumable = false;
        link.stopRetaining();
      }
    },
    onLost: function lost(error) {
      if (reconnecting) {
        // The new connection failed before its reconnection was done.
        lostAgain = error;
        return;
      }
      reconnecting = true;
      void reconnect(error).finally(() => {
        reconnecting = false;
        const again = lostAgain;
        lostAgain = null;
        if (again && !link.attached) lost(again);
      });
    },
  });
  link.attach(physical(conn), 0);

  const reconnect = async (lost: Error): Promise<void> => {
    const lostAt = performance.now();
    const sentAtLoss = link.sent;
    const acknowledgedAtLoss = link.acknowledged;
    if (session === null) {
      link.fail(
        new LinkLostError(
          `Connection to ${name} lost (${lost.message}) before it made the link resumable: the tunnel cannot resume`,
          { side: "receiver", peer: remote, phase: "the stream" },
          { cause: lost },
        ),
      );
      return;
    }
    const graceMs = Math.min(options.graceMs, receiverGraceMs);
    const deadline = lostAt + graceMs;
    const attempts = options.attempts ?? 5;
    let tried = 0;
    let last: unknown = lost;
    let backoffMs = 100;
    // (a link the session ended meanwhile is not reconnected any more)
    while (tried < attempts && performance.now() < deadline && !link.ended) {
      tried++;
      let next: Reconnected | null = null;
      try {
        next = await within(
          options.reconnect(),
          deadline - performance.now(),
          "the reconnection",
        );
        const frames = new RawFrameReader(next.readable);
        const phys = physical(next, frames);
        await within(
          phys.write(
            encodeFrame(
              FrameType.RESUME,
              0,
              encodeResume({ session, received: link.received }),
            ),
          ),
          deadline - performance.now(),
          "RESUME",
        );
        const answer = await within(
          frames.next(),
          deadline - performance.now(),
          "the answer to RESUME",
        );
        if (answer === null) {
          throw new MigrationError("the connection closed before RESUMED");
        }
        const payload = answer.subarray(HEADER_BYTES);
        verifyFrameChecksum(answer.subarray(0, HEADER_BYTES), payload);
        if (answer[2] === FrameType.ERROR) {
          phys.close();
          link.fail(
            new MigrationError(
              `Cannot resume the tunnel after the link to ${name} was lost (${lost.message}): the receiving tunnel refused RESUME: ${
                decodeError(payload).message
              }`,
              { cause: lost },
            ),
          );
          return;
        }
        if (answer[2] !== FrameType.RESUMED) {
          throw new MigrationError(
            `Unexpected ${frameTypeName(answer[2])} frame: expected RESUMED`,
          );
        }
        const resumed = decodeResumed(payload);
        if (resumed.received === undefined) {
          throw new MigrationError(
            "RESUMED does not say how many bytes the receiving tunnel holds",
          );
        }
        link.attach(phys, resumed.received);
        resumes.push({
          reason: lost.message,
          attempts: tried,
          downMs: performance.now() - lostAt,
          sentAtLoss,
          acknowledgedAtLoss,
          receiverHeld: resumed.received,
        });
        return;
      } catch (e) {
        last = e;
        try {
          next?.close?.();
        } catch { /* closed */ }
        if (e instanceof ResendError) {
          link.fail(e);
          return;
        }
        await new Promise((r) =>
          setTimeout(
            r,
            Math.max(0, Math.min(backoffMs, deadline - performance.now())),
          )
        );
        backoffMs = Math.min(backoffMs * 2, 2000);
      }
    }
    link.fail(
      new LinkLostError(
        `Connection to ${name} lost (${lost.message}), and ${tried} reconnection${
          tried === 1 ? "" : "s"
        } within the grace of ${graceMs} ms did not resume the tunnel (the last: ${
          last instanceof Error ? last.message : String(last)
        })`,
        { side: "receiver", peer: remote, phase: "the stream" },
        { cause: last },
      ),
    );
  };

  return {
    readable: link.conn.readable,
    writable: link.conn.writable,
    remote: remote ?? undefined,
    get resumable() {
      return resumable;
    },
    get session() {
      return session;
    },
    resumes,
    get sent() {
      return link.sent;
    },
    get acknowledged() {
      return link.acknowledged;
    },
    close: () => link.close(),
  };
}

/** `p`, or a failure naming `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  // A connection that comes after the deadline is closed, not leaked.
  p.then((v) => {
    if (late) (v as { close?(): void })?.close?.();
  }, () => {});
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(
          () => {
            late = true;
            reject(new Error(`${what} did not complete within the grace`));
          },
          Math.max(1, ms),
        )
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
