/**
 * Listening for hakobu connections: TLS with the security handshake, or
 * plain TCP when asked.
 *
 * @module
 */

// Types only: node:tls loads when a TLS listener starts (see listenTls), so
// that a plain-TCP process does not pay for it at start.
import type tls from "node:tls";
import type { AddressInfo } from "node:net";
import { peerText } from "../../wire/peer_text.ts";
import { acceptNext } from "../accept.ts";
import type { Address } from "../address.ts";
import { ChannelAuthError } from "./auth_error.ts";
import { encodeAuthMessage } from "./auth_message.ts";
import {
  type ChannelConn,
  DEFAULT_READ_BUFFER_BYTES,
  plainChannelConn,
  socketStreams,
} from "./channel_conn.ts";
import { channelBinding, pskProof, verifyPskProof } from "./psk_proof.ts";
import { readAuthMessage } from "./read_auth.ts";
import type { ListenSecurity } from "./security.ts";

/** Default most milliseconds from TCP connect to an authenticated connection. */
export const DEFAULT_AUTH_TIMEOUT_MS = 10_000;
/** Default most TCP connections open at once, sessions and handshakes together. */
export const DEFAULT_MAX_CONNECTIONS = 64;

/** Options of {@link listenChannel}. */
export interface ListenChannelOptions {
  /** Most milliseconds from TCP connect to an authenticated connection (default 10 s). */
  authTimeoutMs?: number;
  /**
   * Most TCP connections open at once, in their handshake or served; more
   * are dropped on connect (default 64), so idle handshakes cannot exhaust
   * the receiver's file descriptors.
   */
  maxConnections?: number;
  /** Told of each connection that failed its handshake or was refused. */
  onRefused?: (error: ChannelAuthError) => void;
  /**
   * Most bytes each TLS connection holds that its reader has not taken;
   * beyond, the connection stops reading and its source waits (default
   * 4 MiB, {@link DEFAULT_READ_BUFFER_BYTES}).
   */
  readBufferBytes?: number;
  /**
   * A byte budget shared with the receiver's sessions (a `ReceiveBudget`):
   * each authenticated TLS connection reserves its read buffer's limit in it
   * before ACCEPT, and gives it back when the connection closes. A source
   * whose buffer does not fit is refused with the budget's words.
   */
  budget?: ReadBufferBudget;
}

/** What {@link ListenChannelOptions.budget} needs of a `ReceiveBudget` (`engine/session/budget.ts`). */
export interface ReadBufferBudget {
  /** Reserves `bytes` for `what`, or throws an error that says why not. */
  reserve(bytes: number, what: string): { release(): void };
}

/** A listener that yields only connections that passed the security handshake. */
export interface ChannelListener {
  /** Where it listens (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /**
   * The next authenticated connection. Connections that fail their
   * handshake are reported to `onRefused` and never returned. Rejects with
   * `Deno.errors.BadResource` once the listener is closed.
   */
  accept(): Promise<ChannelConn>;
  /** Stops listening; handshakes in progress are dropped. */
  close(): void;
}

/**
 * Listens on `at` with `security`.
 *
 * Over TLS, a connection is handed out only after the source proved its
 * identity (a client certificate signed by the configured CA, or a
 * pre-shared key bound to this TLS session) and that identity is in the
 * allow-list; otherwise the source gets a REFUSE naming why, and nothing of
 * its is read further. Handshakes run side by side and each is bounded by
 * `authTimeoutMs`, so a slow or idle peer holds up no other.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { connectChannel, connectSecurityFromDir, listenChannel, listenSecurityFromDir } from "./mod.ts";
 * import { generateCredentials } from "./generate.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await generateCredentials(dir, { receiverNames: ["127.0.0.1"], sourceIdentity: "src-a" });
 * const listener = await listenChannel(
 *   { hostname: "127.0.0.1", port: 0 },
 *   await listenSecurityFromDir(dir, ["src-a"]),
 * );
 * const [served, source] = await Promise.all([
 *   listener.accept(),
 *   connectChannel({ hostname: "127.0.0.1", port: listener.addr.port }, await connectSecurityFromDir(dir)),
 * ]);
 * assert.equal(served.identity, "src-a"); // the source's certificate CN, admitted
 * assert.equal(source.identity, "127.0.0.1"); // the receiver's certificate name
 * served.close();
 * source.close();
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function listenChannel(
  at: Address,
  security: ListenSecurity,
  options: ListenChannelOptions = {},
): Promise<ChannelListener> {
  if (security.kind === "plain") {
    const listener = Deno.listen({
      hostname: at.hostname,
      port: at.port,
      transport: "tcp",
    });
    return {
      addr: listener.addr,
      accept: async () =>
        plainChannelConn(
          await acceptNext(listener, (e) =>
            options.onRefused?.(
              new ChannelAuthError(`accept failed: ${e.message}`),
            )),
        ),
      close: () => {
        try {
          listener.close();
        } catch { /* already closed */ }
      },
    };
  }
  return await listenTls(at, security, options);
}

async function listenTls(
  at: Address,
  security: Extract<ListenSecurity, { kind: "tls" }>,
  options: ListenChannelOptions,
): Promise<ChannelListener> {
  const authTimeoutMs = options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS;
  const ready: ChannelConn[] = [];
  const waiting: {
    resolve: (c: ChannelConn) => void;
    reject: (e: Error) => void;
  }[] = [];
  let closed = false;
  const refused = (e: ChannelAuthError) => options.onRefused?.(e);
  const deliver = (conn: ChannelConn) => {
    const w = waiting.shift();
    if (w) w.resolve(conn);
    else ready.push(conn);
  };
  const { default: tls } = await import("node:tls");
  const server = tls.createServer({
    // Each direction closes on its own: a source may end its stream and
    // still read the receiver's verdict.
    allowHalfOpen: true,
    cert: security.cert,
    key: security.key,
    minVersion: "TLSv1.3",
    // Certificates are checked here, not by the TLS layer, so that a source
    // whose certificate fails hears why (a REFUSE) instead of a reset.
    requestCert: security.clientCa !== undefined,
    rejectUnauthorized: false,
    ...(security.clientCa ? { ca: [security.clientCa] } : {}),
    handshakeTimeout: authTimeoutMs,
  });
  server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
    refused(
      new ChannelAuthError(
        `TLS handshake failed: ${error.message} (a plain-TCP source, or one that does not trust this receiver's certificate?)`,
        socket.remoteAddress === undefined
          ? undefined
          : `${socket.remoteAddress}:${socket.remotePort}`,
        { cause: error },
      ),
    );
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    authenticate(socket, peer, security, {
      timeoutMs: authTimeoutMs,
      readBufferBytes: options.readBufferBytes ?? DEFAULT_READ_BUFFER_BYTES,
      budget: options.budget,
    }).then(
      (conn) => {
        if (closed) conn.close();
        else deliver(conn);
      },
      (error: ChannelAuthError) => {
        refused(error);
        socket.destroy();
      },
    );
  });
  server.on("error", (e: Error) => {
    for (const w of waiting.splice(0)) w.reject(e);
  });
  const addr = await new Promise<AddressInfo>((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.hostname, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
  return {
    addr: { transport: "tcp", hostname: addr.address, port: addr.port },
    accept() {
      if (closed) {
        return Promise.reject(new Deno.errors.BadResource("Listener closed"));
      }
      const conn = ready.shift();
      if (conn) return Promise.resolve(conn);
      return new Promise((resolve, reject) =>
        waiting.push({ resolve, reject })
      );
    },
    close() {
      if (closed) return;
      closed = true;
      server.close();
      for (const c of ready.splice(0)) c.close();
      for (const w of waiting.splice(0)) {
        w.reject(new Deno.errors.BadResource("Listener closed"));
      }
    },
  };
}

/** Runs the receiver's side of the security handshake on a TLS socket. */
async function authenticate(
  socket: tls.TLSSocket,
  peer: string,
  security: Extract<ListenSecurity, { kind: "tls" }>,
  options: {
    timeoutMs: number;
    readBufferBytes: number;
    budget: ReadBufferBudget | undefined;
  },
): Promise<ChannelConn> {
  const { timeoutMs } = options;
  const streams = socketStreams(socket, {
    readBufferBytes: options.readBufferBytes,
  });
  const writer = streams.writable.getWriter();
  const refuse = async (reason: string): Promise<never> => {
    await Promise.race([
      writer.write(encodeAuthMessage({ type: "refuse", reason })).catch(
        () => {},
      ),
      new Promise((r) => setTimeout(r, 1000)),
    ]);
    throw new ChannelAuthError(`Refused: ${reason}`, peer);
  };
  const auth = await readAuthMessage(
    streams.readable,
    timeoutMs,
    "the source's AUTH",
    peer,
  )
    .catch(async (e: ChannelAuthError) => await refuse(e.message));
  if (auth.type !== "auth") {
    return await refuse(`Expected AUTH, got ${auth.type.toUpperCase()}`);
  }
  let identity: string;
  let proof: Uint8Array = new Uint8Array();
  if (auth.method === "certificate") {
    if (!security.clientCa) {
      return await refuse(
        "This receiver does not accept client certificates: authenticate with a pre-shared key",
      );
    }
    const cert = socket.getPeerCertificate();
    if (!cert || !cert.subject) {
      return await refuse("No client certificate was presented");
    }
    if (!socket.authorized) {
      return await refuse(
        `The client certificate is not trusted: ${
          socket.authorizationError ?? "unverified"
        }`,
      );
    }
    identity = String(cert.subject.CN ?? "");
    if (identity === "") {
      return await refuse(
        "The client certificate has no common name (CN) to name the source by",
      );
    }
  } else {
    identity = auth.identity;
    const key = security.psk?.get(identity);
    const binding = channelBinding(socket, "server");
    // One answer for an unknown identity and a wrong proof: a prober learns nothing.
    if (
      !key || !binding ||
      !(await verifyPskProof("source", key, identity, binding, auth.proof))
    ) {
      return await refuse(
        `Pre-shared key authentication failed for identity "${
          peerText(identity)
        }"`,
      );
    }
    proof = await pskProof("receiver", key, identity, binding);
  }
  if (security.authz && !security.authz.includes(identity)) {
    return await refuse(
      `Identity "${
        peerText(identity)
      }" is not authorised to migrate into this receiver`,
    );
  }
  // The read buffer counts against the receiver's budget from ACCEPT to close.
  let reservation: { release(): void } | undefined;
  try {
    reservation = options.budget?.reserve(
      streams.readBuffer.limitBytes,
      `The TLS read buffer of ${peer} ("${peerText(identity)}")`,
    );
  } catch (e) {
    return await refuse(e instanceof Error ? e.message : String(e));
  }
  if (reservation) {
    if (socket.destroyed) reservation.release();
    else socket.once("close", () => reservation.release());
  }
  await writer.write(
    encodeAuthMessage({ type: "accept", method: auth.method, proof }),
  ).catch((e) => {
    reservation?.release();
    throw e;
  });
  writer.releaseLock();
  return {
    readable: streams.readable,
    writable: streams.writable,
    readBuffer: streams.readBuffer,
    remote: peer,
    identity,
    close: () => socket.destroy(),
  };
}
