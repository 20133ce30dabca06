/**
 * The receiver's side of codec negotiation, shared by every receiver (the
 * core receiver, the QEMU tunnel and the Xen tunnel): HELLO's codec list
 * checked against the local registry, then one decoder per CODEC frame, then
 * the decoder for each page entry — each step refusing what the peer may not
 * do with an error that names it.
 *
 * @module
 */

import type { Codec, PageDecoder } from "../codecs/codec.ts";
import { codecById, codecByName, codecNames } from "../codecs/registry.ts";
import { MigrationError, WireError } from "../errors.ts";
import type { CodecRef, CodecSetup } from "./messages.ts";

/**
 * Checks HELLO's codec list against the codecs this receiver has (`local`,
 * default the registry) and returns the negotiated codecs by wire id.
 *
 * @example
 * ```ts
 * const codecs = negotiateCodecs([{ id: 0, name: "raw" }, { id: 1, name: "zero" }]);
 * codecs.get(1)?.name; // "zero"
 * ```
 *
 * @throws {MigrationError} for a codec this receiver does not know under that
 * id, or one listed twice.
 */
export function negotiateCodecs(
  refs: readonly CodecRef[],
  local?: readonly Codec[],
): Map<number, Codec> {
  const find = (id: number): Codec | undefined =>
    local ? local.find((c) => c.id === id) : codecById(id);
  const negotiated = new Map<number, Codec>();
  for (const { id, name } of refs) {
    const codec = find(id);
    if (!codec || codec.name !== name) {
      const known = (local ?? codecNames().map(codecByName))
        .map((c) => `"${c.name}" (${c.id})`).join(", ");
      throw new MigrationError(
        `Unknown codec "${name}" with id ${id}: this receiver knows ${known}` +
          (codec ? `; its id ${id} is "${codec.name}"` : ""),
      );
    }
    if (negotiated.has(id)) {
      throw new MigrationError(
        `Codec "${name}" with id ${id} is listed twice in HELLO`,
      );
    }
    negotiated.set(id, codec);
  }
  return negotiated;
}

/** What every decoder of one migration shares (see `CodecContext`). */
export interface DecoderGeometry {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Pages in the pfn space. */
  readonly pageCount: number;
  /** The page as the destination holds it now (for delta-style decoders). */
  readonly current?: (pfn: number) => Uint8Array;
}

/**
 * The negotiated codecs of one migration and the decoders CODEC frames have
 * created so far.
 *
 * @example
 * ```ts
 * const table = new DecoderTable(negotiateCodecs(hello.codecs), {
 *   pageSize: 4096,
 *   pageCount: 1024,
 * });
 * table.announce(decodeCodec(codecFrame.payload), reader.bytesRead);
 * table.decoderFor(id, pfn, reader.bytesRead).decode(pfn, body, page);
 * table.applied(pfn, page, id);
 * ```
 */
export class DecoderTable {
  readonly #negotiated: ReadonlyMap<number, Codec>;
  readonly #geometry: DecoderGeometry;
  readonly #decoders: (PageDecoder | undefined)[] = [];
  readonly #appliedHooks: PageDecoder[] = [];
  #readsCurrent = false;

  /**
   * Creates an empty table; {@link DecoderTable.announce} adds each
   * codec's decoder as its CODEC frame arrives.
   *
   * @param negotiated The codecs HELLO negotiated, by wire id.
   * @param geometry Page size, pfn space and the destination's pages.
   */
  constructor(
    negotiated: ReadonlyMap<number, Codec>,
    geometry: DecoderGeometry,
  ) {
    this.#negotiated = negotiated;
    this.#geometry = geometry;
  }

  /** The negotiated codecs by wire id (what `parsePagesPayload` checks ids against). */
  get negotiated(): ReadonlyMap<number, Codec> {
    return this.#negotiated;
  }

  /**
   * Creates the decoder a CODEC frame announces.
   *
   * @param setup The decoded CODEC frame.
   * @param at Stream offset for the error.
   * @returns The codec announced.
   * @throws {WireError} for a codec HELLO did not negotiate, or one announced twice.
   */
  announce(setup: CodecSetup, at: number): Codec {
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
    const d = codec.createDecoder!({
      pageSize: this.#geometry.pageSize,
      pageCount: this.#geometry.pageCount,
      options: setup.options,
      current: this.#geometry.current,
    });
    this.#decoders[setup.id] = d;
    if (d.applied) this.#appliedHooks.push(d);
    if (codec.decodesAgainstCurrent) this.#readsCurrent = true;
    return codec;
  }

  /**
   * Whether an announced codec decodes against the destination's current
   * pages: from then on a receiver that does not write into real memory must
   * keep each page as applied (before, no decoder can ask for one).
   */
  get readsCurrent(): boolean {
    return this.#readsCurrent;
  }

  /**
   * The decoder for a page entry's codec id.
   *
   * @throws {WireError} when no CODEC frame has announced that codec yet.
   */
  decoderFor(id: number, pfn: number, at?: number): PageDecoder {
    const d = this.#decoders[id];
    if (!d) {
      throw new WireError(
        `Page ${pfn} uses codec "${
          this.#negotiated.get(id)?.name ?? "?"
        }" (id ${id}) before its CODEC frame`,
        at,
      );
    }
    return d;
  }

  /** Tells the decoders that keep state (dedup) that `page` now holds pfn. */
  applied(pfn: number, page: Uint8Array, id: number): void {
    for (const d of this.#appliedHooks) d.applied!(pfn, page, id);
  }

  /** The name of a negotiated codec id (for statistics). */
  nameOf(id: number): string {
    return this.#negotiated.get(id)?.name ?? `id ${id}`;
  }
}
