/**
 * The requests that every channel's Worker answers once — a sync, a digest
 * of shared memory — as both pools send them: one id, one answer per
 * channel, resolved in channel order once the last one arrives.
 *
 * @module
 */

import { digestBytes, type DigestScheme } from "../digest.ts";
import type { DigestRequest } from "./_messages.ts";

interface Pending {
  left: number;
  readonly values: unknown[];
  readonly resolve: (values: unknown[]) => void;
  readonly reject: (e: Error) => void;
}

/** The calls in flight to a pool's Workers; the pool settles them from its message handler. */
export class ChannelCalls<Request> {
  readonly #workers: readonly Worker[];
  readonly #pending = new Map<number, Pending>();

  constructor(workers: readonly Worker[]) {
    this.#workers = workers;
  }

  /** Posts `request(id, channel)` to every Worker; resolves with their answers by channel. */
  all(
    id: number,
    request: (id: number, channel: number) => Request,
  ): Promise<unknown[]> {
    const n = this.#workers.length;
    const answers = new Promise<unknown[]>((resolve, reject) =>
      this.#pending.set(id, { left: n, values: new Array(n), resolve, reject })
    );
    this.#workers.forEach((w, c) => w.postMessage(request(id, c)));
    return answers;
  }

  /** Channel `channel`'s answer to call `id`. */
  settle(id: number, channel: number, value: unknown): void {
    const p = this.#pending.get(id);
    if (!p) return;
    p.values[channel] = value;
    if (--p.left === 0) {
      this.#pending.delete(id);
      p.resolve(p.values);
    }
  }

  /** Rejects every call in flight (a channel failed, or the pool closed). */
  rejectAll(error: Error): void {
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }
}

/**
 * The {@link DigestRequest} of each channel for the digests of `count`
 * ranges of `rangeBytes`: channel c hashes ranges c, c + channels, ... (so
 * that the ranges a receiver must read, the ones it wrote, spread evenly
 * over the channels); {@link joinDigests} puts the answers back in order.
 */
export function digestRequests(
  rangeBytes: number,
  count: number,
  channels: number,
  scheme: DigestScheme,
): (id: number, channel: number) => DigestRequest {
  return (id, channel) => ({
    type: "digest",
    id,
    from: Math.min(count, channel),
    to: count,
    step: channels,
    rangeBytes,
    scheme,
  });
}

/** The answers to {@link digestRequests}, by channel, as the digests of ranges 0..count in order. */
export function joinDigests(
  parts: readonly Uint8Array[],
  count: number,
  scheme: DigestScheme,
): Uint8Array {
  const size = digestBytes(scheme);
  const channels = parts.length;
  const out = new Uint8Array(count * size);
  for (let r = 0; r < count; r++) {
    const k = Math.floor(r / channels) * size;
    out.set(parts[r % channels].subarray(k, k + size), r * size);
  }
  return out;
}
