/**
 * Channel Workers kept between migrations: a resident tunnel (or any
 * process that serves one migration after another) starts its encode and
 * decode Workers once and sets them up afresh for each migration
 * ({@link EncoderPool.reuse}, {@link DecoderPool.reuse}) instead of paying a
 * Worker start per channel per migration. A pool goes back only when its
 * migration succeeded (a failed one may leave work or state behind: it is
 * closed); concurrent migrations each take their own.
 *
 * @module
 */

import { DecoderPool, type DecoderPoolOptions } from "./decoder_pool.ts";
import { EncoderPool, type EncoderPoolOptions } from "./encoder_pool.ts";
import { PAGE_SIZE } from "../plan.ts";

/** What {@link ChannelPools.warm} starts. */
export interface WarmPoolsOptions {
  /** An encode pool of this many channels (a sender's). */
  readonly encoders?: number;
  /** Its batches, in pages (default 256). */
  readonly batchPages?: number;
  /** A decode pool of this many channels (a receiver's). */
  readonly decoders?: number;
}

/** Options of {@link ChannelPools}. */
export interface ChannelPoolsOptions {
  /** Idle pools kept per kind (default 2); more given back are closed. */
  readonly maxIdle?: number;
  /**
   * When no idle decode pool has as many channels as a session, take the
   * smallest of more and stop its extra Workers, rather than start a pool
   * (default false). For a process that serves one session (an exec
   * receiver): it warms a pool per core before it knows the sender's count,
   * and a pool that does not fit would never be used. A process that serves
   * many keeps its pools whole, for the sessions of their count.
   */
  readonly shrink?: boolean;
}

/**
 * Idle encode and decode pools, by channel count: one per process that
 * serves migration after migration, passed as `pools` to every
 * `sendStream` (or `receiveStream`) it runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   ChannelPools,
 *   memoryDuplex,
 *   qemuFormat,
 *   receiveStream,
 *   sendStream,
 * } from "@hakobu/hakobu";
 *
 * const gz = await Deno.readFile(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const stream = await new Response(
 *   new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")),
 * ).bytes();
 * const sending = new ChannelPools();
 * const receiving = new ChannelPools();
 * try {
 *   for (let migration = 0; migration < 2; migration++) {
 *     const [conn, destination] = memoryDuplex();
 *     const received = receiveStream(destination, {
 *       format: "qemu",
 *       out: new WritableStream(),
 *       pools: receiving,
 *     });
 *     const stats = await sendStream(ReadableStream.from([stream]), conn, {
 *       format: qemuFormat,
 *       channels: 2,
 *       pools: sending, // the second migration runs on the first's Workers
 *     });
 *     assert.equal((await received).verified && stats.verified, true);
 *     assert.equal(sending.idle + receiving.idle, 2); // both handed back
 *   }
 * } finally {
 *   sending.close();
 *   receiving.close();
 * }
 * ```
 */
export class ChannelPools {
  readonly #maxIdle: number;
  readonly #shrink: boolean;
  readonly #encoders: EncoderPool[] = [];
  readonly #decoders: DecoderPool[] = [];
  #closed = false;

  /** Holds no pool yet: the first migrations start theirs. */
  constructor(options: ChannelPoolsOptions = {}) {
    this.#maxIdle = options.maxIdle ?? 2;
    this.#shrink = options.shrink ?? false;
  }

  /** Idle pools held now, both kinds together. */
  get idle(): number {
    return this.#encoders.length + this.#decoders.length;
  }

  /**
   * An idle encode pool of as many channels set up with `options`, or a new
   * one (what `sendStream` calls).
   *
   * @ignore
   */
  encoder(options: EncoderPoolOptions): EncoderPool {
    if (options.gpu === undefined) {
      const i = this.#encoders.findIndex((p) =>
        p.channels === options.channels && p.reusable
      );
      if (i >= 0) {
        const [pool] = this.#encoders.splice(i, 1);
        pool.reuse(options);
        return pool;
      }
    }
    return EncoderPool.start(options);
  }

  /**
   * An idle decode pool of as many channels set up with `options` (with
   * `shrink`, else the smallest of more, shrunk), or a new one (what the
   * receive core calls).
   *
   * @ignore
   */
  decoder(options: DecoderPoolOptions): DecoderPool {
    let i = this.#decoders.findIndex((p) =>
      p.channels === options.channels && p.reusable
    );
    if (i < 0 && this.#shrink) {
      for (const [j, p] of this.#decoders.entries()) {
        if (
          p.reusable && p.channels > options.channels &&
          (i < 0 || p.channels < this.#decoders[i].channels)
        ) i = j;
      }
    }
    if (i >= 0) {
      const [pool] = this.#decoders.splice(i, 1);
      pool.reuse(options);
      return pool;
    }
    return DecoderPool.start(options);
  }

  /**
   * Starts a pool of each kind given and holds it idle, so that the first
   * migration finds its Workers loaded instead of paying their start (tens
   * of milliseconds each, on its critical path); a resident tunnel calls it
   * as it starts listening. A migration of another channel count starts its
   * own, as before. Nothing is started beyond {@link ChannelPoolsOptions.maxIdle}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ChannelPools } from "@hakobu/hakobu";
   *
   * const pools = new ChannelPools();
   * pools.warm({ encoders: 2 });
   * assert.equal(pools.idle, 1); // taken by the first migration of 2 channels
   * pools.close();
   * ```
   */
  warm(options: WarmPoolsOptions): void {
    if (this.#closed) return;
    if (options.encoders && this.#encoders.length < this.#maxIdle) {
      this.#encoders.push(EncoderPool.start({
        channels: options.encoders,
        pageSize: PAGE_SIZE,
        pageCount: 1, // set up afresh for its stream when taken
        batchPages: options.batchPages ?? 256,
      }));
    }
    if (options.decoders && this.#decoders.length < this.#maxIdle) {
      this.#decoders.push(DecoderPool.start({
        channels: options.decoders,
        pageSize: PAGE_SIZE,
        pageCount: 1,
        codecs: [], // HELLO's, when taken
      }));
    }
  }

  /**
   * Takes back a pool whose migration succeeded, for the next one; closes
   * it instead when it cannot be reused or enough are idle.
   *
   * @ignore
   */
  giveBack(pool: EncoderPool | DecoderPool): void {
    const idle: (EncoderPool | DecoderPool)[] = pool instanceof EncoderPool
      ? this.#encoders
      : this.#decoders;
    if (this.#closed || !pool.reusable || idle.length >= this.#maxIdle) {
      pool.close();
      return;
    }
    idle.push(pool);
  }

  /** Closes every idle pool; pools given back later are closed. */
  close(): void {
    this.#closed = true;
    for (const p of this.#encoders.splice(0)) p.close();
    for (const p of this.#decoders.splice(0)) p.close();
  }
}
