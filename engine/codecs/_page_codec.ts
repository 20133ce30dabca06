/**
 * Builds a {@link Codec} from a per-page codec (rle, delta, dedup): its
 * batch halves keep the page format inside a section (`batch.ts`), and its
 * options are checked by the same function at `compile()` and on the
 * receiver.
 *
 * @module
 */

import { CodecError } from "../errors.ts";
import {
  pageSectionBytes,
  pageSectionDecoder,
  pageSectionEncoder,
} from "./batch.ts";
import type {
  Codec,
  CodecContext,
  GpuTwin,
  PageDecoder,
  PageEncoder,
} from "./codec.ts";

/** What a per-page codec defines; {@link pageCodec} adds the batch halves. */
export interface PageCodecDef {
  readonly id: number;
  readonly name: string;
  readonly summary: string;
  readonly decodesAgainstCurrent?: boolean;
  readonly cheapZeroPages?: boolean;
  readonly gpu?: GpuTwin;
  parseOptions(
    options: Readonly<Record<string, unknown>>,
  ): Readonly<Record<string, unknown>>;
  maxEncodedBytes(pageSize: number): number;
  createEncoder(ctx: CodecContext): PageEncoder;
  createDecoder(ctx: CodecContext): PageDecoder;
}

/** The codec of a per-page definition; see the module doc. */
export function pageCodec(def: PageCodecDef): Codec {
  return {
    ...def,
    maxSectionBytes(pages: number, pageSize: number): number {
      return pageSectionBytes(pages, def.maxEncodedBytes(pageSize));
    },
    createBatchEncoder(ctx: CodecContext) {
      return pageSectionEncoder(
        def.createEncoder(ctx),
        def.maxEncodedBytes(ctx.pageSize),
      );
    },
    createBatchDecoder(ctx: CodecContext) {
      return pageSectionDecoder(
        def.name,
        def.createDecoder(ctx),
        ctx.pageSize,
        def.maxEncodedBytes(ctx.pageSize),
      );
    },
  };
}

/**
 * Options of a codec that takes none: any key is an error naming it.
 *
 * @example
 * ```ts ignore
 * noOptions("rle")({ level: 1 }); // throws: Unknown rle option "level": rle takes no options
 * ```
 */
export function noOptions(
  name: string,
): (
  options: Readonly<Record<string, unknown>>,
) => Readonly<Record<string, unknown>> {
  return (options) => {
    for (const key of Object.keys(options)) {
      throw new CodecError(
        name,
        `Unknown ${name} option "${key}": ${name} takes no options`,
      );
    }
    return {};
  };
}

/**
 * Checks that `options` has no key outside `known`, naming the first
 * unknown one and the options the codec takes.
 */
export function onlyOptions(
  name: string,
  options: Readonly<Record<string, unknown>>,
  known: readonly string[],
): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new CodecError(
        name,
        `Unknown ${name} option "${key}": ${name} takes ${
          known.map((k) => `"${k}"`).join(", ")
        }`,
      );
    }
  }
}

/** A channel's share of a codec's memory budget, in whole pages (at least one). */
export function channelShare(bytes: number, ctx: CodecContext): number {
  const channels = Math.max(1, ctx.channels ?? 1);
  return Math.max(
    ctx.pageSize,
    Math.floor(bytes / channels / ctx.pageSize) * ctx.pageSize,
  );
}
