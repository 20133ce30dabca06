/**
 * A codec chain over batches, both halves: {@link BatchEncoderChain} (the
 * sender's; the first codec that claims a page wins) turns a
 * {@link PageBatch} into a BATCH payload, and {@link BatchDecoderSet} (the
 * receiver's) decodes one back into pages. One of each per channel: their
 * codec state (delta's cache, dedup's store, zstd's stream) follows that
 * channel's pages only.
 *
 * @module
 */

import { CodecError, WireError } from "../errors.ts";
import type { CodecSpec } from "../plan.ts";
import {
  type BatchParts,
  batchPayloadBytes,
  encodeBatchPayload,
  type ParsedBatch,
} from "../wire/batch.ts";
import type {
  BatchDecoder,
  BatchEncoder,
  DecodedPages,
  PageBatch,
} from "./batch.ts";
import type { Codec } from "./codec.ts";
import { codecByName } from "./registry.ts";
import { CodecEncoders, type EncoderEntry } from "./_encoders.ts";

/** What one batch encoded to. */
export interface EncodedBatchInfo {
  /** The BATCH payload, in the buffer `alloc` returned. */
  readonly payload: Uint8Array;
  /** Wire id of the codec that claimed each page (valid until the next encode). */
  readonly codecOf: Uint8Array;
  /** Pages claimed per codec id. */
  readonly claims: ReadonlyMap<number, number>;
}

type Entry = EncoderEntry<BatchEncoder>;

/**
 * The sender's chain for one channel. Encoders are created once and kept
 * across rounds, so a policy that changes its chain keeps each codec's state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName } from "@hakobu/hakobu";
 * import { PageBatchBuilder } from "../pipeline/page_batch.ts";
 * import { BatchEncoderChain } from "./batch_chain.ts";
 *
 * const memory = new Uint8Array(4 * 4096);
 * memory.fill(7, 4096, 8192); // page 1 is a colour fill, the others are zero
 * const batch = new PageBatchBuilder({
 *   pageSize: 4096,
 *   nonZeroPages: 256,
 *   maxPages: 1024,
 * });
 * for (let pfn = 0; pfn < 4; pfn++) batch.addFrom(memory, pfn);
 * const chain = new BatchEncoderChain({ pageSize: 4096, pageCount: 4 });
 * chain.select([{ name: "zero" }, { name: "rle" }]);
 * assert.deepEqual(chain.active, ["zero", "rle", "raw"]); // raw ends every chain
 * const { payload, claims } = chain.encode(batch, (n) => new Uint8Array(n));
 * assert.equal(claims.get(codecByName("zero").id), 3);
 * assert.equal(claims.get(codecByName("rle").id), 1);
 * assert.ok(payload.length < 100);
 * ```
 */
export class BatchEncoderChain {
  readonly #pageSize: number;
  readonly #pageCount: number;
  readonly #channels: number;
  readonly #entries: CodecEncoders<BatchEncoder> = new CodecEncoders(
    (codec, options) =>
      codec.createBatchEncoder({
        pageSize: this.#pageSize,
        pageCount: this.#pageCount,
        channels: this.#channels,
        options,
      }),
  );
  #active: Entry[] = [];
  #offered = new Uint32Array(0);
  #claimed = new Uint8Array(0);
  #codecOf = new Uint8Array(0);
  #sectionOf = new Uint8Array(0);
  readonly #scratch = new Map<number, Uint8Array>();

  /**
   * @param geometry Page size and count of the VM, and the channels of the
   *   migration (each codec's memory budget is split among them).
   */
  constructor(
    geometry: { pageSize: number; pageCount: number; channels?: number },
  ) {
    this.#pageSize = geometry.pageSize;
    this.#pageCount = geometry.pageCount;
    this.#channels = geometry.channels ?? 1;
  }

  /**
   * Makes `specs` the active chain; `raw` is appended unless the chain ends
   * with it, so every page is always claimed.
   *
   * @throws {CodecError} for an unknown codec, bad options, or options that
   *   differ from the ones the codec's state was created with.
   */
  select(specs: readonly CodecSpec[]): void {
    const active = specs.map((s) => this.#entry(s));
    if (active.length === 0 || active.at(-1)!.codec.name !== "raw") {
      active.push(this.#entry({ name: "raw" }));
    }
    this.#active = active;
  }

  /** Names of the active chain, in order. */
  get active(): string[] {
    return this.#active.map((e) => e.codec.name);
  }

  /** The active chain's codecs, in order. */
  get activeCodecs(): Codec[] {
    return this.#active.map((e) => e.codec);
  }

  /** Codecs created so far (for the handshake and reports). */
  get codecs(): Codec[] {
    return [...this.#entries.all()].map((e) => e.codec);
  }

  /** The options a codec's encoder was created with, if it was. */
  optionsOf(name: string): Readonly<Record<string, unknown>> | undefined {
    return this.#entries.optionsOf(name);
  }

  /**
   * Codecs created since the last call, with their options, in creation
   * order: the sender announces each (a CODEC frame on this channel) before
   * the batch that first uses it.
   */
  takeNewCodecs(): {
    codec: Codec;
    options: Readonly<Record<string, unknown>>;
  }[] {
    return this.#entries.takeNew();
  }

  /**
   * Encodes `batch` with the active chain: each codec is offered the pages
   * no earlier one claimed; the payload goes into `alloc(bytes)` (exactly
   * that many bytes). Then every encoder is told what was sent.
   */
  encode(
    batch: PageBatch,
    alloc: (payloadBytes: number) => Uint8Array,
  ): EncodedBatchInfo {
    const count = batch.count;
    if (this.#offered.length < count) {
      this.#offered = new Uint32Array(count);
      this.#claimed = new Uint8Array(count);
      this.#codecOf = new Uint8Array(count);
      this.#sectionOf = new Uint8Array(count);
    }
    const offered = this.#offered;
    const claimed = this.#claimed;
    const codecOf = this.#codecOf;
    const sectionOf = this.#sectionOf;
    for (let i = 0; i < count; i++) offered[i] = i;
    let n = count;
    const sections: { codecId: number; bytes: Uint8Array }[] = [];
    const claims = new Map<number, number>();
    for (const { codec, encoder } of this.#active) {
      if (n === 0) break;
      const out = this.#scratchFor(
        codec.id,
        codec.maxSectionBytes(n, this.#pageSize),
      );
      claimed.fill(0, 0, n);
      const len = encoder.encode(batch, offered, n, claimed, out);
      let kept = 0;
      let took = 0;
      const section = sections.length;
      for (let k = 0; k < n; k++) {
        const i = offered[k];
        if (claimed[k] === 1) {
          codecOf[i] = codec.id;
          sectionOf[i] = section;
          took++;
        } else offered[kept++] = i;
      }
      if (took > 0) {
        sections.push({ codecId: codec.id, bytes: out.subarray(0, len) });
        claims.set(codec.id, took);
      } else if (len !== 0) {
        throw new CodecError(
          codec.name,
          `Codec "${codec.name}" wrote ${len} bytes but claimed no page`,
        );
      }
      n = kept;
    }
    if (n !== 0) {
      // select() ends every chain with raw, which claims every page offered.
      throw new Error(`No codec claimed ${n} pages of the batch`);
    }
    const parts: BatchParts = {
      count,
      pfns: batch.pfns,
      sectionOf,
      sections,
    };
    const payload = alloc(batchPayloadBytes(parts));
    encodeBatchPayload(parts, payload);
    for (const e of this.#entries.all()) e.encoder.sent?.(batch, codecOf);
    return { payload, codecOf, claims };
  }

  /**
   * Frames a batch whose pages were already encoded one by one elsewhere
   * (the GPU twins, byte-identical to the per-page CPU encoders): page `i`
   * went to codec `codecOf[i]` (a codec of the active chain) as
   * `bytesOf(i)`. Sections are packed as the codecs' batch forms pack them
   * — empty for zero pages, the pages one after the other for raw, a u32
   * length per page then the encodings for the per-page codecs — and every
   * encoder is told what was sent, as after {@link encode}.
   */
  encodeWith(
    batch: PageBatch,
    codecOf: Uint8Array,
    bytesOf: (i: number) => Uint8Array,
    alloc: (payloadBytes: number) => Uint8Array,
  ): EncodedBatchInfo {
    const count = batch.count;
    if (this.#sectionOf.length < count) {
      this.#sectionOf = new Uint8Array(count);
      this.#codecOf = new Uint8Array(count);
    }
    const sections: { codecId: number; bytes: Uint8Array }[] = [];
    const claims = new Map<number, number>();
    let framed = 0;
    for (const { codec } of this.#active) {
      let n = 0;
      let data = 0;
      for (let i = 0; i < count; i++) {
        if (codecOf[i] !== codec.id) continue;
        n++;
        data += bytesOf(i).length;
      }
      if (n === 0) continue;
      const perPage = !codec.zeroPages && codec.id !== 0;
      if (perPage && !codec.createEncoder) {
        // lz4's or zstd's section is not pages encoded one by one
        throw new CodecError(
          codec.name,
          `Cannot frame pages encoded one by one as codec "${codec.name}": it has no per-page form`,
        );
      }
      framed += n;
      const bytes = new Uint8Array((perPage ? 4 * n : 0) + data);
      const v = new DataView(bytes.buffer);
      let k = 0;
      let at = perPage ? 4 * n : 0;
      const section = sections.length;
      for (let i = 0; i < count; i++) {
        if (codecOf[i] !== codec.id) continue;
        const b = bytesOf(i);
        if (perPage) v.setUint32(4 * k++, b.length, true);
        bytes.set(b, at);
        at += b.length;
        this.#sectionOf[i] = section;
        this.#codecOf[i] = codec.id;
      }
      sections.push({ codecId: codec.id, bytes });
      claims.set(codec.id, n);
    }
    if (framed !== count) {
      const active = new Set(this.#active.map((e) => e.codec.id));
      let i = 0;
      while (active.has(codecOf[i])) i++;
      throw new RangeError(
        `Cannot frame page ${i} of the batch: its codec id ${
          codecOf[i]
        } is not in the active chain (${this.active})`,
      );
    }
    const parts: BatchParts = {
      count,
      pfns: batch.pfns,
      sectionOf: this.#sectionOf,
      sections,
    };
    const payload = alloc(batchPayloadBytes(parts));
    encodeBatchPayload(parts, payload);
    for (const e of this.#entries.all()) {
      e.encoder.sent?.(batch, this.#codecOf);
    }
    return { payload, codecOf: this.#codecOf, claims };
  }

  #scratchFor(id: number, bytes: number): Uint8Array {
    let s = this.#scratch.get(id);
    if (!s || s.length < bytes) {
      s = new Uint8Array(bytes);
      this.#scratch.set(id, s);
    }
    return s;
  }

  #entry(spec: CodecSpec): Entry {
    const codec = codecByName(spec.name);
    return this.#entries.get(codec, codec.parseOptions(spec.options ?? {}));
  }
}

/** Where {@link BatchDecoderSet.decode} put each page of a batch. */
export interface DecodedBatch {
  /** Pages in the batch. */
  readonly count: number;
  /** Slot of page `i` in the scratch (page bytes at `slot * pageSize`), or -1 for an all-zero page. */
  readonly slotOf: Int32Array;
  /** Wire id of the codec that decoded page `i`. */
  readonly codecOf: Uint8Array;
  /** Pages that have a slot (non-zero pages). */
  readonly slots: number;
}

/**
 * Decodes one section of a batch elsewhere than its codec's own decoder
 * (the receiver's GPU), with the arguments {@link BatchDecoder.decode}
 * takes: a promise that resolves once `out` holds the section's pages, or
 * null to leave the section to the codec's decoder.
 */
export type SectionOffload = (
  codec: Codec,
  section: Uint8Array,
  pfns: Float64Array,
  which: Uint32Array,
  n: number,
  out: Uint8Array,
  batch?: DecodedPages,
) => Promise<void> | null;

interface DecodePlan {
  readonly order: number[];
  readonly bases: number[];
  readonly pages: DecodedPages;
  readonly decoded: DecodedBatch;
}

/**
 * The receiver's decoders for one channel: the codecs HELLO negotiated, a
 * decoder per CODEC frame (created at that point of the channel's stream,
 * as the sender created its encoder), and a batch decode that writes into a
 * scratch buffer only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   codecByName,
 *   codecNames,
 *   decodeCodec,
 *   encodeCodec,
 *   parseBatchPayload,
 * } from "@hakobu/hakobu";
 * import { PageBatchBuilder } from "../pipeline/page_batch.ts";
 * import { BatchDecoderSet, BatchEncoderChain } from "./batch_chain.ts";
 *
 * // The sender's side: one batch of two pages through [rle, raw].
 * const memory = new Uint8Array(2 * 4096).fill(7, 0, 4096);
 * const batch = new PageBatchBuilder({
 *   pageSize: 4096,
 *   nonZeroPages: 256,
 *   maxPages: 1024,
 * });
 * batch.addFrom(memory, 0);
 * batch.addFrom(memory, 1);
 * const chain = new BatchEncoderChain({ pageSize: 4096, pageCount: 2 });
 * chain.select([{ name: "rle" }]);
 * const { payload } = chain.encode(batch, (n) => new Uint8Array(n));
 *
 * // The receiver's side: the codecs HELLO negotiated, then the CODEC frames.
 * const negotiated = new Map(
 *   codecNames().map((n) => [codecByName(n).id, codecByName(n)]),
 * );
 * const set = new BatchDecoderSet(negotiated, {
 *   pageSize: 4096,
 *   pageCount: 2,
 * });
 * for (const { codec, options } of chain.takeNewCodecs()) {
 *   const frame = encodeCodec({ id: codec.id, name: codec.name, options });
 *   set.announce(decodeCodec(frame), 0);
 * }
 * const parsed = parseBatchPayload(payload, {
 *   pageCount: 2,
 *   knows: (id) => set.knows(id),
 * });
 * const decoded = set.decode(payload, parsed);
 * const slot = decoded.slotOf[0];
 * assert.deepEqual(
 *   set.scratch.subarray(slot * 4096, (slot + 1) * 4096),
 *   memory.subarray(0, 4096),
 * );
 * ```
 */
export class BatchDecoderSet {
  readonly #negotiated: ReadonlyMap<number, Codec>;
  readonly #geometry: {
    pageSize: number;
    pageCount: number;
    channels?: number;
    current?: (pfn: number) => Uint8Array;
  };
  readonly #decoders: (BatchDecoder | undefined)[] = [];
  readonly #hooks: BatchDecoder[] = [];
  #readsCurrent = false;
  #scratch = new Uint8Array(0);
  #slotOf = new Int32Array(0);
  #codecOf = new Uint8Array(0);
  readonly #zero: Uint8Array;

  /**
   * @param negotiated The codecs HELLO negotiated, by wire id.
   * @param geometry Page size, pfn space, channels, and the destination's
   *   current pages (for codecs that decode against them).
   */
  constructor(
    negotiated: ReadonlyMap<number, Codec>,
    geometry: {
      pageSize: number;
      pageCount: number;
      channels?: number;
      current?: (pfn: number) => Uint8Array;
    },
  ) {
    this.#negotiated = negotiated;
    this.#geometry = geometry;
    this.#zero = new Uint8Array(geometry.pageSize);
  }

  /**
   * Creates the decoder a CODEC frame announces, with its options checked
   * by the codec itself.
   *
   * @throws {WireError} for a codec HELLO did not negotiate, one announced
   *   twice, or options the codec refuses.
   */
  announce(
    setup: {
      id: number;
      name: string;
      options: Readonly<Record<string, unknown>>;
    },
    at: number,
  ): Codec {
    const codec = this.#negotiated.get(setup.id);
    if (!codec || codec.name !== setup.name) {
      throw new WireError(
        `CODEC announces codec "${setup.name}" with id ${setup.id}, which HELLO did not negotiate`,
        at,
      );
    }
    if (this.#decoders[setup.id]) {
      throw new WireError(
        `CODEC announces codec "${setup.name}" a second time`,
        at,
      );
    }
    let options: Readonly<Record<string, unknown>>;
    try {
      options = codec.parseOptions(setup.options);
    } catch (e) {
      throw new WireError(
        `CODEC announces codec "${setup.name}" with options it refuses: ${
          e instanceof Error ? e.message : String(e)
        }`,
        at,
      );
    }
    const d = codec.createBatchDecoder({
      pageSize: this.#geometry.pageSize,
      pageCount: this.#geometry.pageCount,
      channels: this.#geometry.channels,
      options,
      current: this.#geometry.current,
    });
    this.#decoders[setup.id] = d;
    if (d.applied) this.#hooks.push(d);
    if (codec.decodesAgainstCurrent) this.#readsCurrent = true;
    return codec;
  }

  /** Whether codec `id` was negotiated and announced (what a BATCH section may use). */
  knows(id: number): boolean {
    return this.#decoders[id] !== undefined;
  }

  /** Whether an announced codec decodes against the destination's current pages. */
  get readsCurrent(): boolean {
    return this.#readsCurrent;
  }

  /** The name of a negotiated codec id. */
  nameOf(id: number): string {
    return this.#negotiated.get(id)?.name ?? `id ${id}`;
  }

  /** The scratch the last {@link decode} wrote into (page `slot` at `slot * pageSize`). */
  get scratch(): Uint8Array {
    return this.#scratch;
  }

  /**
   * Hands the scratch the last {@link decode} wrote into over to the
   * caller (to keep, or transfer to another thread: no copy of the pages);
   * the next decode writes into `next` when it is large enough, else into
   * a fresh buffer. The set never touches the returned buffer again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { BatchDecoderSet } from "./batch_chain.ts";
   *
   * const set = new BatchDecoderSet(new Map(), {
   *   pageSize: 4096,
   *   pageCount: 16,
   * });
   * const taken = set.takeScratch(new Uint8Array(8192));
   * assert.equal(taken.length, 0); // nothing decoded yet
   * assert.equal(set.scratch.length, 8192); // the next decode's
   * ```
   */
  takeScratch(next?: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
    const taken = this.#scratch;
    this.#scratch = next ?? new Uint8Array(0);
    return taken;
  }

  /**
   * Decodes a validated batch: each section by its codec, into a scratch
   * owned by this set (valid until the next decode). Nothing is written
   * anywhere else, so a malformed section leaves memory untouched.
   *
   * @throws {CodecError} on a malformed section.
   */
  decode(payload: Uint8Array, parsed: ParsedBatch): DecodedBatch {
    const plan = this.#plan(parsed);
    for (const si of plan.order) {
      const step = this.#section(payload, parsed, plan, si);
      if (step) this.#decoders[step.id]!.decode(...step.args);
    }
    return plan.decoded;
  }

  /**
   * {@link decode}, with sections handed to `offload` first (the receiver's
   * GPU): where it returns a promise, that section is decoded by it into
   * the same scratch; where it returns null, by the codec's own decoder.
   * Sections run one after the other in the same order as {@link decode}
   * (those that read the batch last), so the result is the same. An
   * offloaded section that fails is decoded again by the codec's own
   * decoder, so a malformed one throws the exact {@link CodecError} the CPU
   * path throws (and when that decoder accepts it, the offload's error
   * stands if it was a `CodecError`; any other offload failure, e.g. a lost
   * device, keeps the CPU's result).
   *
   * @throws {CodecError} on a malformed section.
   */
  async decodeOffloaded(
    payload: Uint8Array,
    parsed: ParsedBatch,
    offload: SectionOffload,
  ): Promise<DecodedBatch> {
    const plan = this.#plan(parsed);
    for (const si of plan.order) {
      const step = this.#section(payload, parsed, plan, si);
      if (!step) continue;
      const decoder = this.#decoders[step.id]!;
      const job = offload(step.codec, ...step.args);
      if (!job) {
        decoder.decode(...step.args);
        continue;
      }
      try {
        await job;
      } catch (e) {
        decoder.decode(...step.args);
        if (e instanceof CodecError) throw e;
      }
    }
    return plan.decoded;
  }

  #plan(parsed: ParsedBatch): DecodePlan {
    const ps = this.#geometry.pageSize;
    const count = parsed.count;
    if (this.#slotOf.length < count) {
      this.#slotOf = new Int32Array(count);
      this.#codecOf = new Uint8Array(count);
    }
    let need = 0;
    for (const sec of parsed.sections) {
      if (!this.#negotiated.get(sec.codecId)!.zeroPages) need += sec.pageCount;
    }
    if (this.#scratch.length < need * ps) {
      this.#scratch = new Uint8Array(need * ps);
    }
    // Slots first (a page's place in the scratch), so that a decoder that
    // reads the batch's other pages (dedup) can find them.
    let base = 0;
    const bases: number[] = [];
    for (const sec of parsed.sections) {
      const codec = this.#negotiated.get(sec.codecId)!;
      bases.push(codec.zeroPages ? -1 : base);
      for (let k = 0; k < sec.pageCount; k++) {
        this.#codecOf[sec.pages[k]] = sec.codecId;
        this.#slotOf[sec.pages[k]] = codec.zeroPages ? -1 : base + k;
      }
      if (!codec.zeroPages) base += sec.pageCount;
    }
    const zero = this.#zero;
    const scratch = this.#scratch;
    const pages = {
      count,
      page: (i: number): Uint8Array => {
        const s = this.#slotOf[i];
        return s < 0 ? zero : scratch.subarray(s * ps, (s + 1) * ps);
      },
    };
    // Sections that read the batch go last.
    const order = parsed.sections.map((_, i) => i);
    order.sort((a, b) =>
      Number(!!this.#negotiated.get(parsed.sections[a].codecId)!.readsBatch) -
      Number(!!this.#negotiated.get(parsed.sections[b].codecId)!.readsBatch)
    );
    return {
      order,
      bases,
      pages,
      decoded: {
        count,
        slotOf: this.#slotOf,
        codecOf: this.#codecOf,
        slots: base,
      },
    };
  }

  /** Section `si` checked; what its decoder is called with, or null when it has no bytes to decode (zero pages). */
  #section(
    payload: Uint8Array,
    parsed: ParsedBatch,
    plan: DecodePlan,
    si: number,
  ):
    | { id: number; codec: Codec; args: Parameters<BatchDecoder["decode"]> }
    | null {
    const ps = this.#geometry.pageSize;
    const sec = parsed.sections[si];
    const codec = this.#negotiated.get(sec.codecId)!;
    const max = codec.maxSectionBytes(sec.pageCount, ps);
    if (sec.length > max) {
      throw new CodecError(
        codec.name,
        `Cannot decode a ${codec.name} section of ${sec.length} bytes: over its ${max}-byte maximum for ${sec.pageCount} pages`,
      );
    }
    if (codec.zeroPages) {
      if (sec.length !== 0) {
        throw new CodecError(
          codec.name,
          `Cannot decode a ${codec.name} section: expected no bytes, got ${sec.length}`,
        );
      }
      return null;
    }
    const b = plan.bases[si];
    return {
      id: sec.codecId,
      codec,
      args: [
        payload.subarray(sec.offset, sec.offset + sec.length),
        parsed.pfns,
        sec.pages,
        sec.pageCount,
        this.#scratch.subarray(b * ps, (b + sec.pageCount) * ps),
        plan.pages,
      ],
    };
  }

  /** Tells the decoders that keep state (dedup) every page of the batch just applied. */
  applied(
    parsed: ParsedBatch,
    decoded: DecodedBatch,
    zeroPage: Uint8Array,
  ): void {
    if (this.#hooks.length === 0) return;
    const ps = this.#geometry.pageSize;
    const scratch = this.#scratch;
    const page = (i: number): Uint8Array => {
      const s = decoded.slotOf[i];
      return s < 0 ? zeroPage : scratch.subarray(s * ps, (s + 1) * ps);
    };
    for (const d of this.#hooks) {
      d.applied!(parsed.pfns, parsed.count, page, decoded.codecOf);
    }
  }
}
