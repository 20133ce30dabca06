/**
 * The receiver's channels: one decode Worker per channel
 * (`decode_worker.ts`). The main thread reads frames and hands each
 * channel's CODEC and BATCH frames to its Worker, in order; at most
 * `maxInFlight` batches wait per channel, so a fast link cannot pile up
 * memory behind a slow decoder. In return mode (a sink that does not share
 * destination memory), decoded pages come back through `onPages`, in each
 * channel's order.
 *
 * @module
 */

import { BufferShelf } from "./_buffer_shelf.ts";
import { CodecError, MigrationError, WireError } from "../errors.ts";
import type { CodecSetup } from "../wire/messages.ts";
import type {
  DecodeGpuInfo,
  DecodeInit,
  DecodeReply,
  DecodeRequest,
} from "./_messages.ts";
import { ChannelCalls, digestRequests, joinDigests } from "./_channel_calls.ts";
import type { DigestScheme } from "../digest.ts";
import { GpuError } from "../gpu/device.ts";
import type { JoinListenOptions } from "./_channel_join.ts";

/**
 * What a channel's own connection reports (per-channel connections,
 * {@link DecoderPool.listen}). After `codecAsk` and `roundEnd` the channel
 * reads nothing more until {@link DecoderPool.go}.
 */
export type ChannelConnEvent = Extract<
  DecodeReply,
  {
    type: "codecAsk" | "roundEnd" | "progress" | "joined" | "refused" | "lost";
  }
>;

/**
 * Options of {@link DecoderPool.start}: each channel's init, but its number
 * (without `memory`, decoded pages come back through `onPages`).
 */
export interface DecoderPoolOptions
  extends Omit<DecodeInit, "type" | "channel"> {
  /** Batches per channel waiting to be decoded, at most (default 4). */
  readonly maxInFlight?: number;
  /** Return mode: a channel's decoded batch, in that channel's order. */
  readonly onPages?: (
    channel: number,
    pages: Extract<DecodeReply, { type: "pages" }>,
  ) => void;
  /**
   * Per-channel connections: each channel's connection events, in that
   * channel's order; an exception fails the pool.
   */
  readonly onConnEvent?: (channel: number, event: ChannelConnEvent) => void;
}

/**
 * The decode Workers of one migration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName } from "@hakobu/hakobu";
 * import { BatchEncoderChain } from "../codecs/batch_chain.ts";
 * import { DecoderPool } from "./decoder_pool.ts";
 * import { PageBatchBuilder } from "./page_batch.ts";
 *
 * // What a sender puts in one BATCH: page 0 is zero, page 1 a colour fill.
 * const source = new Uint8Array(2 * 4096).fill(7, 4096);
 * const batch = new PageBatchBuilder({
 *   pageSize: 4096,
 *   nonZeroPages: 256,
 *   maxPages: 1024,
 * });
 * batch.addFrom(source, 0);
 * batch.addFrom(source, 1);
 * const chain = new BatchEncoderChain({ pageSize: 4096, pageCount: 2 });
 * chain.select([{ name: "zero" }, { name: "rle" }]);
 * const { payload } = chain.encode(batch, (n) => new Uint8Array(n));
 *
 * const memory = new SharedArrayBuffer(2 * 4096);
 * const pool = DecoderPool.start({
 *   channels: 1,
 *   pageSize: 4096,
 *   pageCount: 2,
 *   codecs: ["raw", "zero", "rle"].map((name) => ({
 *     id: codecByName(name).id,
 *     name,
 *   })),
 *   memory,
 *   touched: new SharedArrayBuffer(2),
 * });
 * try {
 *   for (const { codec, options } of chain.takeNewCodecs()) {
 *     pool.codec(0, { id: codec.id, name: codec.name, options }, 0);
 *   }
 *   await pool.batch(0, 0, payload, 0);
 *   assert.equal(await pool.sync(), 2); // pages applied
 *   assert.deepEqual(new Uint8Array(memory), source);
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class DecoderPool {
  readonly #workers: Worker[];
  readonly #inFlight: number[];
  #max: number;
  readonly #slotWaiters: ((() => void) | null)[];
  #onPages: DecoderPoolOptions["onPages"];
  readonly #calls: ChannelCalls<DecodeRequest>;
  #nextId = 1;
  #error: Error | null = null;
  #failWaiters: ((e: Error) => void)[] = [];
  #closed = false;
  #gpuPages = 0;
  #gpu: (DecodeGpuInfo | null)[];
  readonly #onConnEvent: DecoderPoolOptions["onConnEvent"];
  readonly #listening = new Map<number, (port: number) => void>();
  /**
   * BATCH payload buffers the channels gave back ({@link payloadBuffer}): a
   * few, about one per batch in flight.
   */
  readonly #payloads: BufferShelf;

  private constructor(workers: Worker[], options: DecoderPoolOptions) {
    this.#onConnEvent = options.onConnEvent;
    this.#payloads = new BufferShelf(2 * workers.length + 2);
    this.#workers = workers;
    this.#calls = new ChannelCalls(workers);
    this.#inFlight = workers.map(() => 0);
    this.#slotWaiters = workers.map(() => null);
    this.#max = options.maxInFlight ?? 4;
    this.#onPages = options.onPages;
    this.#gpu = workers.map(() => null);
    workers.forEach((w, channel) => {
      w.onmessage = (e: MessageEvent<DecodeReply>) =>
        this.#receive(channel, e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(
          new MigrationError(`Channel ${channel} decoder failed: ${e.message}`),
        );
      };
    });
  }

  /** Channels, one Worker each. */
  get channels(): number {
    return this.#workers.length;
  }

  /** Starts one Worker per channel and sets each up. */
  static start(options: DecoderPoolOptions): DecoderPool {
    const workers: Worker[] = [];
    for (let c = 0; c < options.channels; c++) {
      workers.push(
        new Worker(new URL("./decode_worker.ts", import.meta.url), {
          type: "module",
        }),
      );
    }
    const pool = new DecoderPool(workers, options);
    pool.#init(options);
    return pool;
  }

  #init(options: DecoderPoolOptions): void {
    this.#gpuPages = 0;
    this.#gpu = this.#workers.map(() => null);
    this.#workers.forEach((w, c) =>
      w.postMessage(
        {
          type: "init",
          channel: c,
          channels: options.channels,
          pageSize: options.pageSize,
          pageCount: options.pageCount,
          codecs: options.codecs,
          memory: options.memory,
          touched: options.touched,
          gpu: options.gpu,
        } satisfies DecodeRequest,
      )
    );
  }

  /**
   * Whether {@link reuse} may set this pool up for another session: no
   * channel failed, it is not closed, and no batch is being decoded.
   */
  get reusable(): boolean {
    return !this.#closed && this.#error === null &&
      this.#inFlight.every((n) => n === 0);
  }

  /**
   * Sets every channel up afresh for another session (a resident receiver
   * starts its Workers once): each gets `options` as a new Worker would, so
   * its decoders, pages applied and kept pages start over; the Workers and
   * their returned page buffers stay. Only when {@link reusable}, with as
   * many channels or fewer: a pool of more stops the Workers of the
   * channels beyond (a receiver that started one per core for a sender of
   * fewer).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { DecoderPool } from "./decoder_pool.ts";
   *
   * const options = { pageSize: 4096, pageCount: 16, codecs: [] };
   * const pool = DecoderPool.start({ ...options, channels: 3 });
   * try {
   *   pool.reuse({ ...options, channels: 2 }); // the third Worker stops
   *   assert.equal(pool.channels, 2);
   *   assert.equal(await pool.sync(), 0);
   *   assert.throws(() => pool.reuse({ ...options, channels: 3 }), /they are 2, not 3/);
   * } finally {
   *   pool.close();
   * }
   * ```
   */
  reuse(options: DecoderPoolOptions): void {
    if (!this.reusable || options.channels > this.channels) {
      throw new MigrationError(
        `Cannot reuse the receiver's channels: ${
          options.channels > this.channels
            ? `they are ${this.channels}, not ${options.channels}`
            : "one failed, they were closed, or they hold work"
        }`,
      );
    }
    if (!(Number.isSafeInteger(options.channels) && options.channels >= 1)) {
      throw new RangeError(
        `A session needs 1 channel or more, got ${options.channels}`,
      );
    }
    // Channels beyond the session's: their Workers stop (nothing in flight:
    // reusable), and every per-channel list ends with the last one kept.
    const n = options.channels;
    for (const w of this.#workers.splice(n)) w.terminate();
    this.#inFlight.splice(n);
    this.#slotWaiters.splice(n);
    this.#max = options.maxInFlight ?? 4;
    this.#onPages = options.onPages;
    // the last session's waiters on failure never settle: it is over
    this.#failWaiters = [];
    this.#init(options);
  }

  /**
   * Return mode: hands a `pages` buffer of an `onPages` batch back to its
   * channel once every page of it was used (transferred: the caller gives
   * it up), so the channel's next batch goes out in it instead of a fresh
   * allocation.
   */
  returnPages(channel: number, pages: Uint8Array): void {
    if (this.#error || this.#closed) return;
    const buffer = pages.buffer as ArrayBuffer;
    this.#workers[channel].postMessage(
      { type: "buffer", buffer } satisfies DecodeRequest,
      { transfer: [buffer] },
    );
  }

  /** Rejects once a channel failed (for racing against the next frame). */
  failed(): Promise<never> {
    return new Promise<never>((_, reject) => {
      if (this.#error) reject(this.#error);
      else this.#failWaiters.push(reject);
    });
  }

  /** Hands a CODEC frame to its channel. */
  codec(channel: number, setup: CodecSetup, at: number): void {
    this.#throwIfFailed();
    this.#workers[channel].postMessage(
      { type: "codec", setup, at } satisfies DecodeRequest,
    );
  }

  /**
   * Hands a BATCH payload (transferred: the caller gives it up) to its
   * channel; resolves once the channel has room for another.
   */
  async batch(
    channel: number,
    round: number,
    payload: Uint8Array,
    at: number,
  ): Promise<void> {
    this.#throwIfFailed();
    while (this.#inFlight[channel] >= this.#max) {
      await new Promise<void>((r) => this.#slotWaiters[channel] = r);
      this.#slotWaiters[channel] = null;
      this.#throwIfFailed();
    }
    this.#inFlight[channel]++;
    const id = this.#nextId++;
    this.#workers[channel].postMessage(
      {
        type: "batch",
        id,
        round,
        payload,
        at,
        giveBack: true,
      } satisfies DecodeRequest,
      { transfer: [payload.buffer as ArrayBuffer] },
    );
  }

  /**
   * A buffer of exactly `bytes` for the next BATCH payload to be read into
   * (then handed to {@link batch}): one a channel gave back after decoding
   * its batch when one is large enough, else a fresh one with room to
   * spare (payloads vary in size), so reading frames costs no fresh memory
   * (zero-fill, page faults) per frame.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { DecoderPool } from "./decoder_pool.ts";
   *
   * const pool = DecoderPool.start({
   *   channels: 1,
   *   pageSize: 4096,
   *   pageCount: 16,
   *   codecs: [],
   * });
   * try {
   *   const b = pool.payloadBuffer(1000);
   *   assert.equal(b.length, 1000);
   *   assert.ok(b.buffer.byteLength >= 1000);
   * } finally {
   *   pool.close();
   * }
   * ```
   */
  payloadBuffer(bytes: number): Uint8Array<ArrayBuffer> {
    const buffer = this.#payloads.take(bytes) ??
      new ArrayBuffer(Math.ceil(bytes * 1.25));
    return new Uint8Array(buffer, 0, bytes);
  }

  /** Resolves with the pages applied so far, once every channel has finished what it was given. */
  async sync(): Promise<number> {
    const values = await this.#all((id) => ({ type: "sync", id }));
    return (values as number[]).reduce((a, b) => a + b, 0);
  }

  /**
   * Like {@link sync}, but the pages each channel applied, in channel
   * order (a resumed session tells the source what each channel holds).
   */
  async syncChannels(): Promise<number[]> {
    return await this.#all((id) => ({ type: "sync", id })) as number[];
  }

  /**
   * The digest (`scheme`, SHA-256 by default) of each of `count` ranges of
   * `rangeBytes` of shared destination memory, hashed by all channels in parallel,
   * one after the other in memory order.
   */
  async digest(
    rangeBytes: number,
    count: number,
    scheme: DigestScheme = "sha256",
  ): Promise<Uint8Array> {
    const parts = await this.#all(
      digestRequests(rangeBytes, count, this.channels, scheme),
    );
    return joinDigests(parts as Uint8Array[], count, scheme);
  }

  /** Pages decoded on the GPU so far (by batches applied or returned), every channel together. */
  get gpuPages(): number {
    return this.#gpuPages;
  }

  /**
   * Per channel, its GPU as its Worker reported it (adapter, or why none)
   * once it opened it; null while unknown or where no GPU was asked for.
   */
  get gpu(): readonly (DecodeGpuInfo | null)[] {
    return this.#gpu;
  }

  /**
   * Per-channel connections: each channel's Worker listens for its own
   * connection with `options(channel)` and, once one joined, reads and
   * applies its frames itself (reported through `onConnEvent`). Resolves
   * with each channel's port.
   */
  async listen(
    options: (channel: number) => JoinListenOptions,
    frameTimeoutMs: number,
  ): Promise<number[]> {
    this.#throwIfFailed();
    const ports = this.#workers.map((w, c) =>
      new Promise<number>((resolve) => {
        this.#listening.set(c, resolve);
        w.postMessage(
          {
            type: "listen",
            options: options(c),
            frameTimeoutMs,
          } satisfies DecodeRequest,
        );
      })
    );
    return await Promise.race([Promise.all(ports), this.failed()]);
  }

  /** Lets channel `channel` read on after a `codecAsk` or `roundEnd`. */
  go(channel: number): void {
    this.#workers[channel].postMessage({ type: "go" } satisfies DecodeRequest);
  }

  /**
   * Per-channel connections: every channel stops listening and reading
   * and closes its connection; a {@link syncChannels} after this counts
   * each channel's pages for good (a resumable session parks).
   */
  halt(): void {
    if (this.#closed) return;
    for (const w of this.#workers) {
      w.postMessage({ type: "halt" } satisfies DecodeRequest);
    }
  }

  /** Stops every Worker. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    this.#fail(new MigrationError("The receiver's channels were closed"));
  }

  #all(
    request: (id: number, channel: number) => DecodeRequest,
  ): Promise<unknown[]> {
    if (this.#error) return Promise.reject(this.#error);
    return this.#calls.all(this.#nextId++, request);
  }

  #receive(channel: number, m: DecodeReply): void {
    switch (m.type) {
      case "applied":
        this.#gpuPages += m.gpuPages;
        this.#keepPayload(m.payload);
        this.#freeSlot(channel);
        return;
      case "gpu":
        this.#gpu[channel] = {
          adapter: m.adapter,
          software: m.software,
          note: m.note,
        };
        return;
      case "pages":
        this.#gpuPages += m.gpuPages;
        this.#keepPayload(m.payload);
        this.#freeSlot(channel);
        try {
          this.#onPages?.(channel, m);
        } catch (e) {
          this.#fail(e instanceof Error ? e : new Error(String(e)));
        }
        return;
      case "synced":
        this.#calls.settle(m.id, channel, m.applied);
        return;
      case "digest":
        this.#calls.settle(m.id, channel, m.digests);
        return;
      case "listening":
        this.#listening.get(channel)?.(m.port);
        this.#listening.delete(channel);
        return;
      case "progress":
      case "codecAsk":
      case "roundEnd":
      case "joined":
      case "refused":
      case "lost":
        if (m.type === "progress") this.#gpuPages += m.gpuPages;
        if (this.#error) return;
        try {
          this.#onConnEvent?.(channel, m);
        } catch (e) {
          this.#fail(e instanceof Error ? e : new Error(String(e)));
        }
        return;
      case "error": {
        // The Worker's error, rebuilt with its type, so a session reports it as
        // the main thread would have.
        const e = m.name === "WireError"
          ? new WireError(m.message, m.offset)
          : m.name === "CodecError"
          ? new CodecError(m.codec ?? "?", m.message)
          : m.name === "GpuError"
          ? new GpuError(m.message)
          : new MigrationError(
            `Channel ${channel} decoder failed: ${m.message}`,
          );
        this.#fail(e);
        return;
      }
    }
  }

  /** Keeps a given-back payload buffer for a later frame. */
  #keepPayload(buffer: ArrayBuffer | undefined): void {
    if (buffer) this.#payloads.keep(buffer);
  }

  #freeSlot(channel: number): void {
    this.#inFlight[channel]--;
    this.#slotWaiters[channel]?.();
  }

  #throwIfFailed(): void {
    if (this.#error) throw this.#error;
  }

  #fail(error: Error): void {
    if (this.#error) return;
    this.#error = error;
    for (const w of this.#slotWaiters) w?.();
    this.#calls.rejectAll(error);
    for (const r of this.#failWaiters) r(error);
    this.#failWaiters = [];
  }
}
