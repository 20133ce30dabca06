/**
 * Pre-shared-key proofs bound to one TLS session.
 *
 * Each side proves it holds the key with HMAC-SHA-256 over a role label, the
 * identity and both sides' channel-binding values of this TLS session
 * (Deno's `getFinished()`/`getPeerFinished()`, which its rustls-based TLS
 * derives from the session's keys). A proof made for one session is worth
 * nothing in another: a man in the middle who relays it runs two TLS sessions
 * with different values, so the receiver's check fails.
 *
 * @module
 */

import type { TLSSocket } from "node:tls";
import { concatBytes } from "../../bytes.ts";

const LABEL = {
  source: "hakobu psk v1 source",
  receiver: "hakobu psk v1 receiver",
};

/** The channel-binding values of one TLS session, as each side names them. */
export interface ChannelBinding {
  /** The client's (source's) value. */
  readonly client: Uint8Array;
  /** The server's (receiver's) value. */
  readonly server: Uint8Array;
}

function proofInput(
  role: keyof typeof LABEL,
  identity: string,
  binding: ChannelBinding,
): Uint8Array<ArrayBuffer> {
  const parts = [
    new TextEncoder().encode(LABEL[role]),
    new Uint8Array([0]),
    new TextEncoder().encode(identity),
    new Uint8Array([0, binding.client.length]),
    binding.client,
    new Uint8Array([binding.server.length]),
    binding.server,
  ];
  return concatBytes(parts) as Uint8Array<ArrayBuffer>;
}

function hmacKey(
  key: Uint8Array,
  usage: "sign" | "verify",
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    key.slice(),
    { name: "HMAC", hash: "SHA-256" },
    false,
    [usage],
  );
}

/**
 * The proof that the side in `role` holds `key`, for `identity` on the TLS
 * session with `binding`.
 *
 * @example
 * ```ts
 * import { pskProof, verifyPskProof } from "./psk_proof.ts";
 * import assert from "node:assert/strict";
 * const key = new Uint8Array(32).fill(7);
 * const binding = { client: new Uint8Array(12).fill(1), server: new Uint8Array(12).fill(2) };
 * const proof = await pskProof("source", key, "src-a", binding);
 * assert.equal(await verifyPskProof("source", key, "src-a", binding, proof), true);
 * assert.equal(await verifyPskProof("receiver", key, "src-a", binding, proof), false);
 * ```
 */
export async function pskProof(
  role: "source" | "receiver",
  key: Uint8Array,
  identity: string,
  binding: ChannelBinding,
): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign(
      "HMAC",
      await hmacKey(key, "sign"),
      proofInput(role, identity, binding),
    ),
  );
}

/** Whether `proof` is `role`'s proof for `identity` on `binding` (compared in constant time by WebCrypto). */
export async function verifyPskProof(
  role: "source" | "receiver",
  key: Uint8Array,
  identity: string,
  binding: ChannelBinding,
  proof: Uint8Array,
): Promise<boolean> {
  return await crypto.subtle.verify(
    "HMAC",
    await hmacKey(key, "verify"),
    proof.slice(),
    proofInput(role, identity, binding),
  );
}

/** This TLS session's channel-binding values, or `undefined` when the TLS layer gives none. */
export function channelBinding(
  socket: TLSSocket,
  side: "client" | "server",
): ChannelBinding | undefined {
  const mine = socket.getFinished();
  const theirs = socket.getPeerFinished();
  if (!mine || !theirs || mine.length < 12 || theirs.length < 12) {
    return undefined;
  }
  return side === "client"
    ? { client: new Uint8Array(mine), server: new Uint8Array(theirs) }
    : { client: new Uint8Array(theirs), server: new Uint8Array(mine) };
}
