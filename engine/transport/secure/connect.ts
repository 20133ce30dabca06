/**
 * Connecting to a hakobu receiver: TLS with the security handshake, or plain
 * TCP when asked.
 *
 * @module
 */

// Types only: node:tls and node:net load when a TLS connection is made, so
// that a plain-TCP process (the tunnels on loopback, their channel Workers)
// does not pay for them at start.
import type tls from "node:tls";
import { peerText } from "../../wire/peer_text.ts";
import type { Address } from "../address.ts";
import { ChannelAuthError } from "./auth_error.ts";
import { encodeAuthMessage } from "./auth_message.ts";
import {
  type ChannelConn,
  plainChannelConn,
  socketStreams,
} from "./channel_conn.ts";
import { channelBinding, pskProof, verifyPskProof } from "./psk_proof.ts";
import { readAuthMessage } from "./read_auth.ts";
import type { ConnectSecurity } from "./security.ts";

/** Default most milliseconds from connect to an authenticated connection. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Connects to the receiver at `to` with `security`.
 *
 * Over TLS 1.3 the receiver's certificate must chain to `security.ca` (and
 * to no other root: the system's and Mozilla's CAs are not consulted) and
 * carry `serverName` (default: `to.hostname`); then the source proves
 * itself (client certificate, or pre-shared key bound to this TLS session)
 * and waits for the receiver's ACCEPT. With a pre-shared key the receiver
 * must prove it holds the same key, too.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ChannelAuthError, connectChannel, connectSecurityFromDir, listenChannel, listenSecurityFromDir } from "./mod.ts";
 * import { generateCredentials } from "./generate.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await generateCredentials(dir, { receiverNames: ["127.0.0.1"], sourceIdentity: "src-a" });
 * // A receiver that admits only "src-b": this source is refused, and told why.
 * const listener = await listenChannel({ hostname: "127.0.0.1", port: 0 }, await listenSecurityFromDir(dir, ["src-b"]));
 * await assert.rejects(
 *   connectChannel({ hostname: "127.0.0.1", port: listener.addr.port }, await connectSecurityFromDir(dir)),
 *   (e) => e instanceof ChannelAuthError && /"src-a" is not authorised/.test(e.message),
 * );
 * listener.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {ChannelAuthError} naming the failed step: TLS (an untrusted or
 * misnamed certificate), a REFUSE with the receiver's reason, a receiver
 * that could not prove the key, or a timeout.
 */
export async function connectChannel(
  to: Address,
  security: ConnectSecurity,
  options: { timeoutMs?: number } = {},
): Promise<ChannelConn> {
  if (security.kind === "plain") {
    return plainChannelConn(
      await Deno.connect({ hostname: to.hostname, port: to.port }),
    );
  }
  const [{ default: tls }, { isIP }] = await Promise.all([
    import("node:tls"),
    import("node:net"),
  ]);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const peer = `${to.hostname}:${to.port}`;
  const serverName = security.serverName ?? to.hostname;
  const tlsOptions: tls.ConnectionOptions = {
    host: to.hostname,
    port: to.port,
    // SNI carries DNS names only; an IP is checked against the IP SANs.
    ...(isIP(serverName) ? {} : { servername: serverName }),
    ca: [security.ca],
    minVersion: "TLSv1.3",
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) =>
      tls.checkServerIdentity(serverName, cert),
    ...(security.client
      ? { cert: security.client.cert, key: security.client.key }
      : {}),
  };
  // The source ends its stream, then still reads the verdict.
  const socket = tls.connect(
    { ...tlsOptions, allowHalfOpen: true } as tls.ConnectionOptions,
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no TLS handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    }).catch((e: Error) => {
      throw new ChannelAuthError(
        `TLS handshake with receiver ${peer} (as "${serverName}") failed: ${e.message}`,
        peer,
        { cause: e },
      );
    });
    clearTimeout(timer);
    const streams = socketStreams(socket);
    const binding = channelBinding(socket, "client");
    if (!binding) {
      throw new ChannelAuthError(
        "The TLS layer gave no channel-binding values",
        peer,
      );
    }
    const method = security.client ? "certificate" : "psk";
    const psk = security.psk;
    if (method === "psk" && !psk) {
      throw new ChannelAuthError(
        "Neither a client certificate nor a pre-shared key to prove this source with",
        peer,
      );
    }
    const identity = method === "psk" ? psk!.identity : "";
    const proof = method === "psk"
      ? await pskProof("source", psk!.key, identity, binding)
      : new Uint8Array();
    const writer = streams.writable.getWriter();
    await writer.write(
      encodeAuthMessage({ type: "auth", method, identity, proof }),
    );
    writer.releaseLock();
    const reply = await readAuthMessage(
      streams.readable,
      timeoutMs,
      "the receiver's answer to AUTH",
      peer,
    );
    if (reply.type === "refuse") {
      throw new ChannelAuthError(
        `Receiver ${peer} refused this source: ${peerText(reply.reason)}`,
        peer,
      );
    }
    if (reply.type !== "accept" || reply.method !== method) {
      throw new ChannelAuthError(
        `Receiver ${peer} answered AUTH with an unexpected message`,
        peer,
      );
    }
    if (
      method === "psk" &&
      !(await verifyPskProof(
        "receiver",
        psk!.key,
        identity,
        binding,
        reply.proof,
      ))
    ) {
      throw new ChannelAuthError(
        `Receiver ${peer} does not hold the pre-shared key of "${identity}": not sending it a VM`,
        peer,
      );
    }
    const cert = socket.getPeerCertificate();
    return {
      readable: streams.readable,
      writable: streams.writable,
      readBuffer: streams.readBuffer,
      remote: peer,
      identity: String(cert?.subject?.CN ?? serverName),
      close: () => socket.destroy(),
    };
  } catch (e) {
    clearTimeout(timer);
    socket.destroy();
    throw e;
  }
}

/** Whether a connect failure means nobody listens yet (worth another try). */
function notListeningYet(error: unknown): boolean {
  const codes = new Set(["ECONNREFUSED", "ENOENT", "ECONNRESET"]);
  for (
    let e = error as { code?: string; cause?: unknown } | undefined;
    e;
    e = e.cause as typeof e
  ) {
    if (e instanceof Deno.errors.ConnectionRefused) return true;
    if (typeof e.code === "string" && codes.has(e.code)) return true;
  }
  return false;
}

/**
 * {@link connectChannel}, retried every 100 ms while nobody listens at `to`
 * yet (the receiving tunnel may still be starting), for at most
 * `timeoutMs`. Authentication failures are not retried.
 *
 * @throws the last error once the time is up, or the first that is not "refused".
 */
export async function connectChannelRetrying(
  to: Address,
  security: ConnectSecurity,
  timeoutMs: number,
): Promise<ChannelConn> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await connectChannel(to, security, { timeoutMs });
    } catch (e) {
      if (!notListeningYet(e) || Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
