/**
 * A hypervisor's migration stream as the stream tunnel sees it: a parser
 * that turns the stream into opaque bytes and page records (a head, then
 * the bodies of some pfns), so that only the page bodies go through the
 * codecs, and everything else travels as it is. Rebuilding is
 * concatenation, so correctness never depends on parsing well: a part the
 * parser does not recognise is opaque.
 *
 * QEMU's stream (`qemu_format.ts`) and xl's (`xen_format.ts`) are the two
 * formats; the tunnel (`send.ts`, `receive_mode.ts`) is written once.
 *
 * @module
 */

/** What a {@link StreamParser} yields; views are valid until the next push. */
export type StreamEvent =
  | {
    /** Stream bytes that travel as they are. */
    readonly kind: "opaque";
    readonly bytes: Uint8Array;
  }
  | {
    /** Stream bytes that stand for `pages` zero pages (counted, not encoded). */
    readonly kind: "zero";
    readonly bytes: Uint8Array;
    readonly pages: number;
  }
  | {
    /** A page record: `head`, then the page bodies of `pfns`, in order. */
    readonly kind: "pages";
    readonly head: Uint8Array;
    readonly pfns: ArrayLike<number>;
    /** The bodies, one after the other, `pfns.length × 4096` bytes. */
    readonly data: Uint8Array;
  };

/** A format's parser over one stream. */
export interface StreamParser {
  /**
   * Parses `chunk` and returns the events now complete.
   *
   * @throws when the stream is not of this format.
   */
  push(chunk: Uint8Array): StreamEvent[];
  /**
   * The stream ended: returns the events of bytes that waited for it.
   *
   * @throws when it ended inside an item (truncated).
   */
  finish(): StreamEvent[];
  /** Whether enough was read to say HELLO (the pfn space is known). */
  readonly ready: boolean;
  /** Pages of the pfn space (HELLO's memory size). */
  readonly pageCount: number;
  /**
   * Every later byte is opaque state after the memory (QEMU's device
   * state): the tunnel holds it back and sends it last, so a cut stream
   * never reaches the destination with its end.
   */
  readonly tail: boolean;
  /** Why the parser gave up parsing early (everything after went opaque), or null. */
  readonly fallbackReason: string | null;
  /** Whether `pfns` (a page record) starts a new round. */
  newRound(pfns: ArrayLike<number>): boolean;
  /** The stream in words, for the receiver's logs. */
  readonly description: string;
}

/** A stream format. */
export interface StreamFormat {
  /** `"qemu"` or `"xen"`. */
  readonly name: string;
  /** A parser for one stream. */
  createParser(): StreamParser;
  /**
   * Whether each read's bytes must leave at once (xl waits for answers
   * between its messages, so nothing may be held back for batching).
   */
  readonly interactive: boolean;
}
