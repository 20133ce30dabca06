import type { CodecSpec } from "../plan.ts";
import type { Codec, PageEncoder } from "./codec.ts";
import { codecByName } from "./registry.ts";
import { CodecEncoders } from "./_encoders.ts";

/** The result of encoding one page with a chain. */
export interface ChainResult {
  /** Wire id of the codec that claimed the page. */
  codecId: number;
  /** Encoded bytes written to the chain's output buffer. */
  length: number;
}

/**
 * A sender-side codec chain: the first codec that claims a page wins, per
 * page. Encoders are created once per migration and kept across rounds, so
 * a policy that changes its chain between rounds keeps each codec's state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName, EncoderChain } from "@hakobu/hakobu";
 *
 * const chain = new EncoderChain({ pageSize: 4096, pageCount: 16 });
 * chain.select([{ name: "zero" }, { name: "raw" }]);
 * const r = chain.encode(0, new Uint8Array(4096));
 * assert.deepEqual(r, { codecId: codecByName("zero").id, length: 0 });
 * const s = chain.encode(1, new Uint8Array(4096).fill(1));
 * assert.deepEqual(s, { codecId: codecByName("raw").id, length: 4096 });
 * ```
 */
export class EncoderChain {
  readonly #pageSize: number;
  readonly #pageCount: number;
  readonly #encoders: CodecEncoders<PageEncoder> = new CodecEncoders(
    (codec, options) => {
      const encoder = codec.createEncoder!({
        pageSize: this.#pageSize,
        pageCount: this.#pageCount,
        options,
      });
      if (encoder.sent) this.#stateful = true;
      return encoder;
    },
  );
  #active: { codec: Codec; encoder: PageEncoder }[] = [];
  #out: Uint8Array;
  readonly #snapshot: Uint8Array;
  /** Whether any encoder created so far keeps state across pages. */
  #stateful = false;
  #input: Uint8Array = new Uint8Array(0);
  readonly #result: ChainResult = { codecId: 0, length: 0 };

  /**
   * Creates an empty chain; {@link EncoderChain.select} chooses its codecs.
   *
   * @param geometry Page size and page count of the VM.
   */
  constructor(geometry: { pageSize: number; pageCount: number }) {
    this.#pageSize = geometry.pageSize;
    this.#pageCount = geometry.pageCount;
    this.#out = new Uint8Array(geometry.pageSize);
    this.#snapshot = new Uint8Array(geometry.pageSize);
  }

  /** The buffer the last {@link encode} wrote into; valid until the next call. */
  get output(): Uint8Array {
    return this.#out;
  }

  /**
   * The bytes the last {@link encode} read: its private copy of the page when
   * the chain is stateful, else the caller's page. Valid until the next call.
   */
  get input(): Uint8Array {
    return this.#input;
  }

  /** Codecs every chain selected so far has used (for the handshake and the report). */
  get codecs(): Codec[] {
    return [...this.#encoders.all()].map((e) => e.codec);
  }

  /**
   * Makes `specs` the active chain. A chain that does not end with a codec
   * claiming every page gets `raw` appended, so every page is always sent.
   */
  select(specs: readonly CodecSpec[]): void {
    const active: { codec: Codec; encoder: PageEncoder }[] = [];
    for (const spec of specs) active.push(this.#entry(spec));
    if (active.length === 0 || active[active.length - 1].codec.name !== "raw") {
      active.push(this.#entry({ name: "raw" }));
    }
    this.#active = active;
    let max = this.#pageSize;
    for (const e of active) {
      max = Math.max(max, e.codec.maxEncodedBytes!(this.#pageSize));
    }
    if (this.#out.length < max) this.#out = new Uint8Array(max);
  }

  /** Names of the active chain, in order. */
  get active(): string[] {
    return this.#active.map((e) => e.codec.name);
  }

  /**
   * Encodes one page with the active chain into {@link output}.
   *
   * @returns The claiming codec's id and the encoded length; the object is
   *   reused by the next call.
   */
  encode(pfn: number, page: Uint8Array): ChainResult {
    // A stateful codec (delta's cache, dedup's store) must remember exactly
    // the bytes that went on the wire. The page may be live guest memory that
    // changes under us, so encode and remember one private copy (as QEMU's
    // XBZRLE encodes from a copy). Stateless chains skip the copy: a torn
    // page is re-dirtied and sent again.
    let bytes = page;
    if (this.#stateful) {
      this.#snapshot.set(page);
      bytes = this.#snapshot;
    }
    this.#input = bytes;
    const out = this.#out;
    for (const { codec, encoder } of this.#active) {
      const n = encoder.encode(pfn, bytes, out);
      if (n >= 0) {
        this.notifySent(pfn, bytes, codec.id);
        this.#result.codecId = codec.id;
        this.#result.length = n;
        return this.#result;
      }
    }
    // select() guarantees raw ends the chain and raw claims every page.
    throw new Error(
      `No codec claimed page ${pfn}: the active chain has no final codec`,
    );
  }

  /**
   * Tells every encoder created so far that `page` went on the wire for
   * `pfn` via codec `codecId`. {@link encode} does it itself; a caller that
   * encoded a page elsewhere (the GPU path) calls it with the exact bytes
   * sent, so stateful codecs keep mirroring the receiver.
   */
  notifySent(pfn: number, page: Uint8Array, codecId: number): void {
    for (const e of this.#encoders.all()) {
      e.encoder.sent?.(pfn, page, codecId);
    }
  }

  /** The options a codec's encoder was created with, or undefined if it was not created. */
  optionsOf(name: string): Readonly<Record<string, unknown>> | undefined {
    return this.#encoders.optionsOf(name);
  }

  /**
   * Codecs whose encoders were created since the last call, with their
   * options, in creation order. The sender announces each to the receiver
   * (a CODEC frame) before the codec's first page, so the receiver creates
   * the decoder at the same point of the stream.
   */
  takeNewCodecs(): {
    codec: Codec;
    options: Readonly<Record<string, unknown>>;
  }[] {
    return this.#encoders.takeNew();
  }

  #entry(spec: CodecSpec): { codec: Codec; encoder: PageEncoder } {
    return this.#encoders.get(codecByName(spec.name), spec.options ?? {});
  }
}
