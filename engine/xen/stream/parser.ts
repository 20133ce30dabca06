/**
 * An incremental parser of the libxc migration stream (v2 and v3): push
 * bytes as they arrive, get events — the image and domain headers, each
 * record (PAGE_DATA parsed into pfns, types and page data; every other
 * record as opaque bytes), END — with every bound checked before a record
 * is buffered. In `scan` mode bytes before the image header (xl's and
 * libxl's own framing) and after END travel as opaque events.
 *
 * @module
 */

import { XenStreamError } from "./errors.ts";
import {
  align8,
  DHDR_BYTES,
  IHDR_BYTES,
  IHDR_ID,
  IHDR_OPT_BIG_ENDIAN,
  IMAGE_MAGIC,
  MAX_BATCH_SIZE,
  pfnTypeHasData,
  pfnTypeValid,
  REC_LENGTH_MAX,
  RecType,
  recTypeName,
  RHDR_BYTES,
} from "./format.ts";
import { TWO_32 } from "../../bytes.ts";

/** The image header and domain header fields. */
export interface ImageHeader {
  /** Stream version: 2 or 3. */
  readonly version: number;
  /** Image header options (bit 0: big-endian). */
  readonly options: number;
  /** The two reserved image-header fields, kept for byte-identical rebuilds. */
  readonly ihdrReserved: readonly [number, number];
  /** Domain type (1 PV, 2 HVM, 3 PVH, 4 ARM). */
  readonly domainType: number;
  /** log2 of the page size (12 on x86). */
  readonly pageShift: number;
  /** Reserved domain-header field. */
  readonly dhdrReserved: number;
  /** Xen major version of the source. */
  readonly xenMajor: number;
  /** Xen minor version of the source. */
  readonly xenMinor: number;
}

/** Bytes of the stream outside the libxc image (scan mode only), as they came. */
export interface OpaqueEvent {
  /** Discriminant. */
  readonly kind: "opaque";
  /** Stream offset of the first byte. */
  readonly offset: number;
  /** The bytes, as they came. */
  readonly bytes: Uint8Array;
}

/** The image header and domain header (40 bytes). */
export interface HeaderEvent {
  /** Discriminant. */
  readonly kind: "header";
  /** Stream offset of the first byte. */
  readonly offset: number;
  /** The 40 header bytes. */
  readonly bytes: Uint8Array;
  /** The decoded fields. */
  readonly header: ImageHeader;
}

/** A record other than PAGE_DATA and END, whole (header, body, padding). */
export interface RecordEvent {
  /** Discriminant. */
  readonly kind: "record";
  /** Stream offset of the first byte. */
  readonly offset: number;
  /** Record type (bit 31: optional). */
  readonly type: number;
  /** The whole record: header, body and padding. */
  readonly bytes: Uint8Array;
  /** The body (without padding). */
  readonly body: Uint8Array;
}

/** A PAGE_DATA record, parsed. */
export interface PagesEvent {
  /** Discriminant. */
  readonly kind: "pages";
  /** Stream offset of the first byte. */
  readonly offset: number;
  /** The whole record. */
  readonly bytes: Uint8Array;
  /** Bytes before the first page: record header, count, reserved, pfn list. */
  readonly headerLength: number;
  /** Entries in the record (1..1024). */
  readonly count: number;
  /** Pfn of each entry (bits 51..0). */
  readonly pfn: Float64Array;
  /** Pfn type of each entry (bits 63..60). */
  readonly type: Uint8Array;
  /** Entries whose type carries data; their pages follow `headerLength` in entry order. */
  readonly dataPages: number;
  /** Page size from the domain header. */
  readonly pageSize: number;
}

/** The END record. */
export interface EndEvent {
  /** Discriminant. */
  readonly kind: "end";
  /** Stream offset of the first byte. */
  readonly offset: number;
  /** The whole END record (its 8-byte header). */
  readonly bytes: Uint8Array;
}

/** What {@link XenStreamParser.push} yields; views are valid until the next push. */
export type XenEvent =
  | OpaqueEvent
  | HeaderEvent
  | RecordEvent
  | PagesEvent
  | EndEvent;

/** Options of {@link XenStreamParser}. */
export interface XenStreamParserOptions {
  /**
   * Look for the image header anywhere and pass bytes before it and after
   * END as {@link OpaqueEvent}s (xl's stream wraps the libxc image). When
   * false (default) the stream must start with the image header and end
   * with END.
   */
  readonly scan?: boolean;
}

const enum State {
  Scan,
  Header,
  Records,
  Suffix,
  Done,
}

/**
 * Incremental libxc stream parser.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   DomainType,
 *   encodeImageHeader,
 *   encodePageData,
 *   encodeRecord,
 *   RecType,
 *   XenStreamParser,
 * } from "@hakobu/hakobu";
 *
 * const image = new Uint8Array([
 *   ...encodeImageHeader({
 *     version: 3,
 *     options: 0,
 *     ihdrReserved: [0, 0],
 *     domainType: DomainType.X86_PVH,
 *     pageShift: 12,
 *     dhdrReserved: 0,
 *     xenMajor: 4,
 *     xenMinor: 17,
 *   }),
 *   ...encodePageData({
 *     kind: "page_data",
 *     reserved: 0,
 *     entries: [{ pfn: 5, type: 0 }, { pfn: 6, type: 0 }],
 *     pages: [new Uint8Array(4096), new Uint8Array(4096)],
 *   }),
 *   ...encodeRecord(RecType.END, new Uint8Array(0)),
 * ]);
 * // scan: the image may sit inside xl's stream, whose other bytes are opaque.
 * const p = new XenStreamParser({ scan: true });
 * const counts: number[] = [];
 * for (let at = 0; at < image.length; at += 1000) { // chunks of any size
 *   for (const e of p.push(image.subarray(at, at + 1000))) {
 *     if (e.kind === "pages") counts.push(e.count);
 *   }
 * }
 * p.finish();
 * assert.deepEqual(counts, [2]);
 * ```
 */
export class XenStreamParser {
  readonly #scan: boolean;
  #state: State;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  /** Stream offset of `#buf[0]`. */
  #base = 0;
  #le = true;
  #pageSize = 4096;
  #header: ImageHeader | null = null;

  /**
   * Creates a parser that expects the image header first (or, in `scan`
   * mode, looks for it).
   *
   * @param options See {@link XenStreamParserOptions}.
   */
  constructor(options: XenStreamParserOptions = {}) {
    this.#scan = options.scan ?? false;
    this.#state = this.#scan ? State.Scan : State.Header;
  }

  /** The image header once parsed. */
  get header(): ImageHeader | null {
    return this.#header;
  }

  /** Whether END was parsed. */
  get ended(): boolean {
    return this.#state === State.Suffix || this.#state === State.Done;
  }

  /** Stream bytes pushed so far. */
  get offset(): number {
    return this.#base + this.#end;
  }

  /**
   * Adds bytes and returns the events they complete.
   *
   * @throws {XenStreamError} on a malformed stream, with its offset.
   */
  push(chunk: Uint8Array): XenEvent[] {
    this.#append(chunk);
    const events: XenEvent[] = [];
    for (;;) {
      const e = this.#next();
      if (e === null) break;
      events.push(e);
    }
    return events;
  }

  /**
   * Ends the stream: returns the last opaque bytes (scan mode).
   *
   * @throws {XenStreamError} when the stream ends inside the image or before END.
   */
  finish(): XenEvent[] {
    const rest = this.#end - this.#start;
    const at = this.#base + this.#start;
    if (this.#state === State.Scan || this.#state === State.Suffix) {
      if (rest === 0) return [];
      const bytes = this.#buf.subarray(this.#start, this.#end);
      this.#start = this.#end;
      return [{ kind: "opaque", offset: at, bytes }];
    }
    if (this.#state === State.Done) return [];
    if (this.#state === State.Header) {
      throw new XenStreamError(
        `Truncated stream: ended after ${rest} of ${
          IHDR_BYTES + DHDR_BYTES
        } header bytes at offset ${at}`,
        at + rest,
      );
    }
    if (rest > 0) {
      throw new XenStreamError(
        `Truncated stream: ended inside the record at offset ${at} (${rest} bytes of it present)`,
        at + rest,
      );
    }
    throw new XenStreamError(
      `Truncated stream: ended at offset ${at} before the END record`,
      at,
    );
  }

  #append(chunk: Uint8Array): void {
    if (this.#start === this.#end) {
      this.#base += this.#end;
      this.#start = this.#end = 0;
    }
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const need = live + chunk.length;
      const buf = need > this.#buf.length
        ? new Uint8Array(Math.max(need, this.#buf.length * 2))
        : this.#buf;
      if (buf === this.#buf) buf.copyWithin(0, this.#start, this.#end);
      else buf.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = buf;
      this.#base += this.#start;
      this.#end = live;
      this.#start = 0;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  #err(message: string, at: number): never {
    throw new XenStreamError(message, this.#base + at);
  }

  #next(): XenEvent | null {
    switch (this.#state) {
      case State.Scan:
        return this.#scanNext();
      case State.Header:
        return this.#headerNext();
      case State.Records:
        return this.#recordNext();
      case State.Suffix: {
        if (this.#start === this.#end) return null;
        const e: OpaqueEvent = {
          kind: "opaque",
          offset: this.#base + this.#start,
          bytes: this.#buf.subarray(this.#start, this.#end),
        };
        this.#start = this.#end;
        return e;
      }
      case State.Done:
        if (this.#start < this.#end) {
          this.#err(
            `Trailing bytes after the END record at offset ${
              this.#base + this.#start
            }`,
            this.#start,
          );
        }
        return null;
    }
  }

  #scanNext(): OpaqueEvent | null {
    const buf = this.#buf;
    const from = this.#start;
    const end = this.#end;
    let found = -1;
    for (let i = from + 8; i + 4 <= end; i++) {
      i = buf.indexOf(0x58, i);
      if (i < 0 || i + 4 > end) break;
      if (buf[i + 1] !== 0x45 || buf[i + 2] !== 0x4e || buf[i + 3] !== 0x46) {
        continue;
      }
      let ff = true;
      for (let k = i - 8; k < i; k++) {
        if (buf[k] !== 0xff) {
          ff = false;
          break;
        }
      }
      if (ff) {
        found = i - 8;
        break;
      }
    }
    if (found >= 0) {
      this.#state = State.Header;
      if (found === from) return this.#headerNext() as OpaqueEvent | null;
      this.#start = found;
      return {
        kind: "opaque",
        offset: this.#base + from,
        bytes: buf.subarray(from, found),
      };
    }
    // Hold back what could be the start of a split magic.
    const keep = Math.min(end - from, IMAGE_MAGIC.length - 1);
    const upto = end - keep;
    if (upto <= from) return null;
    this.#start = upto;
    return {
      kind: "opaque",
      offset: this.#base + from,
      bytes: buf.subarray(from, upto),
    };
  }

  #headerNext(): XenEvent | null {
    const need = IHDR_BYTES + DHDR_BYTES;
    const s = this.#start;
    if (this.#end - s < need) return null;
    const buf = this.#buf;
    const v = new DataView(buf.buffer, buf.byteOffset + s, need);
    for (let k = 0; k < 8; k++) {
      if (buf[s + k] !== 0xff) {
        this.#err(
          `Bad image header marker at offset ${
            this.#base + s
          }: expected 0xFFFFFFFFFFFFFFFF`,
          s + k,
        );
      }
    }
    if (v.getUint32(8) !== IHDR_ID) {
      this.#err(
        `Bad image id "0x${v.getUint32(8).toString(16)}" at offset ${
          this.#base + s + 8
        }: expected "XENF" (0x58454e46)`,
        s + 8,
      );
    }
    const version = v.getUint32(12);
    if (version !== 2 && version !== 3) {
      this.#err(
        `Unsupported stream version "${version}" at offset ${
          this.#base + s + 12
        }: expected 2 or 3`,
        s + 12,
      );
    }
    const options = v.getUint16(16);
    const le = (options & IHDR_OPT_BIG_ENDIAN) === 0;
    this.#le = le;
    const pageShift = v.getUint16(IHDR_BYTES + 4, le);
    if (pageShift < 12 || pageShift > 21) {
      this.#err(
        `Bad page shift "${pageShift}" at offset ${
          this.#base + s + IHDR_BYTES + 4
        }: expected 12..21`,
        s + IHDR_BYTES + 4,
      );
    }
    this.#pageSize = 2 ** pageShift;
    const header: ImageHeader = {
      version,
      options,
      ihdrReserved: [v.getUint16(18), v.getUint32(20)],
      domainType: v.getUint32(IHDR_BYTES, le),
      pageShift,
      dhdrReserved: v.getUint16(IHDR_BYTES + 6, le),
      xenMajor: v.getUint32(IHDR_BYTES + 8, le),
      xenMinor: v.getUint32(IHDR_BYTES + 12, le),
    };
    this.#header = header;
    this.#start = s + need;
    this.#state = State.Records;
    return {
      kind: "header",
      offset: this.#base + s,
      bytes: buf.subarray(s, s + need),
      header,
    };
  }

  #recordNext(): XenEvent | null {
    const s = this.#start;
    const avail = this.#end - s;
    if (avail < RHDR_BYTES) return null;
    const buf = this.#buf;
    const le = this.#le;
    const hv = new DataView(buf.buffer, buf.byteOffset + s, RHDR_BYTES);
    const type = hv.getUint32(0, le);
    const length = hv.getUint32(4, le);
    const at = this.#base + s;
    if (length > REC_LENGTH_MAX) {
      this.#err(
        `Record length "${length}" of ${
          recTypeName(type)
        } at offset ${at} is over the limit: at most ${REC_LENGTH_MAX} bytes`,
        s + 4,
      );
    }
    if (type === RecType.PAGE_DATA) {
      const max = 8 + MAX_BATCH_SIZE * (8 + this.#pageSize);
      if (length > max) {
        this.#err(
          `PAGE_DATA length "${length}" at offset ${at} is over the limit: at most ${max} bytes for ${MAX_BATCH_SIZE} pages`,
          s + 4,
        );
      }
    }
    const total = RHDR_BYTES + align8(length);
    if (avail < total) return null;
    for (let k = s + RHDR_BYTES + length; k < s + total; k++) {
      if (buf[k] !== 0) {
        this.#err(
          `Non-zero padding in ${recTypeName(type)} record at offset ${at}`,
          k,
        );
      }
    }
    const bytes = buf.subarray(s, s + total);
    this.#start = s + total;
    if (type === RecType.END) {
      if (length !== 0) {
        this.#err(
          `END record at offset ${at} has body length "${length}": expected 0`,
          s + 4,
        );
      }
      this.#state = this.#scan ? State.Suffix : State.Done;
      return { kind: "end", offset: at, bytes };
    }
    if (type === RecType.PAGE_DATA) return this.#pages(s, length, bytes);
    return {
      kind: "record",
      offset: at,
      type,
      bytes,
      body: bytes.subarray(RHDR_BYTES, RHDR_BYTES + length),
    };
  }

  #pages(s: number, length: number, bytes: Uint8Array): PagesEvent {
    const at = this.#base + s;
    const le = this.#le;
    if (length < 8) {
      this.#err(
        `PAGE_DATA at offset ${at} has body length "${length}": shorter than its 8-byte header`,
        s + 4,
      );
    }
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const count = v.getUint32(RHDR_BYTES, le);
    if (count === 0 || count > MAX_BATCH_SIZE) {
      this.#err(
        `PAGE_DATA at offset ${at} has count "${count}": expected 1..${MAX_BATCH_SIZE}`,
        s + RHDR_BYTES,
      );
    }
    const headerLength = RHDR_BYTES + 8 + 8 * count;
    if (headerLength - RHDR_BYTES > length) {
      this.#err(
        `PAGE_DATA at offset ${at}: ${count} pfns need ${
          8 + 8 * count
        } bytes, the body has ${length}`,
        s + 4,
      );
    }
    const pfn = new Float64Array(count);
    const type = new Uint8Array(count);
    let data = 0;
    for (let i = 0; i < count; i++) {
      const o = RHDR_BYTES + 8 + 8 * i;
      const lo = v.getUint32(o + (le ? 0 : 4), le);
      const hi = v.getUint32(o + (le ? 4 : 0), le);
      const t = hi >>> 28;
      if (((hi >>> 20) & 0xff) !== 0) {
        this.#err(
          `PAGE_DATA at offset ${at}: pfn entry ${i} sets reserved bits 59..52`,
          s + o,
        );
      }
      if (!pfnTypeValid(t)) {
        this.#err(
          `PAGE_DATA at offset ${at}: pfn entry ${i} has reserved type "0x${
            t.toString(16)
          }"`,
          s + o,
        );
      }
      pfn[i] = (hi & 0xfffff) * TWO_32 + lo;
      type[i] = t;
      if (pfnTypeHasData(t)) data++;
    }
    const expected = 8 + 8 * count + data * this.#pageSize;
    if (length !== expected) {
      this.#err(
        `PAGE_DATA at offset ${at} has body length "${length}": ${count} pfns with ${data} data pages need exactly ${expected}`,
        s + 4,
      );
    }
    return {
      kind: "pages",
      offset: at,
      bytes,
      headerLength,
      count,
      pfn,
      type,
      dataPages: data,
      pageSize: this.#pageSize,
    };
  }
}
