/**
 * The RECORDS payload of a stream tunnel: a hypervisor stream (QEMU's, xl's)
 * as hakobu carries it, minus the page bodies, which travel through the
 * channels. Rebuilding is concatenation: each OPAQUE or ZERO entry's bytes,
 * and for each PAGES entry its head followed by the bodies of its pfns, in
 * order, each taken from its channel (`pipeline/partition.ts`).
 *
 * ```
 * payload  u8 encoding (0 plain, 1 zstd: a piece of the session's records stream)
 *          u8 reserved 0, u16 reserved 0
 *          u32 plainBytes   bytes of the plain entries (at most MAX_RECORDS_BYTES)
 *          data             the entries, plain or compressed
 * entry    u8 kind
 *   0 OPAQUE  u32 length, bytes
 *   1 ZERO    u32 length, bytes, u32 pages      (bytes that stand for zero pages: statistics only)
 *   2 PAGES   u32 headLength, head, u32 runCount, runCount × (u32 startLo, u32 startHi, u32 length)
 * ```
 *
 * @module
 */

import { CodecError, WireError } from "../errors.ts";
import {
  zstdBound,
  ZstdCompressStream,
  ZstdDecompressStream,
} from "../codecs/_zstd_stream.ts";
import { getU64, setU64 } from "../bytes.ts";

/** Largest plain RECORDS payload (16 MiB), checked before anything is decompressed. */
export const MAX_RECORDS_BYTES = 16 << 20;
/** Longest PAGES head (64 KiB). */
export const MAX_HEAD_BYTES = 64 << 10;
/** Most pages one PAGES entry may carry. */
export const MAX_ENTRY_PAGES = 65536;

/** Entry kinds. */
export const RecordKind = { OPAQUE: 0, ZERO: 1, PAGES: 2 } as const;

const PREFIX = 8;
/** Pfns the parser allocates at once for the entries' pfns (64 KiB). */
const PFNS_BLOCK = 8192;

/**
 * Builds RECORDS payloads on the sender.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordsBuilder } from "./records.ts";
 *
 * const b = new RecordsBuilder({ compress: false });
 * b.opaque(new Uint8Array([1, 2])); // stream bytes that travel as they are
 * b.pages(new Uint8Array([9]), [7, 8]); // a head, then the bodies of 7 and 8
 * assert.equal(b.pageCount, 2);
 * const payload = b.take();
 * assert.ok(payload.length > 0);
 * assert.equal(b.pageCount, 0); // take() starts the next payload
 * ```
 */
export class RecordsBuilder {
  #buf = new Uint8Array(64 << 10);
  #view = new DataView(this.#buf.buffer);
  #end = 0;
  #pages = 0;
  #entries = 0;
  readonly #zstd: ZstdCompressStream | null;
  #out = new Uint8Array(0);

  /** @param options `compress`: zstd-compress payloads (one stream per session). */
  constructor(options: { compress: boolean }) {
    this.#zstd = options.compress ? new ZstdCompressStream(1) : null;
  }

  /** Plain bytes pending. */
  get byteLength(): number {
    return this.#end;
  }

  /** Entries pending. */
  get count(): number {
    return this.#entries;
  }

  /** Pages the pending PAGES entries carry. */
  get pageCount(): number {
    return this.#pages;
  }

  /**
   * Appends stream bytes that travel as they are. Consecutive opaque and
   * zero bytes join one entry (a QEMU stream has runs of thousands of zero
   * records), so the receiver has few entries to walk.
   */
  opaque(bytes: Uint8Array): void {
    this.#run(bytes, 0);
  }

  /** Appends stream bytes that stand for `pages` zero pages (QEMU's zero records). */
  zero(bytes: Uint8Array, pages: number): void {
    this.#run(bytes, pages);
  }

  /** Where the open run's entry starts, or -1 when the last entry is not one. */
  #runAt = -1;

  #run(bytes: Uint8Array, pages: number): void {
    if (this.#runAt < 0) {
      // A new ZERO entry (an OPAQUE one is a ZERO entry of no pages).
      this.#room(9 + bytes.length);
      this.#runAt = this.#end;
      this.#buf[this.#end] = RecordKind.ZERO;
      this.#view.setUint32(this.#end + 1, 0, true);
      this.#view.setUint32(this.#end + 5, 0, true);
      this.#end += 9;
      this.#entries++;
    } else this.#room(bytes.length);
    // The run's layout while open: kind, u32 length, u32 pages, bytes; it is
    // turned into the wire layout (bytes before pages) when it closes.
    const at = this.#runAt;
    this.#buf.set(bytes, this.#end);
    this.#end += bytes.length;
    this.#view.setUint32(
      at + 1,
      this.#view.getUint32(at + 1, true) + bytes.length,
      true,
    );
    this.#view.setUint32(
      at + 5,
      this.#view.getUint32(at + 5, true) + pages,
      true,
    );
  }

  /** Closes the open run: OPAQUE when it stands for no page, else ZERO with its count after the bytes. */
  #closeRun(): void {
    const at = this.#runAt;
    if (at < 0) return;
    this.#runAt = -1;
    const len = this.#view.getUint32(at + 1, true);
    const pages = this.#view.getUint32(at + 5, true);
    // shift the bytes 4 to the left over the pages field
    this.#buf.copyWithin(at + 5, at + 9, at + 9 + len);
    if (pages === 0) {
      this.#buf[at] = RecordKind.OPAQUE;
      this.#end -= 4;
    } else {
      this.#view.setUint32(at + 5 + len, pages, true);
    }
  }

  /** Appends a record head whose page bodies (pfns `pfns`, in order) travel through the channels. */
  pages(head: Uint8Array, pfns: ArrayLike<number>): void {
    this.#closeRun();
    let runs = 0;
    for (let i = 0; i < pfns.length; i++) {
      if (i === 0 || pfns[i] !== pfns[i - 1] + 1) runs++;
    }
    this.#room(9 + head.length + runs * 12);
    let at = this.#end;
    this.#buf[at] = RecordKind.PAGES;
    this.#view.setUint32(at + 1, head.length, true);
    this.#buf.set(head, at + 5);
    at += 5 + head.length;
    this.#view.setUint32(at, runs, true);
    at += 4;
    let i = 0;
    while (i < pfns.length) {
      const start = pfns[i];
      let n = 1;
      while (i + n < pfns.length && pfns[i + n] === start + n) n++;
      setU64(this.#view, at, start);
      this.#view.setUint32(at + 8, n, true);
      at += 12;
      i += n;
    }
    this.#end = at;
    this.#pages += pfns.length;
    this.#entries++;
  }

  /** The payload of everything pending (a new buffer); empties the builder. */
  take(): Uint8Array {
    this.#closeRun();
    const plain = this.#buf.subarray(0, this.#end);
    let out: Uint8Array;
    if (this.#zstd) {
      const need = PREFIX + zstdBound(plain.length) + 64;
      if (this.#out.length < need) this.#out = new Uint8Array(need);
      const n = this.#zstd.flush(plain, this.#out.subarray(PREFIX));
      out = this.#out.slice(0, PREFIX + n);
      out[0] = 1;
    } else {
      out = new Uint8Array(PREFIX + plain.length);
      out.set(plain, PREFIX);
    }
    new DataView(out.buffer).setUint32(4, plain.length, true);
    this.#end = 0;
    this.#pages = 0;
    this.#entries = 0;
    return out;
  }

  #room(n: number): void {
    if (this.#end + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#end + n));
    next.set(this.#buf.subarray(0, this.#end));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
}

/** One parsed entry; its bytes are its own (a view of a buffer no one reuses). */
export type RecordEntry =
  | { readonly kind: 0; readonly bytes: Uint8Array }
  | { readonly kind: 1; readonly bytes: Uint8Array; readonly pages: number }
  | {
    readonly kind: 2;
    readonly head: Uint8Array;
    /** The pfns of the page bodies that follow the head, in order. */
    readonly pfns: Float64Array;
  };

/**
 * Parses RECORDS payloads on the receiver (one per session: a compressed
 * payload continues the session's records stream).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RecordsBuilder, RecordsParser } from "./records.ts";
 *
 * const b = new RecordsBuilder({ compress: false });
 * b.pages(new Uint8Array([9]), [7, 8]);
 * const entries = new RecordsParser({ pageCount: 16 }).parse(b.take());
 * assert.equal(entries.length, 1);
 * assert.equal(entries[0].kind, 2); // a page record
 * assert.deepEqual(entries[0].kind === 2 && [...entries[0].pfns], [7, 8]);
 * ```
 */
export class RecordsParser {
  readonly #pageCount: number;
  #zstd: ZstdDecompressStream | null = null;
  /**
   * Entries' pfns are views into this, from `#pfnsUsed` on, never into a
   * part handed out before: most entries hold one pfn (QEMU's PAGE
   * records), and a typed array of its own each costs an allocation.
   */
  #pfns = new Float64Array(0);
  #pfnsUsed = 0;

  /** @param options `pageCount`: every pfn must be below it. */
  constructor(options: { pageCount: number }) {
    this.#pageCount = options.pageCount;
  }

  /**
   * Validates and splits one payload into entries.
   *
   * @throws {WireError} naming the bad field.
   */
  parse(payload: Uint8Array): RecordEntry[] {
    const fail = (what: string, at: number): never => {
      throw new WireError(`Bad RECORDS payload: ${what}`, at);
    };
    if (payload.length < PREFIX) {
      fail(
        `${payload.length} bytes is shorter than its ${PREFIX}-byte header`,
        0,
      );
    }
    const pv = new DataView(payload.buffer, payload.byteOffset, payload.length);
    const encoding = payload[0];
    if (payload[1] !== 0 || pv.getUint16(2, true) !== 0) {
      fail("reserved fields must be 0", 1);
    }
    const plainBytes = pv.getUint32(4, true);
    if (plainBytes > MAX_RECORDS_BYTES) {
      fail(
        `plainBytes "${plainBytes}" is over the ${MAX_RECORDS_BYTES}-byte limit`,
        4,
      );
    }
    const data = payload.subarray(PREFIX);
    // Entries outlive this call (they wait for their pages): a buffer of their own.
    const plain = new Uint8Array(plainBytes);
    if (encoding === 0) {
      if (data.length !== plainBytes) {
        fail(
          `plainBytes "${plainBytes}" does not match its ${data.length} bytes`,
          4,
        );
      }
      plain.set(data);
    } else if (encoding === 1) {
      this.#zstd ??= new ZstdDecompressStream();
      // an empty builder's payload: nothing went into the stream
      if (plainBytes > 0 || data.length > 0) {
        try {
          this.#zstd.exact(data, plain, `${plainBytes} bytes of records`);
        } catch (e) {
          if (!(e instanceof CodecError)) throw e;
          fail(e.message, PREFIX);
        }
      }
    } else {
      return fail(`unknown encoding "${encoding}"`, 0);
    }
    const v = new DataView(plain.buffer, plain.byteOffset, plain.length);
    const out: RecordEntry[] = [];
    let at = 0;
    const need = (n: number, what: string) => {
      if (n > plain.length - at) {
        fail(
          `${what} at offset ${at} runs past the ${plain.length} bytes of records`,
          at,
        );
      }
    };
    while (at < plain.length) {
      const kind = plain[at];
      if (kind === RecordKind.OPAQUE || kind === RecordKind.ZERO) {
        need(5, "an entry header");
        const len = v.getUint32(at + 1, true);
        need(5 + len + (kind === RecordKind.ZERO ? 4 : 0), "an entry");
        const bytes = plain.subarray(at + 5, at + 5 + len);
        if (kind === RecordKind.ZERO) {
          out.push({ kind, bytes, pages: v.getUint32(at + 5 + len, true) });
          at += 9 + len;
        } else {
          out.push({ kind, bytes });
          at += 5 + len;
        }
        continue;
      }
      if (kind !== RecordKind.PAGES) fail(`unknown entry kind "${kind}"`, at);
      need(5, "a PAGES header");
      const headLen = v.getUint32(at + 1, true);
      if (headLen > MAX_HEAD_BYTES) {
        fail(`head of ${headLen} bytes is over ${MAX_HEAD_BYTES}`, at + 1);
      }
      need(9 + headLen, "a PAGES head");
      const head = plain.subarray(at + 5, at + 5 + headLen);
      let p = at + 5 + headLen;
      const runs = v.getUint32(p, true);
      p += 4;
      if (runs * 12 > plain.length - p) {
        fail(`${runs} pfn runs at offset ${p} run past the records`, p);
      }
      let total = 0;
      for (let r = 0; r < runs; r++) total += v.getUint32(p + r * 12 + 8, true);
      if (total > MAX_ENTRY_PAGES) {
        fail(`a PAGES entry of ${total} pages is over ${MAX_ENTRY_PAGES}`, p);
      }
      if (this.#pfnsUsed + total > this.#pfns.length) {
        this.#pfns = new Float64Array(Math.max(total, PFNS_BLOCK));
        this.#pfnsUsed = 0;
      }
      const pfns = this.#pfns.subarray(this.#pfnsUsed, this.#pfnsUsed + total);
      this.#pfnsUsed += total;
      let k = 0;
      for (let r = 0; r < runs; r++, p += 12) {
        const start = getU64(v, p);
        const len = v.getUint32(p + 8, true);
        if (len === 0) fail(`empty pfn run at offset ${p}`, p);
        if (start + len > this.#pageCount) {
          fail(
            `pfn run at offset ${p} (${start}+${len}) is out of range: memory has ${this.#pageCount} pages`,
            p,
          );
        }
        for (let j = 0; j < len; j++) pfns[k++] = start + j;
      }
      out.push({ kind: RecordKind.PAGES, head, pfns });
      at = p;
    }
    return out;
  }
}
