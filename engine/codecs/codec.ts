/**
 * The codec interface. A codec is one object, like one of QEMU's multifd ops
 * tables: a wire id, a name, its options' parser, and factories for a
 * sender-side encoder and a receiver-side decoder that work on batches of
 * pages (`batch.ts`). Codecs never see sockets, frames or drivers: they turn
 * pages into a section of bytes and back, in buffers the caller owns.
 *
 * Adding a codec is its file, its test, its doc (`docs/codecs/`) and one line
 * in `registry.ts`.
 *
 * @module
 */

import type { BatchDecoder, BatchEncoder } from "./batch.ts";

/** What a codec's encoder or decoder is told when it is created. */
export interface CodecContext {
  /** Page size in bytes (4096 today). */
  readonly pageSize: number;
  /** Number of pages in the VM's memory; every pfn is below it. */
  readonly pageCount: number;
  /** Codec options from the policy's codec spec, as {@link Codec.parseOptions} returned them. */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * Channels of the migration (default 1). Each channel has its own encoder
   * and decoder over its own share of the pfns; a codec with a memory budget
   * (delta's cache, dedup's store) gives each channel `1/channels` of it.
   */
  readonly channels?: number;
  /**
   * Receiver side only: the page as destination memory holds it now, i.e.
   * the version last applied (all zero before any). A view: read it, never
   * keep or write it. Delta codecs decode against it, as QEMU's XBZRLE
   * decodes against the destination's RAM.
   */
  readonly current?: (pfn: number) => Uint8Array;
}

/** The sender's half of a codec. One per migration; may keep state across pages and rounds. */
export interface PageEncoder {
  /**
   * Encodes one page into `out`.
   *
   * @param pfn Page frame number of the page.
   * @param page Exactly `pageSize` bytes (may be a view into guest memory: never write to it).
   * @param out Scratch buffer of at least `maxEncodedBytes(pageSize)` bytes.
   * @returns Bytes written to `out`, or -1 when this codec does not claim the page
   *   (the next codec of the chain then gets it).
   */
  encode(pfn: number, page: Uint8Array, out: Uint8Array): number;
  /**
   * Told about every page the sender put on the wire, whichever codec of the
   * chain claimed it, so that a stateful encoder mirrors what the receiver holds.
   */
  sent?(pfn: number, page: Uint8Array, codecId: number): void;
}

/** The receiver's half of a codec. One per migration; mirrors its encoder's state. */
export interface PageDecoder {
  /**
   * Decodes one encoded page into `page`.
   *
   * Must check every length and offset before writing, and throw
   * {@link CodecError} on malformed input. It writes only into `page` (a
   * scratch buffer), never into guest memory.
   *
   * @param pfn Page frame number of the page.
   * @param input The encoded bytes.
   * @param page Exactly `pageSize` bytes to fill completely.
   */
  decode(pfn: number, input: Uint8Array, page: Uint8Array): void;
  /** Told about every page applied to memory, whichever codec decoded it. */
  applied?(pfn: number, page: Uint8Array, codecId: number): void;
}

/**
 * Which GPU kernel encodes this codec's pages byte-identically on WebGPU
 * (`engine/gpu/`): a codec that declares one can run on the GPU when the
 * plan's `gpu()` settings find an adapter.
 */
export type GpuTwin = "zero" | "rle" | "delta";

/** A codec: one wire id, one name, its options' parser, and factories for its two halves. */
export interface Codec {
  /** Wire id (one byte), fixed forever once released. */
  readonly id: number;
  /** Registry name used in policies, e.g. `"zero"`. */
  readonly name: string;
  /** One-line description for `plan` and help output. */
  readonly summary: string;
  /**
   * Checks a policy's options for this codec and returns them with defaults
   * filled in; throws a {@link CodecError} that names the option and what it
   * accepts. `compile()` calls it, so a bad option fails there, not after
   * the handshake; the receiver calls it on every CODEC frame.
   */
  parseOptions(
    options: Readonly<Record<string, unknown>>,
  ): Readonly<Record<string, unknown>>;
  /**
   * Most bytes one channel's decoder may hold for these options (parsed by
   * {@link parseOptions}) — a dedup store, a zstd window — so that a
   * receiver counts what a peer's CODEC frame makes it allocate against its
   * limits before it allocates. Absent: the decoder holds a few pages at
   * most.
   */
  decoderStateBytes?(
    options: Readonly<Record<string, unknown>>,
    ctx: Pick<CodecContext, "pageSize" | "pageCount" | "channels">,
  ): number;
  /**
   * Its decoder reads `CodecContext.current`: once this codec is announced,
   * a receiver must keep every page as last applied (delta). Receivers that
   * write into real memory have that anyway; tunnels keep a shadow only then.
   */
  readonly decodesAgainstCurrent?: boolean;
  /**
   * Its encoder and decoder keep state that the batch's own earlier pages
   * update, whichever codec carries them (dedup refers to chunks sent a few
   * pages before): the receiver decodes its section after every other
   * section of the batch (`batch.ts`).
   */
  readonly readsBatch?: boolean;
  /**
   * It claims only all-zero pages and its section is empty: a receiver
   * writes (or skips) zero pages itself, with no decode and no scratch.
   */
  readonly zeroPages?: boolean;
  /**
   * It encodes an all-zero page in a few bytes, so a batch may carry many
   * zero pages for little: a chain with such a codec fills batches by their
   * non-zero pages; one without (raw alone) counts every page.
   */
  readonly cheapZeroPages?: boolean;
  /** Its WebGPU twin, when it has one. */
  readonly gpu?: GpuTwin;
  /** Upper bound of its section for `pages` offered pages; a receiver rejects longer sections. */
  maxSectionBytes(pages: number, pageSize: number): number;
  /** Creates the sender-side state of one channel. */
  createBatchEncoder(ctx: CodecContext): BatchEncoder;
  /** Creates the receiver-side state of one channel. */
  createBatchDecoder(ctx: CodecContext): BatchDecoder;
  /** Upper bound of one page encoded alone (codecs with a per-page form). */
  maxEncodedBytes?(pageSize: number): number;
  /** The per-page form of the encoder (codecs with one; GPU twins and tests use it). */
  createEncoder?(ctx: CodecContext): PageEncoder;
  /** The per-page form of the decoder (codecs with one). */
  createDecoder?(ctx: CodecContext): PageDecoder;
}
