/**
 * STREAM_END: what the receiver checks the rebuilt stream against — its
 * length, the page bodies it carried, and its XXH3-128 — before the stream's
 * end may reach the destination.
 *
 * ```
 * u32 streamBytes low, u32 streamBytes high, u32 pages low, u32 pages high, 16-byte XXH3-128
 * ```
 *
 * The digest scheme is negotiated in the handshake: the source offers
 * {@link STREAM_DIGEST} in HELLO's `verify`, the receiver names it in
 * WELCOME's. Stream tunnels before it (SHA-256, a 48-byte STREAM_END) offer
 * and name nothing, and either side refuses such a peer before any data.
 *
 * @module
 */

import { WireError } from "../errors.ts";
import { getU64, setU64 } from "../bytes.ts";
import { FfiError } from "../../ffi/_library.ts";
import { Xxh3x128State } from "../../ffi/xxhash.ts";

/**
 * The stream digest's scheme as HELLO and WELCOME name it: XXH3-128 of the
 * whole stream, canonical form (as `xxh128sum` prints it).
 */
export const STREAM_DIGEST = "xxh3-128";

/** Bytes of the stream digest. */
export const STREAM_DIGEST_BYTES = 16;

/** Bytes of a STREAM_END payload. */
export const STREAM_END_BYTES = 16 + STREAM_DIGEST_BYTES;

/**
 * A fresh running stream digest (XXH3-128, hashed inline through
 * libxxhash).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { streamDigest } from "./stream_end.ts";
 *
 * const h = streamDigest();
 * h.update(new TextEncoder().encode("abc"));
 * assert.equal(h.digest().length, 16);
 * h.close();
 * ```
 *
 * @throws {FfiError} when libxxhash cannot be loaded: the message says the
 *   stream tunnel needs it, every path tried and the fix.
 */
export function streamDigest(): Xxh3x128State {
  try {
    return new Xxh3x128State();
  } catch (e) {
    if (!(e instanceof FfiError)) throw e;
    throw new FfiError(
      e.library,
      `The stream tunnel checks its stream with XXH3-128 through libxxhash, which is missing: ${e.message}`,
      { cause: e, tried: e.tried },
    );
  }
}

/** A STREAM_END payload. */
export interface StreamEnd {
  /** Bytes of the hypervisor's stream. */
  readonly streamBytes: number;
  /** Page bodies the sender carried through the channels. */
  readonly pages: number;
  /** XXH3-128 of the whole stream, canonical form (16 bytes). */
  readonly digest: Uint8Array;
}

/**
 * Encodes a STREAM_END payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeStreamEnd } from "./stream_end.ts";
 *
 * const end = { streamBytes: 10, pages: 0, digest: new Uint8Array(16) };
 * assert.equal(encodeStreamEnd(end).length, 32); // two u64, then the digest
 * ```
 */
export function encodeStreamEnd(end: StreamEnd): Uint8Array {
  if (end.digest.length !== STREAM_DIGEST_BYTES) {
    throw new RangeError(
      `STREAM_END digest must be ${STREAM_DIGEST_BYTES} bytes, got ${end.digest.length}`,
    );
  }
  const out = new Uint8Array(STREAM_END_BYTES);
  const v = new DataView(out.buffer);
  setU64(v, 0, end.streamBytes);
  setU64(v, 8, end.pages);
  out.set(end.digest, 16);
  return out;
}

/**
 * Decodes a STREAM_END payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeStreamEnd, encodeStreamEnd } from "./stream_end.ts";
 *
 * const end = { streamBytes: 10, pages: 0, digest: new Uint8Array(16) };
 * assert.deepEqual(decodeStreamEnd(encodeStreamEnd(end)), end);
 * assert.throws(() => decodeStreamEnd(new Uint8Array(48)), /expected 32/);
 * ```
 * @throws {WireError} when the payload is not 32 bytes.
 */
export function decodeStreamEnd(payload: Uint8Array): StreamEnd {
  if (payload.length !== STREAM_END_BYTES) {
    throw new WireError(
      `Cannot decode STREAM_END: payload of ${payload.length} bytes, expected ${STREAM_END_BYTES}`,
      0,
    );
  }
  const v = new DataView(payload.buffer, payload.byteOffset, payload.length);
  return {
    streamBytes: getU64(v, 0),
    pages: getU64(v, 8),
    digest: payload.slice(16, STREAM_END_BYTES),
  };
}
