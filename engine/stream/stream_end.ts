/**
 * STREAM_END: what the receiver checks the rebuilt stream against — its
 * length, the page bodies it carried, and its SHA-256 — before the stream's
 * end may reach the destination.
 *
 * ```
 * u32 streamBytes low, u32 streamBytes high, u32 pages low, u32 pages high, 32-byte SHA-256
 * ```
 *
 * @module
 */

import { WireError } from "../errors.ts";
import { TWO_32 } from "../bytes.ts";

/** Bytes of a STREAM_END payload. */
export const STREAM_END_BYTES = 48;

/** A STREAM_END payload. */
export interface StreamEnd {
  /** Bytes of the hypervisor's stream. */
  readonly streamBytes: number;
  /** Page bodies the sender carried through the channels. */
  readonly pages: number;
  /** SHA-256 of the whole stream (32 bytes). */
  readonly sha256: Uint8Array;
}

/**
 * Encodes a STREAM_END payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeStreamEnd } from "./stream_end.ts";
 *
 * const end = { streamBytes: 10, pages: 0, sha256: new Uint8Array(32) };
 * assert.equal(encodeStreamEnd(end).length, 48); // two u64, then the digest
 * ```
 */
export function encodeStreamEnd(end: StreamEnd): Uint8Array {
  if (end.sha256.length !== 32) {
    throw new RangeError(
      `STREAM_END digest must be 32 bytes, got ${end.sha256.length}`,
    );
  }
  const out = new Uint8Array(STREAM_END_BYTES);
  const v = new DataView(out.buffer);
  v.setUint32(0, end.streamBytes % TWO_32, true);
  v.setUint32(4, Math.floor(end.streamBytes / TWO_32), true);
  v.setUint32(8, end.pages % TWO_32, true);
  v.setUint32(12, Math.floor(end.pages / TWO_32), true);
  out.set(end.sha256, 16);
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
 * const end = { streamBytes: 10, pages: 0, sha256: new Uint8Array(32) };
 * assert.deepEqual(decodeStreamEnd(encodeStreamEnd(end)), end);
 * assert.throws(() => decodeStreamEnd(new Uint8Array(47)), /48/);
 * ```
 * @throws {WireError} when the payload is not 48 bytes.
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
    streamBytes: v.getUint32(4, true) * TWO_32 + v.getUint32(0, true),
    pages: v.getUint32(12, true) * TWO_32 + v.getUint32(8, true),
    sha256: payload.slice(16, 48),
  };
}
