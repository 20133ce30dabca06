/**
 * The encoders a chain has created, one per codec, for both chains (per
 * page and per batch). Each is created on first use and kept across rounds,
 * so a policy that changes its chain keeps each codec's state; that state
 * was built with the codec's first options, so they cannot change; and the
 * codecs created since the sender last looked are announced (a CODEC frame)
 * before their first page.
 *
 * @module
 */

import { CodecError } from "../errors.ts";
import type { Codec } from "./codec.ts";

/** A codec's options, as its encoder was created with them. */
export type CodecOptions = Readonly<Record<string, unknown>>;

/** One created encoder. */
export interface EncoderEntry<E> {
  readonly codec: Codec;
  readonly encoder: E;
  readonly options: CodecOptions;
}

/** A chain's created encoders, by codec name. */
export class CodecEncoders<E> {
  readonly #create: (codec: Codec, options: CodecOptions) => E;
  readonly #entries = new Map<string, EncoderEntry<E>>();
  #fresh: { codec: Codec; options: CodecOptions }[] = [];

  /** @param create Makes `codec`'s encoder with `options`. */
  constructor(create: (codec: Codec, options: CodecOptions) => E) {
    this.#create = create;
  }

  /**
   * `codec`'s encoder, created with `options` on first use.
   *
   * @throws {CodecError} when it exists with other options.
   */
  get(codec: Codec, options: CodecOptions): EncoderEntry<E> {
    let e = this.#entries.get(codec.name);
    if (!e) {
      e = { codec, encoder: this.#create(codec, options), options };
      this.#entries.set(codec.name, e);
      this.#fresh.push({ codec, options });
    } else if (JSON.stringify(e.options) !== JSON.stringify(options)) {
      // A codec's state (a cache, a store, a stream) was built with its first options.
      throw new CodecError(
        codec.name,
        `Cannot change the options of codec "${codec.name}" during a migration: ` +
          `first ${JSON.stringify(e.options)}, now ${JSON.stringify(options)}`,
      );
    }
    return e;
  }

  /** Every encoder created so far, in creation order. */
  all(): IterableIterator<EncoderEntry<E>> {
    return this.#entries.values();
  }

  /** The options codec `name`'s encoder was created with, if it was. */
  optionsOf(name: string): CodecOptions | undefined {
    return this.#entries.get(name)?.options;
  }

  /** Codecs created since the last call, with their options, in creation order. */
  takeNew(): { codec: Codec; options: CodecOptions }[] {
    const fresh = this.#fresh;
    this.#fresh = [];
    return fresh;
  }
}
