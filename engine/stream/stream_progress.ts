/**
 * PROGRESS (stream mode, receiver → source): how many bytes of the rebuilt
 * stream the receiving tunnel has written to the destination hypervisor.
 * The source asks for it in HELLO (`progressBytes`: one PROGRESS at least
 * every that many bytes written) and reads no more of its hypervisor's
 * stream than a bounded lead beyond the last one, so the source hypervisor
 * feels the end-to-end rate (its switchover estimate sees the real
 * bandwidth) and what is in flight when it stops the guest, which the
 * guest's downtime then waits for, stays bounded.
 *
 * ```
 * u32 written low, u32 written high
 * ```
 *
 * @module
 */

import { WireError } from "../errors.ts";
import { getU64, setU64 } from "../bytes.ts";

/**
 * How far a stream tunnel's source reads ahead of the destination by
 * default: 8 MiB (`StreamSendOptions.maxLeadBytes`). Enough for a link's
 * bandwidth × round trip up to about 8 MiB (1 Gbit/s at 60 ms, 10 Gbit/s at
 * 6 ms); a longer link wants more, or the lead bounds its throughput.
 */
export const DEFAULT_MAX_LEAD_BYTES: number = 8 << 20;

/** Bytes of a PROGRESS payload. */
export const STREAM_PROGRESS_BYTES = 8;

/**
 * Encodes PROGRESS: `written` stream bytes reached the destination.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeStreamProgress, encodeStreamProgress } from "./stream_progress.ts";
 *
 * assert.equal(decodeStreamProgress(encodeStreamProgress(5 * 2 ** 32 + 7)), 5 * 2 ** 32 + 7);
 * ```
 */
export function encodeStreamProgress(written: number): Uint8Array {
  if (!Number.isSafeInteger(written) || written < 0) {
    throw new RangeError(
      `PROGRESS counts written bytes: a whole number ≥ 0, got ${written}`,
    );
  }
  const out = new Uint8Array(STREAM_PROGRESS_BYTES);
  setU64(new DataView(out.buffer), 0, written);
  return out;
}

/**
 * Decodes a PROGRESS payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeStreamProgress } from "./stream_progress.ts";
 *
 * assert.throws(() => decodeStreamProgress(new Uint8Array(3)), /PROGRESS payload of 3 bytes/);
 * ```
 * @throws {WireError} when the payload is not 8 bytes or the count is past 2^53.
 */
export function decodeStreamProgress(payload: Uint8Array): number {
  if (payload.length !== STREAM_PROGRESS_BYTES) {
    throw new WireError(
      `Cannot decode PROGRESS payload of ${payload.length} bytes: expected ${STREAM_PROGRESS_BYTES}`,
    );
  }
  const view = new DataView(
    payload.buffer,
    payload.byteOffset,
    payload.byteLength,
  );
  const high = view.getUint32(4, true);
  if (high >= 1 << 21) {
    throw new WireError(
      `Cannot decode PROGRESS: ${high} × 2^32 written bytes is past 2^53`,
    );
  }
  return getU64(view, 0);
}
