/**
 * The sender's channels: one encode Worker per channel
 * (`encode_worker.ts`), and one queue on the main thread that merges what
 * they post — frames to write, in each channel's order, and "done" marks.
 * The main thread paces and writes frames and hands each written BATCH
 * frame's buffer back as a credit ({@link EncoderPool.credit}).
 *
 * @module
 */

import type { CodecSpec } from "../plan.ts";
import { LinkLostError, MigrationError } from "../errors.ts";
import type { EncodeInit, EncodeReply, EncodeRequest } from "./_messages.ts";
import { ChannelCalls, digestRequests, joinDigests } from "./_channel_calls.ts";
import type { DigestScheme } from "../digest.ts";

/** Options of {@link EncoderPool.start}: each channel's init, but its number. */
export interface EncoderPoolOptions
  extends Omit<EncodeInit, "type" | "channel" | "credits"> {
  /** BATCH frames each channel may have on their way at once (default 4). */
  readonly credits?: number;
}

/**
 * What the channels post, merged, in arrival order (each channel's own order
 * kept): a frame to write, CODEC or BATCH (give a BATCH frame's buffer back
 * with {@link EncoderPool.credit} once written), or `done`: every frame of
 * request `id` on this channel was posted before it.
 */
export type EncoderEvent =
  & Extract<EncodeReply, { type: "frame" | "done" | "sent" }>
  & { readonly channel: number };

/** How a channel connects and joins its session ({@link EncoderPool.connect}). */
export type ChannelConnectRequest = Omit<
  Extract<EncodeRequest, { type: "connect" }>,
  "type"
>;

/**
 * The encode Workers of one migration.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EncoderPool } from "./encoder_pool.ts";
 * import { splitByChannel } from "./partition.ts";
 *
 * const pageCount = 1024;
 * const memory = new SharedArrayBuffer(pageCount * 4096);
 * const pool = EncoderPool.start({
 *   channels: 2,
 *   pageSize: 4096,
 *   pageCount,
 *   memory,
 *   batchPages: 256,
 * });
 * try {
 *   pool.chain([{ name: "zero" }, { name: "raw" }]);
 *   const pfns = Uint32Array.from({ length: pageCount }, (_, pfn) => pfn);
 *   pool.round(0, splitByChannel(pfns, pageCount, 2));
 *   let pages = 0;
 *   for (let done = 0; done < 2;) {
 *     const e = await pool.next();
 *     if (e.type === "done") {
 *       done++;
 *       pages += e.pages;
 *     } else if (e.type === "frame" && e.credited) {
 *       pool.credit(e.channel, e.bytes); // once the frame is written
 *     }
 *   }
 *   assert.equal(pages, pageCount);
 * } finally {
 *   pool.close();
 * }
 * ```
 */
export class EncoderPool {
  /** Channels, one Worker each. */
  readonly channels: number;
  /** Each channel's GPU, as it reported after opening it (when asked for one). */
  readonly gpu: ({
    adapter: string | null;
    software: boolean;
    note: string;
  } | undefined)[] = [];
  readonly #workers: Worker[];
  readonly #events: EncoderEvent[] = [];
  #waiter: (() => void) | null = null;
  #error: Error | null = null;
  #nextId = 1;
  /** Requests every channel answers (digest, sync), by id. */
  readonly #calls: ChannelCalls<EncodeRequest>;
  #closed = false;
  readonly #joined = new Map<number, () => void>();
  #joinFailed: ((e: Error) => void) | null = null;
  /** A pending {@link next} is to end (the pool is being handed back). */
  #interrupted = false;
  /** Started with a GPU: not reusable (its GPU encoders keep state per pfn space). */
  #gpu = false;

  private constructor(workers: Worker[]) {
    this.channels = workers.length;
    this.#workers = workers;
    this.#calls = new ChannelCalls(workers);
    workers.forEach((w, channel) => {
      w.onmessage = (e: MessageEvent<EncodeReply>) =>
        this.#receive(channel, e.data);
      w.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        this.#fail(
          new MigrationError(`Channel ${channel} encoder failed: ${e.message}`),
        );
      };
    });
  }

  /** Starts one Worker per channel and sets each up. */
  static start(options: EncoderPoolOptions): EncoderPool {
    const workers: Worker[] = [];
    for (let c = 0; c < options.channels; c++) {
      workers.push(
        new Worker(new URL("./encode_worker.ts", import.meta.url), {
          type: "module",
        }),
      );
    }
    const pool = new EncoderPool(workers);
    pool.#init(options);
    return pool;
  }

  #init(options: EncoderPoolOptions): void {
    this.#gpu = options.gpu !== undefined;
    this.#workers.forEach((w, c) =>
      w.postMessage(
        {
          type: "init",
          channel: c,
          channels: options.channels,
          pageSize: options.pageSize,
          pageCount: options.pageCount,
          memory: options.memory,
          batchPages: options.batchPages,
          credits: options.credits ?? 4,
          gpu: options.gpu,
        } satisfies EncodeRequest,
      )
    );
  }

  /**
   * Whether {@link reuse} may set this pool up for another migration: no
   * channel failed, it is not closed, no event waits, and it has no GPU.
   */
  get reusable(): boolean {
    return !this.#closed && this.#error === null &&
      this.#events.length === 0 && !this.#gpu;
  }

  /**
   * Sets every channel up afresh for another migration (a resident tunnel
   * starts its Workers once): each gets `options` as a new Worker would, so
   * its codec state, batches and credits start over; the Workers and their
   * frame buffers stay. Only when {@link reusable}, with as many channels.
   */
  reuse(options: EncoderPoolOptions): void {
    if (!this.reusable || options.channels !== this.channels) {
      throw new MigrationError(
        `Cannot reuse the sender's channels: ${
          options.channels !== this.channels
            ? `they are ${this.channels}, not ${options.channels}`
            : "one failed, they were closed, or they hold work"
        }`,
      );
    }
    this.#interrupted = false;
    this.#init(options);
  }

  /**
   * Ends a {@link next} that is waiting (or the next call) with an error,
   * without failing the pool: its reader stops, and the pool can be handed
   * back for another migration.
   */
  interrupt(): void {
    this.#interrupted = true;
    this.#waiter?.();
  }

  /** Makes `specs` every channel's chain for the requests that follow. */
  chain(specs: readonly CodecSpec[]): void {
    for (const w of this.#workers) w.postMessage({ type: "chain", specs });
  }

  /**
   * Native mode: channel `c` sends `parts[c]` (ascending pfns of shared
   * memory) as round `round`. Returns the request id each channel's "done"
   * will carry.
   */
  round(
    round: number,
    parts: readonly Uint32Array[],
    final = false,
  ): number {
    const id = this.#nextId++;
    parts.forEach((pfns, c) =>
      this.#workers[c].postMessage(
        { type: "round", id, round, pfns, final } satisfies EncodeRequest,
        { transfer: [pfns.buffer as ArrayBuffer] },
      )
    );
    return id;
  }

  /**
   * Stream mode: channel `channel` encodes exactly the first `count` pages
   * of `pages` as one BATCH frame. `pages` is transferred; its buffer comes
   * back, whole, as the request's "done" event's `buffer`, for a later
   * batch. Returns the request id.
   */
  batch(
    channel: number,
    round: number,
    count: number,
    pfns: Float64Array,
    pages: Uint8Array,
  ): number {
    const id = this.#nextId++;
    this.#workers[channel].postMessage(
      { type: "batch", id, round, count, pfns, pages } satisfies EncodeRequest,
      { transfer: [pfns.buffer as ArrayBuffer, pages.buffer as ArrayBuffer] },
    );
    return id;
  }

  /**
   * Per-channel connections: channel `c` connects with `request(c)` and
   * joins its session; from then on each channel writes its frames (and
   * its ROUND_ENDs) on its own connection and posts "sent" instead of
   * "frame". Resolves once every channel joined; rejects with the first
   * channel's failure.
   */
  async connect(request: (channel: number) => ChannelConnectRequest): Promise<
    void
  > {
    if (this.#error) throw this.#error;
    const joined = this.#workers.map((w, c) =>
      new Promise<void>((resolve) => {
        this.#joined.set(c, resolve);
        w.postMessage(
          { type: "connect", ...request(c) } satisfies EncodeRequest,
        );
      })
    );
    await Promise.race([
      Promise.all(joined),
      new Promise<never>((_, reject) => this.#joinFailed = reject),
    ]);
    this.#joinFailed = null;
  }

  /** The next frame or "done" mark; rejects once a channel failed. */
  async next(): Promise<EncoderEvent> {
    for (;;) {
      if (this.#error) throw this.#error;
      if (this.#interrupted) {
        this.#interrupted = false;
        throw new MigrationError("The sender's channels were handed back");
      }
      const e = this.#events.shift();
      if (e) return e;
      await new Promise<void>((r) => this.#waiter = r);
      this.#waiter = null;
    }
  }

  /** The first channel's failure (a lost link under it included), or null. */
  get failure(): Error | null {
    return this.#error;
  }

  /**
   * Per-channel connections: bytes the channels wrote on their own
   * connections that {@link next} has not handed out yet (a pool given up
   * after a lost link still counts what went on the wire).
   */
  get pendingWireBytes(): number {
    let n = 0;
    for (const e of this.#events) {
      if (e.type === "sent") n += e.wireBytes;
      else if (e.type === "done") n += e.endBytes ?? 0;
    }
    return n;
  }

  /** A written BATCH frame's buffer goes back to its channel: one more credit. */
  credit(channel: number, bytes: Uint8Array): void {
    const buffer = bytes.buffer as ArrayBuffer;
    this.#workers[channel].postMessage(
      { type: "credit", buffer } satisfies EncodeRequest,
      { transfer: [buffer] },
    );
  }

  /**
   * The digest (`scheme`, SHA-256 by default) of each of `count` ranges of
   * `rangeBytes` of shared memory, hashed by all channels in parallel,
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

  /**
   * Resolves once every channel has handled every request sent before this
   * call (e.g. its start-up and its chain: a bench times a round from here).
   */
  async sync(): Promise<void> {
    await this.#all((id) => ({ type: "sync", id }));
  }

  /** Stops every Worker (pending work is dropped). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#workers) w.terminate();
    this.#fail(new MigrationError("The sender's channels were closed"));
  }

  /** Stops channel `channel`'s Worker as if it died (tests of a lost channel). */
  kill(channel: number): void {
    this.#workers[channel].terminate();
    this.#fail(
      new MigrationError(`Channel ${channel} encoder stopped: it was killed`),
    );
  }

  #receive(channel: number, m: EncodeReply): void {
    switch (m.type) {
      case "frame":
      case "sent":
        this.#events.push({ ...m, channel });
        break;
      case "lost":
        // The link under the channel, not the channel: a resumable
        // migration resumes from it.
        this.#fail(
          new LinkLostError(m.message, {
            side: "receiver",
            peer: null,
            phase: `channel ${channel}'s connection`,
          }),
        );
        return;
      case "joined":
        this.#joined.get(channel)?.();
        this.#joined.delete(channel);
        return;
      case "done":
        this.#events.push({ ...m, channel });
        break;
      case "gpu":
        this.gpu[channel] = {
          adapter: m.adapter,
          software: m.software,
          note: m.note,
        };
        return;
      case "digest":
        this.#calls.settle(m.id, channel, m.digests);
        return;
      case "synced":
        this.#calls.settle(m.id, channel, undefined);
        return;
      case "error":
        this.#fail(
          new MigrationError(
            `Channel ${channel} encoder failed: ${m.name}: ${m.message}`,
          ),
        );
        return;
    }
    this.#waiter?.();
  }

  /** Sends every channel `request(id, channel)`; resolves with their answers by channel. */
  #all(
    request: (id: number, channel: number) => EncodeRequest,
  ): Promise<unknown[]> {
    if (this.#error) return Promise.reject(this.#error);
    return this.#calls.all(this.#nextId++, request);
  }

  #fail(error: Error): void {
    this.#error ??= error;
    this.#joinFailed?.(this.#error);
    this.#waiter?.();
    this.#calls.rejectAll(this.#error);
  }
}
