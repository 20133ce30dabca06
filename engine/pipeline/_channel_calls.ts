/**
 * The requests that every channel's Worker answers once — a sync, a digest
 * of shared memory — as both pools send them: one id, one answer per
 * channel, resolved in channel order once the last one arrives.
 *
 * @module
 */

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
 * The {@link DigestRequest} of each channel for SHA-256 of `count` ranges of
 * `rangeBytes`, the ranges split evenly over `channels`; the answers, joined
 * in channel order, are 32 bytes per range in order.
 */
export function digestRequests(
  rangeBytes: number,
  count: number,
  channels: number,
): (id: number, channel: number) => DigestRequest {
  const per = Math.ceil(count / channels);
  return (id, channel) => {
    const from = Math.min(count, channel * per);
    return {
      type: "digest",
      id,
      from,
      to: Math.min(count, from + per),
      rangeBytes,
    };
  };
}
