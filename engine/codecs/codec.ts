/**
 * The codec interface. A codec is one object, like one of QEMU's multifd ops
 * tables: a wire id, a name, and factories for a sender-side encoder and a
 * receiver-side decoder. Codecs never see sockets, frames or drivers: they
 * turn one page into bytes and back, in buffers the caller owns.
 *
 * @module
 */

/** What a codec's encoder or decoder is told when it is created. */
export interface CodecContext {
  /** Page size in bytes (4096 today). */
  readonly pageSize: number;
  /** Number of pages in the VM's memory; every pfn is below it. */
  readonly pageCount: number;
  /** Codec options from the policy's codec spec. */
  readonly options: Readonly<Record<string, unknown>>;
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

/** A codec: one wire id, one name, and factories for its two halves. */
export interface Codec {
  /** Wire id (one byte), fixed forever once released. */
  readonly id: number;
  /** Registry name used in policies, e.g. `"zero"`. */
  readonly name: string;
  /** One-line description for `plan` and help output. */
  readonly summary: string;
  /**
   * Its decoder reads `CodecContext.current`: once this codec is announced,
   * a receiver must keep every page as last applied (delta). Receivers that
   * write into real memory have that anyway; tunnels keep a shadow only then.
   */
  readonly decodesAgainstCurrent?: boolean;
  /** Upper bound of one encoded page; the receiver rejects longer entries before decoding. */
  maxEncodedBytes(pageSize: number): number;
  /** Creates the sender-side state. */
  createEncoder(ctx: CodecContext): PageEncoder;
  /** Creates the receiver-side state. */
  createDecoder(ctx: CodecContext): PageDecoder;
}
