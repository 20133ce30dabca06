/**
 * Constants of the libxc migration stream v2/v3
 * (Xen `docs/specs/libxc-migration-stream.pandoc`,
 * `tools/libs/guest/xg_sr_stream_format.h`).
 *
 * @module
 */

/** Bytes of the image header: `u64 marker, u32 id, u32 version, u16 options, u16 res, u32 res` (big-endian). */
export const IHDR_BYTES = 24;
/** Bytes of the domain header: `u32 type, u16 page_shift, u16 res, u32 xen_major, u32 xen_minor`. */
export const DHDR_BYTES = 16;
/** Image id `"XENF"`. */
export const IHDR_ID = 0x58454e46;
/** The 12 bytes that open every image: marker `0xFFFFFFFFFFFFFFFF` then `"XENF"`. */
export const IMAGE_MAGIC: Uint8Array = new Uint8Array([
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0x58,
  0x45,
  0x4e,
  0x46,
]);
/** Options bit 0: the stream after the image header is big-endian. */
export const IHDR_OPT_BIG_ENDIAN = 1;
/** Bytes of a record header: `u32 type, u32 body_length`. */
export const RHDR_BYTES = 8;
/** Records are zero-padded to this alignment. */
export const REC_ALIGN = 8;
/** Largest record body libxc accepts (`REC_LENGTH_MAX`, 128 MiB). */
export const REC_LENGTH_MAX = 128 << 20;
/** Most pages in one PAGE_DATA record (`MAX_BATCH_SIZE`). */
export const MAX_BATCH_SIZE = 1024;
/** Bit 31 of a record type marks an optional record. */
export const REC_TYPE_OPTIONAL = 0x8000_0000;

/** Record types. */
export const RecType = {
  END: 0x00,
  PAGE_DATA: 0x01,
  X86_PV_INFO: 0x02,
  X86_PV_P2M_FRAMES: 0x03,
  X86_PV_VCPU_BASIC: 0x04,
  X86_PV_VCPU_EXTENDED: 0x05,
  X86_PV_VCPU_XSAVE: 0x06,
  SHARED_INFO: 0x07,
  X86_TSC_INFO: 0x08,
  HVM_CONTEXT: 0x09,
  HVM_PARAMS: 0x0a,
  TOOLSTACK: 0x0b,
  X86_PV_VCPU_MSRS: 0x0c,
  VERIFY: 0x0d,
  CHECKPOINT: 0x0e,
  CHECKPOINT_DIRTY_PFN_LIST: 0x0f,
  STATIC_DATA_END: 0x10,
  X86_CPUID_POLICY: 0x11,
  X86_MSR_POLICY: 0x12,
} as const;

/** Domain types of the domain header. */
export const DomainType = {
  X86_PV: 1,
  X86_HVM: 2,
  X86_PVH: 3,
  ARM: 4,
} as const;

/** PAGE_DATA pfn types (`XEN_DOMCTL_PFINFO_*` >> 28, in bits 63..60 of an entry). */
export const PfnType = {
  NOTAB: 0x0,
  L1TAB: 0x1,
  L2TAB: 0x2,
  L3TAB: 0x3,
  L4TAB: 0x4,
  L1TAB_PIN: 0x9,
  L2TAB_PIN: 0xa,
  L3TAB_PIN: 0xb,
  L4TAB_PIN: 0xc,
  BROKEN: 0xd,
  XALLOC: 0xe,
  XTAB: 0xf,
} as const;

/** Whether a page of pfn type `t` carries page data (all but BROKEN, XALLOC, XTAB). */
export function pfnTypeHasData(t: number): boolean {
  return t < PfnType.BROKEN;
}

/** Whether `t` is a pfn type the spec defines (0x5..0x8 are reserved). */
export function pfnTypeValid(t: number): boolean {
  return t <= 4 || t >= 9;
}

/** Mask of the pfn in a PAGE_DATA entry (bits 51..0), as a number-safe split: high 20 bits of the upper word. */
export const PFN_HI_MASK = 0x000f_ffff;

/** Name of a record type for messages, e.g. `"PAGE_DATA"`. */
export function recTypeName(type: number): string {
  const base = (type & ~REC_TYPE_OPTIONAL) >>> 0;
  for (const [name, v] of Object.entries(RecType)) {
    if (v === base) {
      return (type & REC_TYPE_OPTIONAL) ? `${name} (optional)` : name;
    }
  }
  return `type 0x${(type >>> 0).toString(16)}`;
}

/** `n` rounded up to {@link REC_ALIGN}. */
export function align8(n: number): number {
  return (n + 7) & ~7;
}
