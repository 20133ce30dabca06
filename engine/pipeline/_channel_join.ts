/**
 * Per-channel connections, the part that runs inside a channel's Worker: a
 * source's encode Worker opens its own connection and joins its session
 * ({@link connectAndJoin}); a receiver's decode Worker listens on a port of
 * its own and takes exactly one connection that joins
 * ({@link listenForJoin}). The connection's TLS runs on the Worker's
 * thread, so encryption spreads over the channels' cores.
 *
 * A channel connection passes the same security handshake as the session's
 * main connection (`listenChannel`/`connectChannel`: certificate or bound
 * PSK, allow-list), and then its first frame must be JOIN naming the
 * session, the channel and the session's secret token, from the identity
 * the main connection authenticated as. Anything else is answered with an
 * ERROR and closed, and its bytes reach no decoder.
 *
 * @module
 */

import { MigrationError, WireError } from "../errors.ts";
import { bestEffort } from "../session/best_effort.ts";
import { within } from "../session/_within.ts";
import type { Address } from "../transport/address.ts";
import {
  type ChannelConn,
  connectChannel,
  type ConnectSecurity,
  listenChannel,
  type ListenSecurity,
} from "../transport/secure/mod.ts";
import { FrameType, frameTypeName } from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeError,
  decodeJoin,
  decodeJoined,
  encodeError,
  encodeJoin,
  encodeJoined,
  type Join,
} from "../wire/messages.ts";
import { peerText } from "../wire/peer_text.ts";

/** A channel connection that joined its session. */
export interface JoinedConn {
  readonly conn: ChannelConn;
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
}

/** What a decode Worker needs to take its channel's connection. */
export interface JoinListenOptions {
  /** The receiver's listening host (the port is the system's choice). */
  readonly hostname: string;
  /** The receiver's security, as its main listener's. */
  readonly security: ListenSecurity;
  /** The session's channel id and secret token (WELCOME's `channelJoin`). */
  readonly session: string;
  readonly token: string;
  /** The channel this Worker carries. */
  readonly channel: number;
  /** Who the main connection authenticated as (null over plain TCP): a JOIN must come from the same. */
  readonly identity: string | null;
  /** Most milliseconds from WELCOME to a joined connection. */
  readonly joinTimeoutMs: number;
  /** Most milliseconds from TCP connect to an authenticated connection with its JOIN. */
  readonly authTimeoutMs: number;
  /** Each connection's TLS read buffer (the session reserved it in the receiver's budget). */
  readonly readBufferBytes?: number;
}

/** Equal strings, compared in time independent of where they differ (tokens). */
function sameSecret(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a.charCodeAt(i) | 0) ^ (b.charCodeAt(i) | 0);
  }
  return diff === 0;
}

/**
 * Listens for channel `options.channel`'s connection. Resolves with the
 * port once listening; `joined` resolves with the first connection whose
 * JOIN is right (the listener then closes), or rejects when none came
 * within `joinTimeoutMs`. Each refused connection is told why (ERROR) and
 * reported to `onRefused`. `stop` stops listening (a session that parks).
 */
export async function listenForJoin(
  options: JoinListenOptions,
  onRefused: (message: string) => void,
): Promise<
  { port: number; joined: Promise<JoinedConn>; stop(): void }
> {
  const { channel, session } = options;
  const listener = await listenChannel(
    { hostname: options.hostname, port: 0 },
    options.security,
    {
      authTimeoutMs: options.authTimeoutMs,
      // One connection is wanted; a few handshakes may run at once.
      maxConnections: 8,
      onRefused: (e) => onRefused(e.message),
      readBufferBytes: options.readBufferBytes,
    },
  );
  const check = async (conn: ChannelConn): Promise<JoinedConn> => {
    const reader = new FrameReader(conn.readable, {
      ownPayload: (t) => t === FrameType.BATCH,
    });
    const writer = new FrameWriter(conn.writable);
    const refuse = async (message: string): Promise<never> => {
      await bestEffort(
        writer.write(FrameType.ERROR, 0, encodeError({ message })),
      );
      conn.close();
      throw new MigrationError(
        `Channel connection from ${conn.remote} refused: ${message}`,
      );
    };
    let frame;
    try {
      frame = await within(
        reader.next(),
        options.authTimeoutMs,
        () =>
          new WireError(
            `no JOIN within ${options.authTimeoutMs} ms of connecting`,
          ),
      );
    } catch (e) {
      return await refuse(e instanceof Error ? e.message : String(e));
    }
    if (!frame || frame.type !== FrameType.JOIN) {
      return await refuse(
        `expected JOIN as the first frame of a channel connection, got ${
          frame ? frameTypeName(frame.type) : "the end of the stream"
        }`,
      );
    }
    let join: Join;
    try {
      join = decodeJoin(frame.payload);
    } catch (e) {
      return await refuse(e instanceof Error ? e.message : String(e));
    }
    // One answer for another session and a wrong token: a prober learns
    // nothing about which sessions exist.
    if (join.session !== session || !sameSecret(join.token, options.token)) {
      return await refuse(
        `No session ${join.session} with that token waits for channel connections on this port`,
      );
    }
    if (join.channel !== channel) {
      return await refuse(
        `This port takes channel ${channel} of session ${session}, not channel ${join.channel}`,
      );
    }
    if (conn.identity !== options.identity) {
      return await refuse(
        `The channel connection authenticated as ${
          conn.identity === null ? "nobody" : `"${peerText(conn.identity)}"`
        }, but session ${session}'s source as ${
          options.identity === null ? "nobody" : `"${options.identity}"`
        }`,
      );
    }
    await writer.write(FrameType.JOINED, 0, encodeJoined({ channel }));
    return { conn, reader, writer };
  };
  let stop = (): void => {};
  const joined = new Promise<JoinedConn>((resolve, reject) => {
    let done = false;
    stop = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      listener.close();
      reject(
        new MigrationError(
          `Channel ${channel} of session ${session} stopped waiting for its connection`,
        ),
      );
    };
    const timer = setTimeout(() => {
      done = true;
      listener.close();
      reject(
        new MigrationError(
          `No connection joined channel ${channel} of session ${session} within ${options.joinTimeoutMs} ms`,
        ),
      );
    }, options.joinTimeoutMs);
    (async () => {
      while (!done) {
        let conn: ChannelConn;
        try {
          conn = await listener.accept();
        } catch {
          return; // closed: joined, or timed out
        }
        if (done) {
          conn.close();
          return;
        }
        // Each candidate on its own: a silent one holds up no other.
        check(conn).then(
          (j) => {
            if (done) {
              j.conn.close();
              return;
            }
            done = true;
            clearTimeout(timer);
            listener.close();
            resolve(j);
          },
          (e) => onRefused(e instanceof Error ? e.message : String(e)),
        );
      }
    })();
  });
  joined.catch(() => {});
  return { port: listener.addr.port, joined, stop: () => stop() };
}

/**
 * Connects channel `join.channel` to the receiver at `to` with `security`
 * (the same as the session's main connection), sends JOIN and waits for
 * JOINED, all within `timeoutMs`.
 *
 * @throws {MigrationError} with the receiver's reason when it refused.
 */
export async function connectAndJoin(
  to: Address,
  security: ConnectSecurity,
  join: Join,
  timeoutMs: number,
): Promise<JoinedConn> {
  const conn = await connectChannel(to, security, { timeoutMs });
  try {
    const reader = new FrameReader(conn.readable);
    const writer = new FrameWriter(conn.writable);
    await writer.write(FrameType.JOIN, 0, encodeJoin(join));
    const frame = await within(
      reader.next(),
      timeoutMs,
      () =>
        new MigrationError(
          `The receiver did not answer channel ${join.channel}'s JOIN within ${timeoutMs} ms`,
        ),
    );
    if (frame?.type === FrameType.ERROR) {
      throw new MigrationError(
        `Receiver refused channel ${join.channel}'s connection: ${
          decodeError(frame.payload).message
        }`,
      );
    }
    if (
      frame?.type !== FrameType.JOINED ||
      decodeJoined(frame.payload).channel !== join.channel
    ) {
      throw new MigrationError(
        `The receiver answered channel ${join.channel}'s JOIN with ${
          frame ? frameTypeName(frame.type) : "the end of the stream"
        }, not JOINED`,
      );
    }
    return { conn, reader, writer };
  } catch (e) {
    conn.close();
    throw e;
  }
}
