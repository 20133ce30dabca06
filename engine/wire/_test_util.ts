/** Test helpers shared by the wire tests (not exported from mod.ts). */

import fc from "fast-check";
import { WireError } from "../errors.ts";
import { BatchEncoderChain } from "../codecs/batch_chain.ts";
import { PageBatchBuilder } from "../pipeline/page_batch.ts";
import { batchPayloadBytes, encodeBatchPayload } from "./batch.ts";

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes from hex, whitespace ignored. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** A deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A stream handing `bytes` over in chunks whose sizes come from `size`
 * (called once per chunk). When `failAfter` is set, pulling past the data
 * errors the stream instead of ending it (to prove nothing more was read).
 */
export function chunkedStream(
  bytes: Uint8Array,
  size: () => number,
  options: { failAfter?: boolean } = {},
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) {
        if (options.failAfter) {
          controller.error(new Error("read past the end of the test data"));
        } else controller.close();
        return;
      }
      const n = Math.max(1, Math.min(size(), bytes.length - at));
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  }, { highWaterMark: 0 });
}

/**
 * `bytes` as a byte stream (`type: "bytes"`, as a socket's readable), giving
 * at most `size()` bytes per pull, into the reader's own buffer when it
 * brings one (BYOB).
 */
export function byteStream(
  bytes: Uint8Array,
  size: () => number,
): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      if (at >= bytes.length) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const request = controller.byobRequest;
      const room = request?.view ? request.view.byteLength : Infinity;
      const n = Math.max(1, Math.min(size(), bytes.length - at, room));
      if (request?.view) {
        new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        ).set(bytes.subarray(at, at + n));
        request.respond(n);
      } else {
        controller.enqueue(bytes.slice(at, at + n));
      }
      at += n;
    },
  });
}

/**
 * The pages behind the first golden BATCH payload (`_golden.ts`), as a
 * zero → rle chain encodes them: pfns 5, 6 and 10 of 11 all zero, pfn 9 the
 * word `11 22 33 44` over and over.
 */
export function encodeGoldenBatchPages(): Uint8Array {
  const memory = new Uint8Array(11 * 4096);
  for (let i = 9 * 4096; i < 10 * 4096; i += 4) {
    memory.set([0x11, 0x22, 0x33, 0x44], i);
  }
  const batch = new PageBatchBuilder({
    pageSize: 4096,
    nonZeroPages: 16,
    maxPages: 16,
  });
  for (const pfn of [5, 6, 9, 10]) batch.addFrom(memory, pfn);
  const chain = new BatchEncoderChain({ pageSize: 4096, pageCount: 11 });
  chain.select([{ name: "zero" }, { name: "rle" }]);
  return chain.encode(batch, (n) => new Uint8Array(n)).payload;
}

/**
 * The second golden BATCH payload (`_golden.ts`) as the encoder writes it:
 * 200 zero pages from pfn 2^32 + 3, one `zero` section.
 */
export function encodeGoldenHighBatch(): Uint8Array {
  const base = 2 ** 32 + 3;
  const parts = {
    count: 200,
    pfns: Array.from({ length: 200 }, (_, i) => base + i),
    sectionOf: new Uint8Array(200),
    sections: [{ codecId: 1, bytes: new Uint8Array(0) }],
  };
  const out = new Uint8Array(batchPayloadBytes(parts));
  encodeBatchPayload(parts, out);
  return out;
}

/** Options of {@link assertParsesOrWireError}. */
export interface CorruptionRuns {
  /** Every `cutEvery`-th corrupted copy is also cut short. */
  readonly cutEvery: number;
  /** Corrupted copies of the samples to try. */
  readonly runs: number;
  /** Random inputs to try, of at most `randomBytes` bytes. */
  readonly randomRuns: number;
  readonly randomBytes: number;
}

/**
 * A decoder's fuzz test: `parse` on copies of `samples` with one to four
 * bytes replaced (some also cut short), then on random bytes, returns or
 * throws a {@link WireError}, nothing else. `parse` may assert what it
 * got is self-consistent.
 */
export function assertParsesOrWireError(
  samples: readonly Uint8Array[],
  parse: (input: Uint8Array) => void,
  options: CorruptionRuns,
): void {
  const tolerant = (input: Uint8Array): void => {
    try {
      parse(input);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
    }
  };
  fc.assert(
    fc.property(
      fc.nat(samples.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
      fc.nat(),
      (which, flips, cut) => {
        const b = samples[which].slice();
        for (const [at, v] of flips) b[at % b.length] = v;
        tolerant(
          cut % options.cutEvery === 0 ? b.subarray(0, cut % b.length) : b,
        );
      },
    ),
    { numRuns: options.runs },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: options.randomBytes }), tolerant),
    { numRuns: options.randomRuns },
  );
}
