/**
 * xl's migration stream as a {@link StreamFormat}: inside xl's own framing
 * the parser finds libxc's image, whose PAGE_DATA records are page records
 * (the record header and pfn list, then the bodies of the pfns whose type
 * carries data); everything else — xl's header and config, libxl's records,
 * libxc's other records — is opaque. Rounds are counted by pfn repetition
 * (`engine/xen/rounds.ts`). xl talks with its receiving side between
 * messages, so the format is interactive: nothing is held back.
 *
 * @module
 */

import { PAGE_SIZE } from "../plan.ts";
import { RoundCounter } from "../xen/rounds.ts";
import { XenStreamError } from "../xen/stream/errors.ts";
import { pfnTypeHasData } from "../xen/stream/format.ts";
import { XenStreamParser } from "../xen/stream/parser.ts";
import type { StreamEvent, StreamFormat, StreamParser } from "./format.ts";

/** Default bound on the pfn space: 2^24 pages (64 GiB of pfns, holes included). */
export const DEFAULT_MAX_PAGES = 1 << 24;

class XenParser implements StreamParser {
  readonly #p = new XenStreamParser({ scan: true });
  readonly #rounds = new RoundCounter();
  readonly #maxPages: number;
  sawImage = false;

  constructor(maxPages: number) {
    this.#maxPages = maxPages;
  }

  push(chunk: Uint8Array): StreamEvent[] {
    const out: StreamEvent[] = [];
    for (const e of this.#p.push(chunk)) {
      if (e.kind === "header") {
        this.sawImage = true;
        if (e.header.pageShift !== 12) {
          throw new XenStreamError(
            `Unsupported page shift "${e.header.pageShift}": the tunnel carries 4 KiB pages`,
            e.offset,
          );
        }
      }
      if (e.kind !== "pages") {
        out.push({ kind: "opaque", bytes: e.bytes });
        continue;
      }
      const pfns: number[] = [];
      for (let i = 0; i < e.count; i++) {
        if (!pfnTypeHasData(e.type[i])) continue;
        if (e.pfn[i] >= this.#maxPages) {
          throw new XenStreamError(
            `PAGE_DATA at offset ${e.offset}: pfn "${
              e.pfn[i]
            }" is above the tunnel's bound of ${this.#maxPages} pages: raise --max-pages`,
            e.offset,
          );
        }
        pfns.push(e.pfn[i]);
      }
      out.push({
        kind: "pages",
        head: e.bytes.subarray(0, e.headerLength),
        pfns,
        data: e.bytes.subarray(
          e.headerLength,
          e.headerLength + pfns.length * PAGE_SIZE,
        ),
      });
    }
    return out;
  }

  finish(): StreamEvent[] {
    return this.#p.finish().map((e) => ({ kind: "opaque", bytes: e.bytes }));
  }

  readonly ready = true;

  get pageCount(): number {
    return this.#maxPages;
  }

  readonly tail = false;
  readonly fallbackReason = null;

  newRound(pfns: ArrayLike<number>): boolean {
    return this.#rounds.record(pfns);
  }

  readonly description = "xl migrate stream";
}

/**
 * The Xen (xl) stream format; `maxPages` bounds the pfn space (HELLO's
 * memory size is `maxPages × 4096`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xenFormat } from "@hakobu/hakobu";
 *
 * // 64 GiB of pfns by default:
 * assert.equal(xenFormat().createParser().pageCount, 16_777_216);
 * assert.equal(xenFormat(1024).createParser().pageCount, 1024);
 * ```
 */
export function xenFormat(maxPages: number = DEFAULT_MAX_PAGES): StreamFormat {
  return {
    name: "xen",
    interactive: true,
    createParser: () => new XenParser(maxPages),
  };
}
