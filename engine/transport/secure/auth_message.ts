/**
 * The security handshake's messages, exchanged inside TLS before the first
 * migration frame: the source's AUTH, then the receiver's ACCEPT or REFUSE.
 *
 * ```
 * "HKA1" | type u8 | length u16 (big-endian) | payload
 * AUTH    (1): method u8 | identity length u8 | identity (psk only) | proof[32] (psk only)
 * ACCEPT  (2): method u8 | proof[32] (psk only)
 * REFUSE  (3): reason, UTF-8 (at most 1024 bytes)
 * ```
 *
 * A peer that sends anything else, more than one message, or bytes after
 * its message before the answer, is refused.
 *
 * @module
 */

import { ChannelAuthError } from "./auth_error.ts";

/** The first bytes of every security handshake message, naming its version. */
const MAGIC = new TextEncoder().encode("HKA1");
const HEADER_BYTES = MAGIC.length + 3;
/** Bytes of an HMAC-SHA-256 proof. */
export const PROOF_BYTES = 32;
/** Longest REFUSE reason kept (longer reasons are cut). */
const MAX_REASON_BYTES = 1024;
/** Longest payload any message may carry. */
const MAX_PAYLOAD_BYTES = MAX_REASON_BYTES;

/** How the source proves who it is. */
export type AuthMethod = "certificate" | "psk";
const METHOD_CODE: Record<AuthMethod, number> = { certificate: 1, psk: 2 };

/** A security handshake message. */
export type AuthMessage =
  | {
    readonly type: "auth";
    readonly method: AuthMethod;
    /** The PSK identity; empty for certificates (the certificate names the source). */
    readonly identity: string;
    /** HMAC proof (psk), empty for certificates. */
    readonly proof: Uint8Array;
  }
  | {
    readonly type: "accept";
    readonly method: AuthMethod;
    /** The receiver's HMAC proof (psk), empty for certificates. */
    readonly proof: Uint8Array;
  }
  | { readonly type: "refuse"; readonly reason: string };

const TYPE_CODE = { auth: 1, accept: 2, refuse: 3 } as const;

/**
 * Checks that an identity is 1–255 bytes of printable ASCII (no spaces, no
 * `:`), so that it can be printed, listed in an allow-list and written in a
 * keys file unambiguously.
 *
 * @throws {RangeError} naming the identity and the rule it breaks.
 */
export function checkIdentity(identity: string): void {
  if (!/^[\x21-\x7e]{1,255}$/.test(identity) || identity.includes(":")) {
    throw new RangeError(
      `Bad identity ${
        JSON.stringify(identity)
      }: expected 1-255 printable ASCII characters without spaces or ":"`,
    );
  }
}

/**
 * Encodes one message.
 *
 * @example
 * ```ts
 * import { decodeAuthMessage, encodeAuthMessage } from "./auth_message.ts";
 * import assert from "node:assert/strict";
 * const bytes = encodeAuthMessage({ type: "refuse", reason: "not authorised" });
 * assert.deepEqual(decodeAuthMessage(bytes)?.message, { type: "refuse", reason: "not authorised" });
 * ```
 */
export function encodeAuthMessage(message: AuthMessage): Uint8Array {
  let payload: Uint8Array;
  if (message.type === "refuse") {
    let reason = new TextEncoder().encode(message.reason);
    if (reason.length > MAX_REASON_BYTES) {
      reason = reason.subarray(0, MAX_REASON_BYTES);
    }
    payload = reason;
  } else {
    const proof = message.method === "psk" ? message.proof : new Uint8Array();
    if (message.method === "psk" && proof.length !== PROOF_BYTES) {
      throw new RangeError(
        `A psk proof has ${PROOF_BYTES} bytes, not ${proof.length}`,
      );
    }
    if (message.type === "auth") {
      if (message.method === "psk") checkIdentity(message.identity);
      else if (message.identity !== "") {
        throw new RangeError("A certificate AUTH carries no identity");
      }
      const id = new TextEncoder().encode(message.identity);
      payload = new Uint8Array(2 + id.length + proof.length);
      payload[0] = METHOD_CODE[message.method];
      payload[1] = id.length;
      payload.set(id, 2);
      payload.set(proof, 2 + id.length);
    } else {
      payload = new Uint8Array(1 + proof.length);
      payload[0] = METHOD_CODE[message.method];
      payload.set(proof, 1);
    }
  }
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out.set(MAGIC, 0);
  out[4] = TYPE_CODE[message.type];
  new DataView(out.buffer).setUint16(5, payload.length);
  out.set(payload, HEADER_BYTES);
  return out;
}

function methodOf(code: number): AuthMethod {
  if (code === 1) return "certificate";
  if (code === 2) return "psk";
  throw new ChannelAuthError(`Unknown authentication method ${code}`);
}

/**
 * Decodes the message at the start of `bytes`: `undefined` while more bytes
 * are needed, otherwise the message and how many bytes it took.
 *
 * @throws {ChannelAuthError} when the bytes cannot be a security handshake
 * message (another protocol, a plain-TCP hakobu peer, a malformed field).
 */
export function decodeAuthMessage(
  bytes: Uint8Array,
): { message: AuthMessage; bytes: number } | undefined {
  for (let i = 0; i < Math.min(bytes.length, MAGIC.length); i++) {
    if (bytes[i] !== MAGIC[i]) {
      throw new ChannelAuthError(
        'The peer did not start the security handshake (no "HKA1"): is it a plain-TCP hakobu (--insecure-plain) or another program?',
      );
    }
  }
  if (bytes.length < HEADER_BYTES) return undefined;
  const type = bytes[4];
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint16(5);
  if (length > MAX_PAYLOAD_BYTES) {
    throw new ChannelAuthError(
      `Security handshake message of ${length} bytes: at most ${MAX_PAYLOAD_BYTES}`,
    );
  }
  if (bytes.length < HEADER_BYTES + length) return undefined;
  const p = bytes.subarray(HEADER_BYTES, HEADER_BYTES + length);
  const total = HEADER_BYTES + length;
  const proofOf = (method: AuthMethod, rest: Uint8Array): Uint8Array => {
    const want = method === "psk" ? PROOF_BYTES : 0;
    if (rest.length !== want) {
      throw new ChannelAuthError(
        `A ${method} message carries ${rest.length} proof bytes, not ${want}`,
      );
    }
    return rest.slice();
  };
  switch (type) {
    case TYPE_CODE.auth: {
      if (p.length < 2 || p.length < 2 + p[1]) {
        throw new ChannelAuthError("AUTH message too short for its identity");
      }
      const method = methodOf(p[0]);
      const identity = new TextDecoder().decode(p.subarray(2, 2 + p[1]));
      if (method === "psk") {
        try {
          checkIdentity(identity);
        } catch (e) {
          throw new ChannelAuthError((e as Error).message);
        }
      } else if (identity !== "") {
        throw new ChannelAuthError("A certificate AUTH carries no identity");
      }
      return {
        message: {
          type: "auth",
          method,
          identity,
          proof: proofOf(method, p.subarray(2 + p[1])),
        },
        bytes: total,
      };
    }
    case TYPE_CODE.accept: {
      if (p.length < 1) throw new ChannelAuthError("Empty ACCEPT message");
      const method = methodOf(p[0]);
      return {
        message: {
          type: "accept",
          method,
          proof: proofOf(method, p.subarray(1)),
        },
        bytes: total,
      };
    }
    case TYPE_CODE.refuse:
      return {
        message: {
          type: "refuse",
          reason: new TextDecoder().decode(p),
        },
        bytes: total,
      };
    default:
      throw new ChannelAuthError(
        `Unknown security handshake message type ${type}`,
      );
  }
}
