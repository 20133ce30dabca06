/**
 * QEMU's migration stream as a {@link StreamFormat}: PAGE records (a header,
 * then one 4096-byte body) are page records, ZERO records are counted zero
 * pages that travel as they are, and everything else — the file header,
 * section headers, the RAM setup, device state — is opaque. The pfn space
 * comes from the RAM setup; a round starts when a page's pfn is not above
 * the previous one (QEMU walks RAM upwards in each pass). After RAM, the
 * device state is the tail (`docs/qemu-stream.md`).
 *
 * @module
 */

import { QemuStreamParser } from "../qemu/stream/parser.ts";
import type { StreamEvent, StreamFormat, StreamParser } from "./format.ts";

class QemuParser implements StreamParser {
  // ZERO records come as runs: one event per run, not per 9-byte record.
  readonly #p = new QemuStreamParser({ zeroRuns: true });
  #lastPfn = -1;
  readonly #pfn = [0];

  push(chunk: Uint8Array): StreamEvent[] {
    const out: StreamEvent[] = [];
    // Consecutive ZERO records (most of a guest's first pass) lie back to
    // back in one buffer: they go as one zero event, not one per page (the
    // parser's runs stop where a push's bytes do, or at a record that
    // names its block; adjacent runs join here).
    let run: Uint8Array | null = null;
    let runEnd = 0;
    let runPages = 0;
    const closeRun = () => {
      if (!run) return;
      out.push({
        kind: "zero",
        bytes: new Uint8Array(
          run.buffer,
          run.byteOffset,
          runEnd - run.byteOffset,
        ),
        pages: runPages,
      });
      run = null;
    };
    for (const e of this.#p.push(chunk)) {
      if (e.kind === "zeroRun" || (e.kind === "page" && e.zero)) {
        const b = e.bytes;
        const pages = e.kind === "zeroRun" ? e.pages : 1;
        if (run && b.buffer === run.buffer && b.byteOffset === runEnd) {
          runEnd += b.length;
          runPages += pages;
        } else {
          closeRun();
          run = b;
          runEnd = b.byteOffset + b.length;
          runPages = pages;
        }
        continue;
      }
      closeRun();
      if (e.kind !== "page") {
        out.push({ kind: "opaque", bytes: e.bytes });
      } else {
        out.push({
          kind: "pages",
          head: e.bytes.subarray(0, e.headerLength),
          pfns: [e.pfn],
          data: e.data,
        });
      }
    }
    closeRun();
    return out;
  }

  finish(): StreamEvent[] {
    this.#p.finish();
    return [];
  }

  get ready(): boolean {
    return this.#p.pageCount > 0 || this.#p.tail;
  }

  get pageCount(): number {
    return Math.max(1, this.#p.pageCount);
  }

  get tail(): boolean {
    return this.#p.tail;
  }

  get fallbackReason(): string | null {
    return this.#p.fallbackReason;
  }

  newRound(pfns: ArrayLike<number>): boolean {
    const pfn = pfns[0];
    const next = this.#lastPfn >= 0 && pfn <= this.#lastPfn;
    this.#pfn[0] = pfn;
    this.#lastPfn = pfn;
    return next;
  }

  get description(): string {
    return `qemu stream: ${this.#p.blocks.map((b) => b.id).join(", ")}`
      .slice(0, 4000);
  }
}

/**
 * The QEMU stream format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuFormat } from "@hakobu/hakobu";
 *
 * const gz = await Deno.open(
 *   new URL(
 *     "../qemu/stream/testdata/firmware-pc-64m.stream.gz",
 *     import.meta.url,
 *   ),
 * );
 * const stream = await new Response(
 *   gz.readable.pipeThrough(new DecompressionStream("gzip")),
 * ).bytes();
 * const parser = qemuFormat.createParser();
 * assert.equal(parser.ready, false); // until the RAM setup was read
 * parser.push(stream.subarray(0, 64 << 10));
 * assert.equal(parser.ready, true);
 * assert.equal(parser.pageCount, 16514); // 64 MiB of RAM, plus ROMs
 * ```
 */
export const qemuFormat: StreamFormat = {
  name: "qemu",
  interactive: false,
  createParser: () => new QemuParser(),
};
