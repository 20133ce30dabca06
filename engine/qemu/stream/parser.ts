/**
 * An incremental parser of QEMU's single-channel migration stream (what
 * `migrate exec:` / `tcp:` send without multifd), as QEMU 7.2 writes it.
 *
 * It delimits the file header, the CONFIGURATION section, the "ram"
 * section's START/PART/END sections (RAM setup, page records, EOS, section
 * footers), COMMANDs (OPEN_RETURN_PATH, PING: libvirt turns return-path
 * on) and hands everything else over as opaque bytes. Once it meets a
 * section it cannot length-delimit (a device's SECTION_FULL, EOF, a
 * PACKAGED command, an unknown iterable section, an unknown RAM flag) it switches to
 * *tail mode*: every later byte is opaque. Concatenating every event's
 * `bytes` gives back the stream byte for byte, whatever was recognised.
 *
 * Specification: `docs/qemu-stream.md`.
 *
 * @module
 */

import { QemuStreamError } from "./errors.ts";
import { TWO_32 } from "../../bytes.ts";

/** QEMU's stream magic, "QEVM". */
export const QEMU_VM_FILE_MAGIC = 0x5145564d;
/** The only stream version QEMU writes since 2009. */
export const QEMU_VM_FILE_VERSION = 3;

/** Section type bytes (`migration/savevm.c`). */
export const QemuSection = {
  EOF: 0x00,
  START: 0x01,
  PART: 0x02,
  END: 0x03,
  FULL: 0x04,
  SUBSECTION: 0x05,
  VMDESCRIPTION: 0x06,
  CONFIGURATION: 0x07,
  COMMAND: 0x08,
  FOOTER: 0x7e,
} as const;

/** RAM record flags, the low 12 bits of a record's be64 (`migration/ram.c`). */
export const RamFlag = {
  ZERO: 0x02,
  MEM_SIZE: 0x04,
  PAGE: 0x08,
  EOS: 0x10,
  CONTINUE: 0x20,
  XBZRLE: 0x40,
} as const;

/** Bytes of a guest page (x86 TARGET_PAGE_SIZE). */
export const QEMU_PAGE_SIZE = 4096;

/** One RAMBlock as announced by the RAM setup. */
export interface RamBlock {
  /** The block's idstr, e.g. `"pc.ram"`. */
  readonly id: string;
  /** `used_length` in bytes. */
  readonly usedLength: number;
  /** Index in setup order. */
  readonly index: number;
  /** First global pfn of the block: blocks are concatenated in setup order, 4 KiB pages. */
  readonly pfnBase: number;
  /** Pages of the block (`ceil(usedLength / 4096)`). */
  readonly pages: number;
}

/** Bytes the parser does not interpret; rebuilt as they are. */
export interface OpaqueEvent {
  /** Discriminant. */
  readonly kind: "opaque";
  /** The bytes, as they came. */
  readonly bytes: Uint8Array;
}

/** The header of a "ram" SECTION_START / PART / END (footers are opaque events). */
export interface SectionEvent {
  /** Discriminant. */
  readonly kind: "section";
  /** {@link QemuSection.START}, `PART` or `END`. */
  readonly type: number;
  /** The section id QEMU gave the "ram" section. */
  readonly sectionId: number;
  /** The section header bytes. */
  readonly bytes: Uint8Array;
}

/** The RAM setup: `be64(total | MEM_SIZE)` and every block (not the EOS that follows). */
export interface RamSetupEvent {
  /** Discriminant. */
  readonly kind: "ramSetup";
  /** The blocks, in setup order. */
  readonly blocks: readonly RamBlock[];
  /** Total RAM bytes announced. */
  readonly totalBytes: number;
  /** The whole setup: the total, then each block. */
  readonly bytes: Uint8Array;
}

/** One RAM page record: a ZERO record (one fill byte) or a PAGE record (4096 bytes). */
export interface PageEvent {
  /** Discriminant. */
  readonly kind: "page";
  /** The whole record: header, then the fill byte or the page. */
  readonly bytes: Uint8Array;
  /** Bytes of the record header: 8, or 9 + idstr length when CONTINUE is clear. */
  readonly headerLength: number;
  /** The block the page belongs to. */
  readonly block: RamBlock;
  /** Byte offset of the page in its block. */
  readonly offset: number;
  /** Global page frame number: `block.pfnBase + offset / 4096`. */
  readonly pfn: number;
  /** The record's flags (ZERO or PAGE, maybe with CONTINUE). */
  readonly flags: number;
  /** A ZERO record: the page is `fill` repeated. */
  readonly zero: boolean;
  /** Fill byte of a ZERO record (0 for PAGE records). */
  readonly fill: number;
  /** The 4096 page bytes of a PAGE record; empty for ZERO records. */
  readonly data: Uint8Array;
}

/**
 * ZERO records back to back, as one event: what {@link PageEvent}s of
 * `zero` records would be, one by one, when the parser was created with
 * `zeroRuns` (most of a guest's first pass is ZERO records, 9 bytes each:
 * an event per record costs more than parsing it).
 */
export interface ZeroRunEvent {
  /** Discriminant. */
  readonly kind: "zeroRun";
  /** The records, whole and back to back. */
  readonly bytes: Uint8Array;
  /** ZERO records in the run (at least 1). */
  readonly pages: number;
  /** The block of every page of the run. */
  readonly block: RamBlock;
  /** Global page frame number of the run's first record. */
  readonly firstPfn: number;
}

/** The `be64 EOS` that ends the RAM data of a section. */
export interface EosEvent {
  /** Discriminant. */
  readonly kind: "eos";
  /** The 8 bytes of the EOS record. */
  readonly bytes: Uint8Array;
}

/**
 * What the parser emits. Every event's `bytes` is a view valid until the
 * next {@link QemuStreamParser.push}; copy what must outlive it.
 */
export type QemuEvent =
  | OpaqueEvent
  | SectionEvent
  | RamSetupEvent
  | PageEvent
  | ZeroRunEvent
  | EosEvent;

/** Options of {@link QemuStreamParser}. */
export interface QemuStreamParserOptions {
  /**
   * Throw {@link QemuStreamError} on an unrecognised part (unknown RAM flag,
   * unknown block, unsupported setup, non-RAM iterable section) instead of
   * falling back to opaque bytes. Default false.
   */
  readonly strict?: boolean;
  /**
   * Hand each run of ZERO records as one {@link ZeroRunEvent} instead of a
   * {@link PageEvent} per record. A run is a ZERO record followed by ZERO
   * records with the CONTINUE flag (same block), as far as the pushed bytes
   * go; the bytes are the same, only the events differ. Default false.
   */
  readonly zeroRuns?: boolean;
}

type State = "header" | "section" | "ramSetup" | "ramRecords" | "afterEos";

const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder("latin1");

/** Flags of a ZERO record of the block the last record named. */
const ZERO_CONTINUE = RamFlag.ZERO | RamFlag.CONTINUE;

/** Bytes of a ZERO record with CONTINUE: the be64, then the fill byte. */
const ZERO_RECORD_BYTES = 9;

/** Bytes of a new chunk first joined to an unfinished item. */
const JOIN_BYTES = 8 << 10;

/** Thrown inside the parser when an item needs more bytes than are buffered. */
const NEED_MORE = Symbol("need more");

/**
 * Parses a QEMU migration stream pushed in chunks of any size.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QemuStreamParser } from "@hakobu/hakobu";
 *
 * const gz = await Deno.open(
 *   new URL("./testdata/firmware-pc-64m.stream.gz", import.meta.url),
 * );
 * const parser = new QemuStreamParser();
 * let pages = 0;
 * for await (
 *   const chunk of gz.readable.pipeThrough(new DecompressionStream("gzip"))
 * ) {
 *   for (const e of parser.push(chunk)) if (e.kind === "page") pages++;
 * }
 * parser.finish();
 * assert.equal(pages, 16514); // one record per page: ZERO or PAGE
 * ```
 */
export class QemuStreamParser {
  readonly #strict: boolean;
  readonly #zeroRuns: boolean;
  #state: State = "header";
  #tail = false;
  #tailReason: string | null = null;
  #pending: Uint8Array = EMPTY;
  /** Absolute stream offset of `#pending[0]`. */
  #base = 0;
  #ramId = -1;
  #blocks: RamBlock[] = [];
  #byId = new Map<string, RamBlock>();
  #last: RamBlock | undefined;
  #ignoreShared = false;
  #sawRamEnd = false;
  #what = "file header";

  /**
   * Creates a parser that expects the file header first.
   *
   * @param options See {@link QemuStreamParserOptions}.
   */
  constructor(options: QemuStreamParserOptions = {}) {
    this.#strict = options.strict ?? false;
    this.#zeroRuns = options.zeroRuns ?? false;
  }

  /** Blocks of the RAM setup (empty before it). */
  get blocks(): readonly RamBlock[] {
    return this.#blocks;
  }

  /** Pages of the global pfn space (sum over blocks). */
  get pageCount(): number {
    const b = this.#blocks[this.#blocks.length - 1];
    return b ? b.pfnBase + b.pages : 0;
  }

  /** Whether every later byte is opaque. */
  get tail(): boolean {
    return this.#tail;
  }

  /**
   * Why the parser fell back to opaque bytes before the device state, or
   * `null` (tail reached normally, or not reached).
   */
  get fallbackReason(): string | null {
    return this.#tailReason;
  }

  /** Stream bytes consumed into events so far. */
  get offset(): number {
    return this.#base;
  }

  /**
   * Parses `chunk` (appended to whatever the last push left) and returns
   * the events of every item now complete. Views in the events are valid
   * until the next call.
   *
   * @throws {QemuStreamError} when the stream is not a QEMU stream, or in strict mode.
   */
  push(chunk: Uint8Array): QemuEvent[] {
    const events: QemuEvent[] = [];
    if (chunk.length === 0) return events;
    let rest = chunk;
    // An item left unfinished by the last push is finished in a small
    // joined buffer, not by copying the whole chunk behind it; the join
    // doubles until the item fits (an item is seldom more than a page).
    while (this.#pending.length > 0 && rest.length > 0 && !this.#tail) {
      const old = this.#pending;
      const take = Math.min(rest.length, Math.max(old.length, JOIN_BYTES));
      const joined = new Uint8Array(old.length + take);
      joined.set(old);
      joined.set(rest.subarray(0, take), old.length);
      const pos = this.#parse(joined, 0, old.length, events);
      if (this.#tail && pos < joined.length) {
        events.push({ kind: "opaque", bytes: joined.subarray(pos) });
        this.#base += joined.length - pos;
        this.#pending = EMPTY;
        rest = rest.subarray(take);
      } else if (pos < old.length) {
        // the item needs more than was joined
        this.#pending = joined.subarray(pos);
        rest = rest.subarray(take);
      } else {
        this.#pending = EMPTY;
        rest = rest.subarray(pos - old.length);
      }
    }
    if (rest.length === 0) return events;
    if (this.#tail) {
      this.#base += rest.length;
      events.push({ kind: "opaque", bytes: rest });
      return events;
    }
    const pos = this.#parse(rest, 0, rest.length, events);
    if (this.#tail && pos < rest.length) {
      events.push({ kind: "opaque", bytes: rest.subarray(pos) });
      this.#base += rest.length - pos;
    } else if (pos < rest.length) {
      // a copy: the caller may reuse `chunk`
      this.#pending = rest.slice(pos);
    }
    return events;
  }

  /**
   * Parses the items of `buf` that start before `limit`, from `pos`, until
   * one needs bytes beyond `buf` or the tail begins; returns where it
   * stopped.
   */
  #parse(
    buf: Uint8Array,
    pos: number,
    limit: number,
    events: QemuEvent[],
  ): number {
    while (pos < limit && !this.#tail) {
      let end: number;
      try {
        end = this.#item(buf, pos, events);
      } catch (e) {
        if (e === NEED_MORE) break;
        throw e;
      }
      this.#base += end - pos;
      pos = end;
    }
    return pos;
  }

  /**
   * Ends the stream.
   *
   * @throws {QemuStreamError} when the stream ended inside an item, or
   *   before its device state (a cancelled or failed migration).
   */
  finish(): void {
    if (this.#pending.length > 0) {
      throw new QemuStreamError(
        `Truncated QEMU stream: ended inside the ${this.#what} at offset ${this.#base} ` +
          `(${this.#pending.length} bytes of it arrived)`,
        this.#base + this.#pending.length,
      );
    }
    if (!this.#tail) {
      throw new QemuStreamError(
        `Truncated QEMU stream: ended at offset ${this.#base} before the device state ` +
          `(expected the ${this.#what}): the source cancelled or failed the migration`,
        this.#base,
      );
    }
  }

  /** Parses one item at `pos`, pushes its events, returns its end; throws NEED_MORE. */
  #item(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    switch (this.#state) {
      case "header":
        return this.#header(buf, pos, events);
      case "section":
        return this.#section(buf, pos, events);
      case "ramSetup":
        return this.#ramSetup(buf, pos, events);
      case "ramRecords":
        return this.#record(buf, pos, events);
      case "afterEos":
        return this.#afterEos(buf, pos, events);
    }
  }

  #header(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "file header";
    need(buf, pos, 8);
    const magic = be32(buf, pos);
    if (magic !== QEMU_VM_FILE_MAGIC) {
      throw new QemuStreamError(
        `Not a QEMU migration stream: magic "0x${
          hex(magic, 8)
        }" at offset ${this.#base}, expected 0x5145564d ("QEVM")`,
        this.#base,
      );
    }
    const version = be32(buf, pos + 4);
    events.push({ kind: "opaque", bytes: buf.subarray(pos, pos + 8) });
    if (version !== QEMU_VM_FILE_VERSION) {
      this.#fallback(
        `stream version "${version}" at offset ${this.#base + 4} is not 3`,
        this.#base + 4,
      );
    } else this.#state = "section";
    return pos + 8;
  }

  #section(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "section header";
    need(buf, pos, 1);
    const type = buf[pos];
    switch (type) {
      case QemuSection.CONFIGURATION:
        return this.#configuration(buf, pos, events);
      case QemuSection.START: {
        need(buf, pos, 6);
        const id = be32(buf, pos + 1);
        const len = buf[pos + 5];
        need(buf, pos, 6 + len + 8);
        const idstr = latin1.decode(buf.subarray(pos + 6, pos + 6 + len));
        if (idstr !== "ram" || this.#ramId >= 0) {
          this.#fallback(
            `iterable section "${idstr}" (id ${id}) at offset ${this.#base} is not delimited`,
            this.#base,
          );
          return pos;
        }
        const end = pos + 6 + len + 8;
        this.#ramId = id;
        events.push({
          kind: "section",
          type,
          sectionId: id,
          bytes: buf.subarray(pos, end),
        });
        this.#state = "ramSetup";
        return end;
      }
      case QemuSection.PART:
      case QemuSection.END: {
        need(buf, pos, 5);
        const id = be32(buf, pos + 1);
        if (id !== this.#ramId || this.#sawRamEnd) {
          this.#fallback(
            `section ${
              type === QemuSection.PART ? "PART" : "END"
            } of section id ${id} at offset ${this.#base} is not the "ram" section`,
            this.#base,
          );
          return pos;
        }
        if (type === QemuSection.END) this.#sawRamEnd = true;
        events.push({
          kind: "section",
          type,
          sectionId: id,
          bytes: buf.subarray(pos, pos + 5),
        });
        this.#state = "ramRecords";
        return pos + 5;
      }
      case QemuSection.COMMAND: {
        // 0x08, be16 command, be16 length, length bytes: delimited, except
        // MIG_CMD_PACKAGED, whose length word is followed by a whole
        // packaged stream (post-copy). libvirt turns return-path on, and
        // QEMU then opens the stream with OPEN_RETURN_PATH and PING.
        need(buf, pos, 5);
        const cmd = (buf[pos + 1] << 8) | buf[pos + 2];
        const len = (buf[pos + 3] << 8) | buf[pos + 4];
        if (cmd !== MIG_CMD_PACKAGED) {
          need(buf, pos, 5 + len);
          events.push({
            kind: "opaque",
            bytes: buf.subarray(pos, pos + 5 + len),
          });
          return pos + 5 + len;
        }
        this.#tail = true;
        this.#what = "device state";
        return pos;
      }
      case QemuSection.FULL:
      case QemuSection.EOF:
      case QemuSection.VMDESCRIPTION:
        // Device state, the end, or a command: not length-delimited here.
        // Device sections follow the last RAM section, so this is the tail.
        this.#tail = true;
        this.#what = "device state";
        return pos;
      default:
        this.#fallback(
          `unknown section type "0x${hex(type, 2)}" at offset ${this.#base}`,
          this.#base,
        );
        return pos;
    }
  }

  #configuration(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "configuration section";
    need(buf, pos, 5);
    const len = be32(buf, pos + 1);
    if (len > 256) {
      this.#fallback(
        `machine name of ${len} bytes in the configuration at offset ${this.#base}`,
        this.#base,
      );
      return pos;
    }
    let at = pos + 5 + len;
    // Subsections: 0x05, u8 len, name, be32 version, fields.
    for (;;) {
      need(buf, at, 1);
      if (buf[at] !== QemuSection.SUBSECTION) break;
      need(buf, at, 2);
      const nlen = buf[at + 1];
      need(buf, at, 2 + nlen + 4);
      const name = latin1.decode(buf.subarray(at + 2, at + 2 + nlen));
      at += 2 + nlen + 4;
      if (name === "configuration/target-page-bits") {
        need(buf, at, 4);
        const bits = be32(buf, at);
        at += 4;
        if (bits !== 12) {
          this.#fallback(`target page bits "${bits}" is not 12`, this.#base);
          return pos;
        }
      } else if (name === "configuration/capabilities") {
        need(buf, at, 4);
        const count = be32(buf, at);
        at += 4;
        if (count > 64) {
          this.#fallback(
            `${count} capabilities in the configuration`,
            this.#base,
          );
          return pos;
        }
        for (let i = 0; i < count; i++) {
          need(buf, at, 1);
          const clen = buf[at];
          need(buf, at, 1 + clen);
          const cap = latin1.decode(buf.subarray(at + 1, at + 1 + clen));
          if (cap === "x-ignore-shared") this.#ignoreShared = true;
          at += 1 + clen;
        }
      } else if (name === "configuration/uuid") {
        need(buf, at, 16);
        at += 16;
      } else {
        this.#fallback(
          `unknown configuration subsection "${name}" at offset ${this.#base}`,
          this.#base,
        );
        return pos;
      }
    }
    events.push({ kind: "opaque", bytes: buf.subarray(pos, at) });
    return at;
  }

  #ramSetup(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "RAM setup";
    need(buf, pos, 8);
    const hi = be32(buf, pos);
    const lo = be32(buf, pos + 4);
    if ((lo & 0xfff) !== RamFlag.MEM_SIZE) {
      this.#fallback(
        `RAM setup at offset ${this.#base} does not start with MEM_SIZE (flags 0x${
          hex(lo & 0xfff, 3)
        })`,
        this.#base,
      );
      return pos;
    }
    const total = hi * TWO_32 + (lo - RamFlag.MEM_SIZE);
    let remaining = total;
    let at = pos + 8;
    const blocks: RamBlock[] = [];
    let pfnBase = 0;
    while (remaining > 0) {
      need(buf, at, 1);
      const len = buf[at];
      need(buf, at, 1 + len + 8);
      const id = latin1.decode(buf.subarray(at + 1, at + 1 + len));
      const used = be32(buf, at + 1 + len) * TWO_32 +
        be32(buf, at + 1 + len + 4);
      if (
        len === 0 || !/^[\x20-\x7e]+$/.test(id) || used === 0 ||
        used > remaining || blocks.some((b) => b.id === id)
      ) {
        this.#fallback(
          `RAM setup block ${blocks.length} at offset ${
            this.#base + at - pos
          } is not "u8 len, idstr, be64 used_length" (per-block page size or address?)`,
          this.#base,
        );
        return pos;
      }
      const pages = Math.ceil(used / QEMU_PAGE_SIZE);
      blocks.push({
        id,
        usedLength: used,
        index: blocks.length,
        pfnBase,
        pages,
      });
      pfnBase += pages;
      remaining -= used;
      at += 1 + len + 8;
    }
    // Postcopy's per-block page size and ignore-shared's address would sit here.
    need(buf, at, 8);
    if (
      this.#ignoreShared || be32(buf, at) !== 0 ||
      be32(buf, at + 4) !== RamFlag.EOS
    ) {
      this.#fallback(
        `RAM setup at offset ${this.#base} is not followed by EOS ` +
          `(per-block page sizes or addresses: postcopy-ram or x-ignore-shared)`,
        this.#base,
      );
      return pos;
    }
    this.#blocks = blocks;
    for (const b of blocks) this.#byId.set(b.id, b);
    events.push({
      kind: "ramSetup",
      blocks,
      totalBytes: total,
      bytes: buf.subarray(pos, at),
    });
    this.#state = "ramRecords";
    return at;
  }

  #record(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "RAM record";
    need(buf, pos, 8);
    const hi = be32(buf, pos);
    const lo = be32(buf, pos + 4);
    const flags = lo & 0xfff;
    const offset = hi * TWO_32 + (lo - flags);
    if (flags === RamFlag.EOS && offset === 0) {
      events.push({ kind: "eos", bytes: buf.subarray(pos, pos + 8) });
      this.#state = "afterEos";
      return pos + 8;
    }
    const kind = flags & ~RamFlag.CONTINUE;
    if (
      kind !== RamFlag.ZERO && kind !== RamFlag.PAGE &&
      kind !== RamFlag.XBZRLE
    ) {
      this.#fallback(
        `RAM record at offset ${this.#base} has unsupported flags "0x${
          hex(flags, 3)
        }"`,
        this.#base,
      );
      return pos;
    }
    let at = pos + 8;
    let block = this.#last;
    if ((flags & RamFlag.CONTINUE) === 0) {
      need(buf, at, 1);
      const len = buf[at];
      need(buf, at, 1 + len);
      const id = latin1.decode(buf.subarray(at + 1, at + 1 + len));
      block = this.#byId.get(id);
      at += 1 + len;
      if (!block) {
        this.#fallback(
          `RAM record at offset ${this.#base} names unknown block "${id}"`,
          this.#base,
        );
        return pos;
      }
    } else if (!block) {
      this.#fallback(
        `RAM record at offset ${this.#base} continues a block before any was named`,
        this.#base,
      );
      return pos;
    }
    if (offset + QEMU_PAGE_SIZE > block.pages * QEMU_PAGE_SIZE) {
      this.#fallback(
        `RAM record at offset ${this.#base}: page offset "0x${
          offset.toString(16)
        }" is outside block "${block.id}" (${block.usedLength} bytes)`,
        this.#base,
      );
      return pos;
    }
    const headerLength = at - pos;
    if (kind === RamFlag.XBZRLE) {
      need(buf, at, 3);
      const len = buf[at + 1] << 8 | buf[at + 2];
      if (buf[at] !== 1 || len > QEMU_PAGE_SIZE) {
        this.#fallback(
          `XBZRLE record at offset ${this.#base} has encoding "${
            buf[at]
          }" and length ${len}`,
          this.#base,
        );
        return pos;
      }
      need(buf, at, 3 + len);
      this.#last = block;
      // XBZRLE data decodes against QEMU's own cache: it travels as it is.
      events.push({ kind: "opaque", bytes: buf.subarray(pos, at + 3 + len) });
      return at + 3 + len;
    }
    const zero = kind === RamFlag.ZERO;
    const bodyLength = zero ? 1 : QEMU_PAGE_SIZE;
    need(buf, at, bodyLength);
    this.#last = block;
    const end = at + bodyLength;
    if (zero && this.#zeroRuns) {
      return this.#zeroRun(buf, pos, end, block, offset, events);
    }
    events.push({
      kind: "page",
      bytes: buf.subarray(pos, end),
      headerLength,
      block,
      offset,
      pfn: block.pfnBase + offset / QEMU_PAGE_SIZE,
      flags,
      zero,
      fill: zero ? buf[at] : 0,
      data: zero ? EMPTY : buf.subarray(at, end),
    });
    return end;
  }

  /**
   * Extends the ZERO record at `pos..end` with the ZERO|CONTINUE records
   * that follow it in `buf`, pushes them as one event, returns its end. A
   * record that is anything else (or only partly in `buf`, or outside the
   * block) ends the run; the general path parses it next.
   */
  #zeroRun(
    buf: Uint8Array,
    pos: number,
    end: number,
    block: RamBlock,
    offset: number,
    events: QemuEvent[],
  ): number {
    const blockBytes = block.pages * QEMU_PAGE_SIZE;
    let pages = 1;
    // A ZERO|CONTINUE record is 9 bytes: be64 offset|flags, then the fill.
    while (end + ZERO_RECORD_BYTES <= buf.length) {
      const lo = be32(buf, end + 4);
      if ((lo & 0xfff) !== ZERO_CONTINUE) break;
      const next = be32(buf, end) * TWO_32 + (lo - ZERO_CONTINUE);
      if (next + QEMU_PAGE_SIZE > blockBytes) break;
      end += ZERO_RECORD_BYTES;
      pages++;
    }
    events.push({
      kind: "zeroRun",
      bytes: buf.subarray(pos, end),
      pages,
      block,
      firstPfn: block.pfnBase + offset / QEMU_PAGE_SIZE,
    });
    return end;
  }

  #afterEos(buf: Uint8Array, pos: number, events: QemuEvent[]): number {
    this.#what = "section footer";
    need(buf, pos, 1);
    if (buf[pos] !== QemuSection.FOOTER) {
      this.#state = "section"; // a stream without section footers
      return pos;
    }
    need(buf, pos, 5);
    const id = be32(buf, pos + 1);
    if (id !== this.#ramId) {
      this.#fallback(
        `section footer at offset ${this.#base} names section ${id}, expected ${this.#ramId}`,
        this.#base,
      );
      return pos;
    }
    events.push({ kind: "opaque", bytes: buf.subarray(pos, pos + 5) });
    this.#state = "section";
    return pos + 5;
  }

  #fallback(reason: string, offset: number): void {
    if (this.#strict) {
      throw new QemuStreamError(
        `Cannot parse QEMU stream: ${reason}`,
        offset,
      );
    }
    this.#tail = true;
    this.#tailReason = reason;
  }
}

/** QEMU's `MIG_CMD_PACKAGED`: a COMMAND that carries a nested stream. */
const MIG_CMD_PACKAGED = 8;

function need(buf: Uint8Array, pos: number, n: number): void {
  if (pos + n > buf.length) throw NEED_MORE;
}

function be32(buf: Uint8Array, at: number): number {
  return (buf[at] * 0x100_0000 + (buf[at + 1] << 16 | buf[at + 2] << 8 |
    buf[at + 3])) >>> 0;
}

function hex(n: number, digits: number): string {
  return n.toString(16).padStart(digits, "0");
}
