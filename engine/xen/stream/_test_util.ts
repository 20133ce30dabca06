/**
 * libxc streams for tests, written and read byte by byte from the
 * specifications themselves — Xen's `docs/specs/libxc-migration-stream.pandoc`
 * (revision 3) with `tools/libs/guest/xg_sr_stream_format.h`,
 * `docs/specs/libxl-migration-stream.pandoc` and xl's `struct
 * save_file_header` (`tools/xl/xl.h`) — with their own `DataView` writes.
 * Nothing here comes from `image.ts`, `format.ts` or `parser.ts`, not even
 * a constant, so a misreading of the spec there is not repeated here and
 * the round-trip tests cannot pass by agreeing with themselves.
 *
 * - Builders: {@link specImageHeader}, {@link specRecord},
 *   {@link specPageData}; {@link buildStream} (image + domain header, the
 *   static records, pre-copy rounds of PAGE_DATA re-sending some pfns in
 *   increasing order as libxc walks its bitmap, HVM context, END);
 *   {@link wrapLikeXl} (xl's header and libxl's records around it).
 * - Readers: {@link walkSpec} (a whole libxc image into its headers and
 *   records), {@link walkXl} (xl's stream into its parts, finding the libxc
 *   image by walking libxl's records, not by searching for its magic).
 *
 * Every stream {@link buildStream} makes in little-endian is one Xen's own
 * `verify-stream-v2` accepts (record bodies have the sizes and zero
 * reserved fields the spec gives).
 *
 * @module
 */

import { concatBytes } from "../../bytes.ts";
import { prng } from "../../wire/_test_util.ts";

// ---- numbers from the specifications -------------------------------------

/** Image header `marker` (libxc spec, "Image Header"): all ones. */
const IHDR_MARKER = 0xffff_ffff_ffff_ffffn;
/** Image header `id`: `"XENF"` in ASCII. */
const IHDR_ID = 0x5845_4e46;
/** Image header `options` bit 0: 1 = big-endian. */
const IHDR_OPT_BIG_ENDIAN = 1;
/** Image header: marker u64, id u32, version u32, options u16, reserved u16 + u32. */
const IHDR_LENGTH = 24;
/** Domain header: type u32, page_shift u16, reserved u16, xen_major u32, xen_minor u32. */
const DHDR_LENGTH = 16;
/** Domain header `type` 0x0002: x86 HVM (what libxc writes for PVH too). */
const DHDR_TYPE_X86_HVM = 2;

/** Record `type`s (libxc spec, "Records"). */
const REC = {
  /** 0x00000000: END. */
  END: 0x00,
  /** 0x00000001: PAGE_DATA. */
  PAGE_DATA: 0x01,
  /** 0x00000008: X86_TSC_INFO. */
  X86_TSC_INFO: 0x08,
  /** 0x00000009: HVM_CONTEXT. */
  HVM_CONTEXT: 0x09,
  /** 0x0000000A: HVM_PARAMS. */
  HVM_PARAMS: 0x0a,
  /** 0x00000010: STATIC_DATA_END (v3). */
  STATIC_DATA_END: 0x10,
  /** 0x00000011: X86_CPUID_POLICY (v3). */
  X86_CPUID_POLICY: 0x11,
  /** 0x00000012: X86_MSR_POLICY (v3). */
  X86_MSR_POLICY: 0x12,
} as const;

/** PAGE_DATA `pfn` bits 63–60: XEN_DOMCTL_PFINFO_* types (libxc spec table). */
const PFINFO = {
  /** 0x0: normal page. */
  NOTAB: 0x0,
  /** 0x9: L1 page table page (pinned). */
  L1TAB_PIN: 0x9,
  /** 0xD: broken page (no page_data). */
  BROKEN: 0xd,
  /** 0xE: allocate only (no page_data). */
  XALLOC: 0xe,
  /** 0xF: invalid page (no page_data). */
  XTAB: 0xf,
} as const;

/** Whether a PAGE_DATA pfn type is followed by page_data ("PFNs with type BROKEN, XALLOC, or XTAB do not have any"). */
function specHasData(type: number): boolean {
  return type !== PFINFO.BROKEN && type !== PFINFO.XALLOC &&
    type !== PFINFO.XTAB;
}

/** Sizes of X86_CPUID_POLICY and X86_MSR_POLICY entries (`xen_cpuid_leaf_t`, `xen_msr_entry_t`). */
const CPUID_LEAF_LENGTH = 24;
const MSR_ENTRY_LENGTH = 16;

/** xl's `savefileheader_magic` (`tools/xl/xl.h`), 32 bytes. */
const XL_MAGIC = "Xen saved domain, xl format\n \0 \r";
/** xl's `SAVEFILE_BYTEORDER_VALUE`. */
const XL_BYTEORDER = 0x0102_0304;
/** xl's `XL_MANDATORY_FLAG_JSON | XL_MANDATORY_FLAG_STREAMv2`. */
const XL_FLAGS_JSON_STREAMV2 = 3;
/** libxl stream header `ident`: `"LibxlFmt"` (libxl spec, "Stream Header"). */
const LIBXL_IDENT = 0x4c69_6278_6c46_6d74n;
/** libxl record types (libxl spec, "Record Overview"). */
const LIBXL_REC = { END: 0, LIBXC_CONTEXT: 1, EMULATOR_CONTEXT: 3 } as const;

const enc = new TextEncoder();

// ---- builders ---------------------------------------------------------------

/** Fields of {@link specImageHeader}. */
export interface SpecHeader {
  /** Image header `version` (2 or 3). */
  readonly version: number;
  /** Sets `options` bit 0; the domain header and records are then big-endian. */
  readonly bigEndian: boolean;
  /** Domain header `type` (default 2, x86 HVM). */
  readonly domainType?: number;
  /** Domain header `page_shift` (default 12). */
  readonly pageShift?: number;
  /** Domain header `xen_major`, `xen_minor` (default 4, 17). */
  readonly xenMajor?: number;
  readonly xenMinor?: number;
}

/**
 * The image header (always big-endian) and the domain header (in the
 * stream's byte order): 40 bytes.
 *
 * @example
 * ```ts
 * specImageHeader({ version: 3, bigEndian: false }).length; // 40
 * ```
 */
export function specImageHeader(h: SpecHeader): Uint8Array {
  const out = new Uint8Array(IHDR_LENGTH + DHDR_LENGTH);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, IHDR_MARKER, false); // marker
  v.setUint32(8, IHDR_ID, false); // id
  v.setUint32(12, h.version, false); // version
  v.setUint16(16, h.bigEndian ? IHDR_OPT_BIG_ENDIAN : 0, false); // options
  // 18..23: reserved, zero
  const le = !h.bigEndian;
  v.setUint32(24, h.domainType ?? DHDR_TYPE_X86_HVM, le); // type
  v.setUint16(28, h.pageShift ?? 12, le); // page_shift
  // 30..31: reserved, zero
  v.setUint32(32, h.xenMajor ?? 4, le); // xen_major
  v.setUint32(36, h.xenMinor ?? 17, le); // xen_minor
  return out;
}

/**
 * A record: `u32 type, u32 body_length`, the body, zero padding "to align
 * the end of the record on an 8 octet boundary". The same shape serves
 * libxl's records.
 *
 * @example
 * ```ts
 * specRecord(0, new Uint8Array(0), true).length; // 8: END
 * ```
 */
export function specRecord(
  type: number,
  body: Uint8Array,
  littleEndian: boolean,
): Uint8Array {
  const padded = Math.ceil(body.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, littleEndian);
  v.setUint32(4, body.length, littleEndian);
  out.set(body, 8);
  return out;
}

/** One PAGE_DATA entry for {@link specPageData}. */
export interface SpecPfn {
  readonly pfn: number;
  /** XEN_DOMCTL_PFINFO_* type, bits 63–60. */
  readonly type: number;
}

/**
 * A PAGE_DATA record: `u32 count, u32 reserved, u64 pfn[count]` (type in
 * bits 63–60, pfn in 51–0), then `page_data` for each entry whose type
 * carries data, in entry order.
 *
 * @example
 * ```ts
 * specPageData([{ pfn: 5, type: 0 }], [new Uint8Array(4096)], true).length; // 8 + 8 + 8 + 4096
 * ```
 */
export function specPageData(
  entries: readonly SpecPfn[],
  pages: readonly Uint8Array[],
  littleEndian: boolean,
  pageSize = 4096,
): Uint8Array {
  const n = entries.length;
  const body = new Uint8Array(8 + 8 * n + pages.length * pageSize);
  const v = new DataView(body.buffer);
  v.setUint32(0, n, littleEndian); // count
  // 4..7: reserved, zero
  for (let i = 0; i < n; i++) {
    const { pfn, type } = entries[i];
    const word = (BigInt(type) << 60n) | BigInt(pfn);
    v.setBigUint64(8 + 8 * i, word, littleEndian);
  }
  pages.forEach((p, k) => body.set(p, 8 + 8 * n + k * pageSize));
  return specRecord(REC.PAGE_DATA, body, littleEndian);
}

/** Options of {@link buildStream}. */
export interface BuildOptions {
  readonly seed?: number;
  /** Pfns in the guest (default 300). */
  readonly pfns?: number;
  /** Pre-copy rounds (default 3; round 0 sends every pfn). */
  readonly rounds?: number;
  /** Stream version (default 3). */
  readonly version?: 2 | 3;
  /** Big-endian body (default false). */
  readonly bigEndian?: boolean;
  /** Pages per PAGE_DATA record (default 64, at most 1024). */
  readonly batch?: number;
}

/** What {@link buildStream} made, with the pfns of each round for checks. */
export interface BuiltStream {
  readonly bytes: Uint8Array;
  /** Pfns with data sent per round. */
  readonly roundPfns: number[][];
}

function page(rand: () => number, pfn: number, round: number): Uint8Array {
  const p = new Uint8Array(4096);
  const kind = rand();
  if (kind < 0.3) return p; // zero page
  if (kind < 0.45) {
    p.fill(0x5a); // the same content on many pfns (dedup)
    return p;
  }
  // Mostly stable content with a few words changing per round (delta).
  const r = prng(pfn * 7919 + 1);
  for (let i = 0; i < 4096; i += 4) p[i] = (r() * 256) | 0;
  for (let k = 0; k < 8; k++) p[(rand() * 4096) | 0] = round + k;
  return p;
}

/**
 * A synthetic libxc stream, shaped like libxc's for an HVM guest: the
 * headers, (v3) CPUID and MSR policies and STATIC_DATA_END, TSC info and
 * HVM params, the rounds, HVM context, END.
 *
 * @example
 * ```ts
 * const { bytes } = buildStream({ seed: 1 });
 * ```
 */
export function buildStream(options: BuildOptions = {}): BuiltStream {
  const rand = prng(options.seed ?? 1);
  const pfns = options.pfns ?? 300;
  const rounds = options.rounds ?? 3;
  const version = options.version ?? 3;
  const le = !options.bigEndian;
  const batch = options.batch ?? 64;
  const parts: Uint8Array[] = [
    specImageHeader({ version, bigEndian: !le }),
  ];
  const noise = (n: number): Uint8Array => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
    return b;
  };
  const record = (type: number, body: Uint8Array): void => {
    parts.push(specRecord(type, body, le));
  };
  if (version === 3) {
    record(REC.X86_CPUID_POLICY, noise(2 * CPUID_LEAF_LENGTH));
    record(REC.X86_MSR_POLICY, noise(MSR_ENTRY_LENGTH));
    record(REC.STATIC_DATA_END, new Uint8Array(0));
  }
  // X86_TSC_INFO: u32 mode, u32 khz, u64 nsec, u32 incarnation, u32 reserved
  const tsc = new Uint8Array(24);
  const tv = new DataView(tsc.buffer);
  tv.setUint32(0, 0, le);
  tv.setUint32(4, 2_000_000 + ((rand() * 1000) | 0), le);
  tv.setBigUint64(8, BigInt(Math.floor(rand() * 2 ** 40)), le);
  tv.setUint32(16, 1, le);
  record(REC.X86_TSC_INFO, tsc);
  // HVM_PARAMS: u32 count, u32 reserved, then {u64 index, u64 value}[count]
  const params = new Uint8Array(8 + 16 * 3);
  const pv = new DataView(params.buffer);
  pv.setUint32(0, 3, le);
  [1, 2, 17].forEach((index, i) => {
    pv.setBigUint64(8 + 16 * i, BigInt(index), le);
    pv.setBigUint64(16 + 16 * i, BigInt((rand() * 2 ** 30) | 0), le);
  });
  record(REC.HVM_PARAMS, params);
  const roundPfns: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    const list: number[] = [];
    for (let pfn = 0; pfn < pfns; pfn++) {
      if (round === 0 || rand() < 0.2) list.push(pfn);
    }
    if (round > 0 && list.length === 0) list.push(0);
    const withData: number[] = [];
    for (let i = 0; i < list.length; i += batch) {
      const entries = list.slice(i, i + batch).map((pfn) => {
        const t = rand();
        const type = t < 0.04
          ? PFINFO.XTAB
          : t < 0.06
          ? PFINFO.XALLOC
          : t < 0.08
          ? PFINFO.BROKEN
          : t < 0.1
          ? PFINFO.L1TAB_PIN
          : PFINFO.NOTAB;
        return { pfn, type };
      });
      const pages = entries.filter((e) => specHasData(e.type)).map((e) => {
        withData.push(e.pfn);
        return page(rand, e.pfn, round);
      });
      parts.push(specPageData(entries, pages, le));
    }
    roundPfns.push(withData);
  }
  record(REC.HVM_CONTEXT, noise(1234));
  record(REC.END, new Uint8Array(0));
  return { bytes: concatBytes(parts), roundPfns };
}

/**
 * The libxc stream wrapped as xl sends it: xl's `struct save_file_header`
 * (magic, byte order 0x01020304, mandatory flags JSON|STREAMv2, optional
 * data = u32 length + the JSON config), libxl's big-endian stream header
 * (`"LibxlFmt"`, version 2, options 0), a LIBXC_CONTEXT record followed by
 * the libxc image, then an EMULATOR_CONTEXT record and libxl's END.
 *
 * @example
 * ```ts
 * const wire = wrapLikeXl(buildStream().bytes);
 * ```
 */
export function wrapLikeXl(libxc: Uint8Array): Uint8Array {
  const config = enc.encode('{"c_info":{"name":"guest"}}\0');
  const xlHeader = new Uint8Array(32 + 16 + 4);
  const xv = new DataView(xlHeader.buffer);
  xlHeader.set(enc.encode(XL_MAGIC), 0);
  xv.setUint32(32, XL_BYTEORDER, true); // byteorder (domain's order: LE)
  xv.setUint32(36, XL_FLAGS_JSON_STREAMV2, true); // mandatory_flags
  xv.setUint32(40, 0, true); // optional_flags
  xv.setUint32(44, 4 + config.length, true); // optional_data_len
  xv.setUint32(48, config.length, true); // optional data: config size
  const libxlHeader = new Uint8Array(16);
  const lv = new DataView(libxlHeader.buffer);
  lv.setBigUint64(0, LIBXL_IDENT, false); // ident
  lv.setUint32(8, 2, false); // version
  lv.setUint32(12, 0, false); // options: little-endian
  // EMULATOR_CONTEXT: u32 emulator_id (2: QEMU upstream), u32 index, blob
  const emu = concatBytes([
    new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0]),
    enc.encode("qemu device model state".repeat(9)),
  ]);
  return concatBytes([
    xlHeader,
    config,
    libxlHeader,
    specRecord(LIBXL_REC.LIBXC_CONTEXT, new Uint8Array(0), true),
    libxc,
    specRecord(LIBXL_REC.EMULATOR_CONTEXT, emu, true),
    specRecord(LIBXL_REC.END, new Uint8Array(0), true),
  ]);
}

/** Splits bytes into chunks of random sizes (1..max). */
export function chunks(
  bytes: Uint8Array,
  seed: number,
  max = 5000,
): Uint8Array[] {
  const rand = prng(seed);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return out;
}

// ---- readers -----------------------------------------------------------------

/** A record as {@link walkSpec} read it. */
export interface SpecRecordInfo {
  /** Stream offset of the record header. */
  readonly offset: number;
  readonly type: number;
  readonly length: number;
  /** PAGE_DATA only: the pfns and their types, in entry order. */
  readonly pfns?: readonly number[];
  readonly types?: readonly number[];
  /** PAGE_DATA only: entries followed by page_data. */
  readonly dataPages?: number;
}

/** What {@link walkSpec} read. */
export interface SpecWalk {
  readonly version: number;
  readonly bigEndian: boolean;
  readonly domainType: number;
  readonly pageShift: number;
  readonly xenMajor: number;
  readonly xenMinor: number;
  /** Every record, END last. */
  readonly records: readonly SpecRecordInfo[];
  /** Bytes of the image, END included. */
  readonly length: number;
}

/**
 * Reads a libxc image from `bytes[start]` to its END record, checking only
 * what the spec makes a reader rely on (marker, id, lengths, padding, the
 * PAGE_DATA length). An independent reader for tests, not a parser.
 *
 * @example
 * ```ts
 * walkSpec(buildStream().bytes).records.at(-1)!.type; // 0: END
 * ```
 * @throws {Error} when the bytes do not follow the spec.
 */
export function walkSpec(bytes: Uint8Array, start = 0): SpecWalk {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (at: number, n: number, what: string): void => {
    if (at + n > bytes.length) {
      throw new Error(`Spec walk: ${what} at ${at} runs past the end`);
    }
  };
  need(start, IHDR_LENGTH + DHDR_LENGTH, "the headers");
  if (v.getBigUint64(start, false) !== IHDR_MARKER) {
    throw new Error(`Spec walk: no image marker at ${start}`);
  }
  if (v.getUint32(start + 8, false) !== IHDR_ID) {
    throw new Error(`Spec walk: no "XENF" at ${start + 8}`);
  }
  const bigEndian = (v.getUint16(start + 16, false) & IHDR_OPT_BIG_ENDIAN) !==
    0;
  const le = !bigEndian;
  const pageShift = v.getUint16(start + 28, le);
  const pageSize = 2 ** pageShift;
  const records: SpecRecordInfo[] = [];
  let at = start + IHDR_LENGTH + DHDR_LENGTH;
  for (;;) {
    need(at, 8, "a record header");
    const type = v.getUint32(at, le);
    const length = v.getUint32(at + 4, le);
    const padded = Math.ceil(length / 8) * 8;
    need(at + 8, padded, "a record body");
    for (let k = at + 8 + length; k < at + 8 + padded; k++) {
      if (bytes[k] !== 0) throw new Error(`Spec walk: padding at ${k}`);
    }
    if (type === REC.PAGE_DATA) {
      const count = v.getUint32(at + 8, le);
      const pfns: number[] = [];
      const types: number[] = [];
      let dataPages = 0;
      for (let i = 0; i < count; i++) {
        const word = v.getBigUint64(at + 16 + 8 * i, le);
        const t = Number(word >> 60n);
        pfns.push(Number(word & 0x000f_ffff_ffff_ffffn));
        types.push(t);
        if (specHasData(t)) dataPages++;
      }
      if (length !== 8 + 8 * count + dataPages * pageSize) {
        throw new Error(`Spec walk: PAGE_DATA length ${length} at ${at}`);
      }
      records.push({ offset: at, type, length, pfns, types, dataPages });
    } else {
      records.push({ offset: at, type, length });
    }
    at += 8 + padded;
    if (type === REC.END) break;
  }
  return {
    version: v.getUint32(start + 12, false),
    bigEndian,
    domainType: v.getUint32(start + 24, le),
    pageShift,
    xenMajor: v.getUint32(start + 32, le),
    xenMinor: v.getUint32(start + 36, le),
    records,
    length: at - start,
  };
}

/**
 * Pre-copy passes of a walked image, counted the way libxc sends them:
 * each pass walks the dirty bitmap upwards, so a PAGE_DATA record whose
 * first pfn is not above the previous record's last one starts a pass.
 * Returns the pfns with page data of each pass.
 *
 * @example
 * ```ts
 * specPasses(walkSpec(buildStream({ rounds: 3 }).bytes)).length; // 3
 * ```
 */
export function specPasses(walk: SpecWalk): number[][] {
  const passes: number[][] = [];
  let last = Infinity;
  for (const r of walk.records) {
    if (r.type !== REC.PAGE_DATA) continue;
    if (r.pfns![0] <= last) passes.push([]);
    r.pfns!.forEach((pfn, i) => {
      if (specHasData(r.types![i])) passes.at(-1)!.push(pfn);
    });
    last = r.pfns!.at(-1)!;
  }
  return passes;
}

/** What {@link walkXl} read. */
export interface XlWalk {
  /** xl's `mandatory_flags`. */
  readonly mandatoryFlags: number;
  /** The config xl sent (optional data after its u32 size), NUL and all. */
  readonly config: string;
  /** libxl's records in order (`type`, `length`, offset); LIBXC_CONTEXT's image is not one of them. */
  readonly libxlRecords: readonly {
    type: number;
    length: number;
    offset: number;
  }[];
  /** Offset of the libxc image and its walk. */
  readonly imageOffset: number;
  readonly image: SpecWalk;
  /** Offset just past libxl's END; what follows is xl's migration protocol. */
  readonly libxlEnd: number;
}

/**
 * Reads xl's side of `xl migrate` (or an `xl save` file): xl's header, its
 * optional data, libxl's stream, records up to END, and the libxc image
 * after LIBXC_CONTEXT (libxl spec: libxc "shall be responsible for reading
 * its own image format from the stream").
 *
 * @example
 * ```ts
 * walkXl(wrapLikeXl(buildStream().bytes)).image.records.length;
 * ```
 * @throws {Error} when the bytes do not follow the specs.
 */
export function walkXl(bytes: Uint8Array): XlWalk {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = new TextDecoder().decode(bytes.subarray(0, 32));
  if (magic !== XL_MAGIC) throw new Error("xl walk: no xl header");
  if (v.getUint32(32, true) !== XL_BYTEORDER) {
    throw new Error("xl walk: not little-endian");
  }
  const mandatoryFlags = v.getUint32(36, true);
  const optLength = v.getUint32(44, true);
  const configLength = v.getUint32(48, true);
  const config = new TextDecoder().decode(
    bytes.subarray(52, 52 + configLength),
  );
  let at = 48 + optLength;
  if (v.getBigUint64(at, false) !== LIBXL_IDENT) {
    throw new Error(`xl walk: no "LibxlFmt" at ${at}`);
  }
  if (v.getUint32(at + 8, false) !== 2 || v.getUint32(at + 12, false) !== 0) {
    throw new Error("xl walk: not a little-endian libxl v2 stream");
  }
  at += 16;
  const libxlRecords: { type: number; length: number; offset: number }[] = [];
  let imageOffset = -1;
  let image: SpecWalk | null = null;
  for (;;) {
    const type = v.getUint32(at, true);
    const length = v.getUint32(at + 4, true);
    libxlRecords.push({ type, length, offset: at });
    at += 8 + Math.ceil(length / 8) * 8;
    if (type === LIBXL_REC.LIBXC_CONTEXT) {
      imageOffset = at;
      image = walkSpec(bytes, at);
      at += image.length;
    }
    if (type === LIBXL_REC.END) break;
  }
  if (image === null) throw new Error("xl walk: no LIBXC_CONTEXT record");
  return {
    mandatoryFlags,
    config,
    libxlRecords,
    imageOffset,
    image,
    libxlEnd: at,
  };
}
