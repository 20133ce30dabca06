/**
 * Binding to libxenctrl (Xen 4.17, Debian `libxenmisc4.17`): open the
 * hypervisor interface, list domains, pause/unpause, the pfn space, and
 * log-dirty mode with the dirty bitmap in a hypercall buffer. Loaded on
 * first use; `HAKOBU_LIBXENCTRL` overrides the library path.
 *
 * Struct layouts are x86-64 offsets from Xen 4.17's headers, checked with
 * `offsetof` against `/usr/include/xenctrl.h` and `xen/domctl.h` (see
 * `docs/xen.md`).
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "../_library.ts";
import { errno, errnoText, libc } from "./_libc.ts";
import { DOM0_FIX, unwrap, XenError } from "./errors.ts";

/** The libxenctrl symbols hakobu uses. */
export const XENCTRL_SYMBOLS = {
  // xc_interface *xc_interface_open(xentoollog_logger *logger, xentoollog_logger *dombuild_logger, unsigned open_flags);
  xc_interface_open: {
    parameters: ["pointer", "pointer", "u32"],
    result: "pointer",
  },
  // int xc_interface_close(xc_interface *xch);
  xc_interface_close: { parameters: ["pointer"], result: "i32" },
  // int xc_domain_getinfolist(xc_interface *xch, uint32_t first_domain, unsigned int max_domains, xc_domaininfo_t *info);
  xc_domain_getinfolist: {
    parameters: ["pointer", "u32", "u32", "buffer"],
    result: "i32",
  },
  // int xc_domain_pause(xc_interface *xch, uint32_t domid);
  xc_domain_pause: { parameters: ["pointer", "u32"], result: "i32" },
  // int xc_domain_unpause(xc_interface *xch, uint32_t domid);
  xc_domain_unpause: { parameters: ["pointer", "u32"], result: "i32" },
  // int xc_domain_maximum_gpfn(xc_interface *xch, uint32_t domid, xen_pfn_t *gpfns);
  xc_domain_maximum_gpfn: {
    parameters: ["pointer", "u32", "buffer"],
    result: "i32",
  },
  // int xc_shadow_control(xc_interface *xch, uint32_t domid, unsigned int sop, unsigned int *mb, unsigned int mode);
  xc_shadow_control: {
    parameters: ["pointer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  // long long xc_logdirty_control(xc_interface *xch, uint32_t domid, unsigned int sop, xc_hypercall_buffer_t *dirty_bitmap, unsigned long pages, unsigned int mode, xc_shadow_op_stats_t *stats);
  xc_logdirty_control: {
    parameters: ["pointer", "u32", "u32", "buffer", "u64", "u32", "buffer"],
    result: "i64",
  },
  // void *xc__hypercall_buffer_alloc_pages(xc_interface *xch, xc_hypercall_buffer_t *b, int nr_pages);
  xc__hypercall_buffer_alloc_pages: {
    parameters: ["pointer", "buffer", "i32"],
    result: "pointer",
  },
  // void xc__hypercall_buffer_free_pages(xc_interface *xch, xc_hypercall_buffer_t *b, int nr_pages);
  xc__hypercall_buffer_free_pages: {
    parameters: ["pointer", "buffer", "i32"],
    result: "void",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxenctrl is looked for. */
export const XENCTRL_LIBRARY: LibrarySpec<typeof XENCTRL_SYMBOLS> = {
  name: "libxenctrl",
  envVar: "HAKOBU_LIBXENCTRL",
  candidates: ["libxenctrl.so.4.17", "libxenctrl.so"],
  install: "apt-get install libxenmisc4.17 (Debian bookworm)",
  symbols: XENCTRL_SYMBOLS,
};

/**
 * The libxenctrl symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { xenctrl } from "./xenctrl.ts";
 *
 * try {
 *   const { xc_interface_open } = xenctrl(); // loads libxenctrl on first use
 *   assert.equal(typeof xc_interface_open, "function");
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 * @throws {FfiError} When libxenctrl cannot be loaded.
 */
export const xenctrl: () => Deno.DynamicLibrary<
  typeof XENCTRL_SYMBOLS
>["symbols"] = lazyLibrary(XENCTRL_LIBRARY);

/**
 * Opens libxenctrl now from an explicit path (tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenctrlLibrary } from "./xenctrl.ts";
 *
 * try {
 *   const lib = openXenctrlLibrary("libxenctrl.so.4.17"); // a path or a soname
 *   assert.equal(typeof lib.symbols.xc_interface_open, "function");
 *   lib.close();
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export function openXenctrlLibrary(
  path?: string,
): Deno.DynamicLibrary<typeof XENCTRL_SYMBOLS> {
  return openLibrary(XENCTRL_LIBRARY, { path });
}

/** `XEN_DOMCTL_SHADOW_OP_*` (xen/domctl.h). */
export const ShadowOp = {
  OFF: 0,
  ENABLE_LOGDIRTY: 2,
  CLEAN: 11,
  PEEK: 12,
  ENABLE: 32,
} as const;

/** `XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL` (xen/domctl.h): on the last CLEAN, also report pages mapped writable. */
export const SHADOW_LOGDIRTY_FINAL = 1;

/** `XEN_DOMINF_*` flag bits of `xen_domctl_getdomaininfo.flags` (xen/domctl.h). */
export const DomInfoFlag = {
  dying: 1 << 0,
  hvm: 1 << 1,
  shutdown: 1 << 2,
  paused: 1 << 3,
  blocked: 1 << 4,
  running: 1 << 5,
  debugged: 1 << 6,
  xsDomain: 1 << 7,
  hap: 1 << 8,
} as const;

/** `XEN_DOMINF_shutdownshift`: the shutdown code sits in bits 16..23 of the flags. */
export const DOMINF_SHUTDOWN_SHIFT = 16;

/** `SHUTDOWN_*` codes (xen/sched.h). */
export const ShutdownReason = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  softReset: 5,
} as const;

/**
 * `xc_domaininfo_t` (= `struct xen_domctl_getdomaininfo`, xen/domctl.h,
 * interface version 0x15 in Xen 4.17) on x86-64: size and field offsets,
 * as `offsetof` gives them against the installed headers.
 */
export const DOMAININFO = {
  size: 112,
  /** `domid_t domain` (u16). */
  domain: 0,
  /** `uint32_t flags` (XEN_DOMINF_*; shutdown code in bits 16..23). */
  flags: 4,
  /** `uint64_aligned_t tot_pages`. */
  totPages: 8,
  /** `uint64_aligned_t max_pages`. */
  maxPages: 16,
  /** `uint64_aligned_t shr_pages`. */
  shrPages: 32,
  /** `uint64_aligned_t cpu_time` (ns). */
  cpuTime: 56,
  /** `uint32_t nr_online_vcpus`. */
  nrOnlineVcpus: 64,
  /** `uint32_t max_vcpu_id`. */
  maxVcpuId: 68,
  /** `xen_domain_handle_t handle` (16 bytes, the UUID). */
  handle: 76,
  /** `uint32_t cpupool`. */
  cpupool: 92,
} as const;

/**
 * `struct xc_hypercall_buffer` (xenctrl.h) on x86-64: `void *hbuf` at 0,
 * `param_shadow` at 8, `int dir` at 16, `void *ubuf` at 24, `size_t sz` at
 * 32; 40 bytes. A fresh one is `{NULL, NULL, 0, (void *)-1, 0}`
 * (`HYPERCALL_BUFFER_INIT_NO_BOUNCE`).
 */
export const HYPERCALL_BUFFER = {
  size: 40,
  hbuf: 0,
  paramShadow: 8,
  dir: 16,
  ubuf: 24,
  sz: 32,
} as const;

/** `xc_shadow_op_stats_t` (`struct xen_domctl_shadow_op_stats`): `u32 fault_count` at 0, `u32 dirty_count` at 4. */
export const SHADOW_STATS_BYTES = 8;

/** One domain as `xc_domain_getinfolist` reports it. */
export interface DomainInfo {
  /** Domain id. */
  readonly domid: number;
  /** Raw `XEN_DOMINF_*` flags. */
  readonly flags: number;
  /** Whether the domain is HVM (else PV/PVH). */
  readonly hvm: boolean;
  /** Whether the toolstack paused it. */
  readonly paused: boolean;
  /** Whether it is dying. */
  readonly dying: boolean;
  /** Whether it has shut down (crashed, powered off, or suspended for a save). */
  readonly shutdown: boolean;
  /** The `SHUTDOWN_*` reason when {@link shutdown} (2 = suspend), else 0. */
  readonly shutdownReason: number;
  /** Pages the domain holds now. */
  readonly totPages: number;
  /** Page limit. */
  readonly maxPages: number;
  /** CPU time used, in nanoseconds. */
  readonly cpuTimeNs: bigint;
  /** Online vCPUs. */
  readonly onlineVcpus: number;
}

/**
 * Decodes one `xc_domaininfo_t` from `bytes` at `offset` (layout
 * {@link DOMAININFO}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeDomainInfo, DOMAININFO } from "./xenctrl.ts";
 *
 * const bytes = new Uint8Array(DOMAININFO.size);
 * new DataView(bytes.buffer).setUint16(DOMAININFO.domain, 7, true);
 * const info = decodeDomainInfo(bytes);
 * assert.equal(info.domid, 7);
 * assert.equal(info.shutdown, false);
 * ```
 */
export function decodeDomainInfo(bytes: Uint8Array, offset = 0): DomainInfo {
  const v = new DataView(
    bytes.buffer,
    bytes.byteOffset + offset,
    DOMAININFO.size,
  );
  const flags = v.getUint32(DOMAININFO.flags, true);
  return {
    domid: v.getUint16(DOMAININFO.domain, true),
    flags,
    hvm: (flags & DomInfoFlag.hvm) !== 0,
    paused: (flags & DomInfoFlag.paused) !== 0,
    dying: (flags & DomInfoFlag.dying) !== 0,
    shutdown: (flags & DomInfoFlag.shutdown) !== 0,
    shutdownReason: (flags & DomInfoFlag.shutdown) !== 0
      ? (flags >>> DOMINF_SHUTDOWN_SHIFT) & 0xff
      : 0,
    totPages: Number(v.getBigUint64(DOMAININFO.totPages, true)),
    maxPages: Number(v.getBigUint64(DOMAININFO.maxPages, true)),
    cpuTimeNs: v.getBigUint64(DOMAININFO.cpuTime, true),
    onlineVcpus: v.getUint32(DOMAININFO.nrOnlineVcpus, true),
  };
}

const LIB = "libxenctrl";

/** The device node libxencall opens; its absence means "not a dom0". */
export const PRIVCMD = "/dev/xen/privcmd";

/**
 * The error for a NULL handle from an `*_open` call: "Not a Xen dom0: cannot
 * open /dev/xen/privcmd (<errno text>): run hakobu on a Xen dom0 as root".
 */
export function notDom0Error(library: string, call: string): XenError {
  let code = errno();
  if (code === 0) {
    try {
      Deno.statSync(PRIVCMD);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) code = 2;
    }
  }
  const text = code === 0 ? "no errno" : errnoText(code);
  return new XenError(
    library,
    call,
    `Not a Xen dom0: cannot open ${PRIVCMD} (${text}): ${DOM0_FIX}`,
    code,
  );
}

/**
 * A domain's dirty bitmap in a page-aligned hypercall buffer: one bit per
 * pfn, LSB first within each byte (little-endian unsigned longs).
 */
export class DirtyBitmap {
  readonly #xch: Deno.PointerObject;
  readonly #desc = new Uint8Array(HYPERCALL_BUFFER.size);
  readonly #nrPages: number;
  #bits: Uint8Array | null;
  /** Pfns the bitmap covers. */
  readonly pfns: number;

  /** @internal Use {@link XenCtrl.allocDirtyBitmap}. */
  constructor(xch: Deno.PointerObject, pfns: number) {
    this.#xch = xch;
    this.pfns = pfns;
    const bytes = Math.ceil(pfns / 64) * 8;
    this.#nrPages = Math.max(1, Math.ceil(bytes / 4096));
    new DataView(this.#desc.buffer).setBigInt64(
      HYPERCALL_BUFFER.ubuf,
      -1n,
      true,
    );
    const p = xenctrl().xc__hypercall_buffer_alloc_pages(
      xch,
      this.#desc,
      this.#nrPages,
    );
    if (p === null) {
      const code = errno();
      throw new XenError(
        LIB,
        "xc__hypercall_buffer_alloc_pages",
        `Cannot allocate a ${this.#nrPages}-page dirty bitmap: xc__hypercall_buffer_alloc_pages failed (${
          errnoText(code)
        })`,
        code,
      );
    }
    this.#bits = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(p, bytes),
    );
  }

  /** The `xc_hypercall_buffer_t` descriptor to pass to `xc_logdirty_control`. */
  get descriptor(): Uint8Array {
    return this.#desc;
  }

  /** The bitmap bytes (aliasing the hypercall buffer; valid until {@link free}). */
  get bits(): Uint8Array {
    if (!this.#bits) throw new RangeError("The dirty bitmap was freed");
    return this.#bits;
  }

  /** Frees the hypercall buffer. */
  free(): void {
    if (!this.#bits) return;
    this.#bits = null;
    xenctrl().xc__hypercall_buffer_free_pages(
      this.#xch,
      this.#desc,
      this.#nrPages,
    );
  }
}

/**
 * An open libxenctrl interface (`xc_interface *`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenctrl } from "./xenctrl.ts";
 *
 * try {
 *   const xc = openXenctrl(); // throws XenError "Not a Xen dom0: ..." off a dom0
 *   try {
 *     const dom0 = xc.domainInfo(0);
 *     assert.equal(dom0.domid, 0);
 *     assert.ok(xc.listDomains().some((d) => d.domid === 0));
 *   } finally {
 *     xc.close();
 *   }
 * } catch (e) {
 *   assert.ok(e instanceof FfiError, String(e)); // XenError is one
 * }
 * ```
 */
export class XenCtrl {
  #xch: Deno.PointerObject | null;
  #listBuf = new Uint8Array(0);

  /** @internal Use {@link openXenctrl}. */
  constructor(xch: Deno.PointerObject) {
    this.#xch = xch;
  }

  /** The raw `xc_interface *`, e.g. for `xc_domain_save`. */
  get handle(): Deno.PointerObject {
    if (!this.#xch) throw new RangeError("The xenctrl interface is closed");
    return this.#xch;
  }

  /**
   * Every domain, in domid order (up to `max`).
   *
   * @throws {XenError} when the call fails.
   */
  listDomains(max = 256): DomainInfo[] {
    // reused: a downtime probe calls this every few milliseconds
    if (this.#listBuf.length !== DOMAININFO.size * max) {
      this.#listBuf = new Uint8Array(DOMAININFO.size * max);
    }
    const buf = this.#listBuf;
    const n = unwrap(
      xenctrl().xc_domain_getinfolist(this.handle, 0, max, buf),
      {
        library: LIB,
        call: "xc_domain_getinfolist",
        what: "Cannot list domains",
      },
    );
    const out: DomainInfo[] = [];
    for (let i = 0; i < n; i++) {
      out.push(decodeDomainInfo(buf, i * DOMAININFO.size));
    }
    return out;
  }

  /**
   * Information about one domain.
   *
   * @throws {XenError} when the call fails or the domain does not exist.
   */
  domainInfo(domid: number): DomainInfo {
    const buf = new Uint8Array(DOMAININFO.size);
    const n = unwrap(
      xenctrl().xc_domain_getinfolist(this.handle, domid, 1, buf),
      {
        library: LIB,
        call: "xc_domain_getinfolist",
        what: `Cannot get information on domain "${domid}"`,
      },
    );
    const info = decodeDomainInfo(buf);
    if (n < 1 || info.domid !== domid) {
      throw new XenError(
        LIB,
        "xc_domain_getinfolist",
        `No domain "${domid}": xc_domain_getinfolist returned ${
          n < 1 ? "nothing" : `domain ${info.domid}`
        }`,
        0,
      );
    }
    return info;
  }

  /** Pauses a domain. @throws {XenError} */
  pause(domid: number): void {
    unwrap(xenctrl().xc_domain_pause(this.handle, domid), {
      library: LIB,
      call: "xc_domain_pause",
      what: `Cannot pause domain "${domid}"`,
    });
  }

  /** Unpauses a domain. @throws {XenError} */
  unpause(domid: number): void {
    unwrap(xenctrl().xc_domain_unpause(this.handle, domid), {
      library: LIB,
      call: "xc_domain_unpause",
      what: `Cannot unpause domain "${domid}"`,
    });
  }

  /** The highest guest pfn of a domain (the pfn space is this + 1). @throws {XenError} */
  maximumGpfn(domid: number): number {
    const out = new BigUint64Array(1);
    unwrap(
      xenctrl().xc_domain_maximum_gpfn(
        this.handle,
        domid,
        new Uint8Array(out.buffer),
      ),
      {
        library: LIB,
        call: "xc_domain_maximum_gpfn",
        what: `Cannot get the pfn space of domain "${domid}"`,
      },
    );
    return Number(out[0]);
  }

  /**
   * A shadow operation without a bitmap (`OFF`, `ENABLE_LOGDIRTY`).
   * @throws {XenError}
   */
  shadowControl(domid: number, op: number, mode = 0): void {
    unwrap(
      xenctrl().xc_shadow_control(this.handle, domid, op, null, mode),
      {
        library: LIB,
        call: "xc_shadow_control",
        what: `Cannot run shadow op ${op} on domain "${domid}"`,
      },
    );
  }

  /** Allocates a dirty bitmap for `pfns` pfns in a hypercall buffer. @throws {XenError} */
  allocDirtyBitmap(pfns: number): DirtyBitmap {
    return new DirtyBitmap(this.handle, pfns);
  }

  /**
   * Log-dirty CLEAN (read and reset) or PEEK (read) into `bitmap`.
   *
   * @returns Hypervisor stats: pages dirtied and faults since the last CLEAN.
   * @throws {XenError}
   */
  logDirty(
    domid: number,
    op: typeof ShadowOp.CLEAN | typeof ShadowOp.PEEK,
    bitmap: DirtyBitmap,
    mode = 0,
  ): { dirtyCount: number; faultCount: number } {
    const stats = new Uint8Array(SHADOW_STATS_BYTES);
    unwrap(
      xenctrl().xc_logdirty_control(
        this.handle,
        domid,
        op,
        bitmap.descriptor,
        BigInt(bitmap.pfns),
        mode,
        stats,
      ),
      {
        library: LIB,
        call: "xc_logdirty_control",
        what: `Cannot read the dirty bitmap of domain "${domid}"`,
      },
    );
    const v = new DataView(stats.buffer);
    return {
      faultCount: v.getUint32(0, true),
      dirtyCount: v.getUint32(4, true),
    };
  }

  /** Closes the interface (idempotent). */
  close(): void {
    if (!this.#xch) return;
    const xch = this.#xch;
    this.#xch = null;
    xenctrl().xc_interface_close(xch);
  }
}

/**
 * Opens the hypervisor interface (`xc_interface_open(NULL, NULL, 0)`).
 * libxenctrl logs its own failure to stderr first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { XenError } from "./errors.ts";
 * import { openXenctrl } from "./xenctrl.ts";
 * import { FfiError } from "../mod.ts";
 *
 * try {
 *   openXenctrl().close();
 * } catch (e) {
 *   assert.ok(e instanceof FfiError);
 *   if (e instanceof XenError) assert.match(e.message, /^Not a Xen dom0: /);
 * }
 * ```
 * @throws {XenError} `Not a Xen dom0: cannot open /dev/xen/privcmd (...)`
 *   off a dom0 or without root; {@link FfiError} when libxenctrl is missing.
 */
export function openXenctrl(): XenCtrl {
  libc(); // loaded before the call, so loading it cannot clobber errno
  const xch = xenctrl().xc_interface_open(null, null, 0);
  if (xch === null) throw notDom0Error(LIB, "xc_interface_open");
  return new XenCtrl(xch);
}
