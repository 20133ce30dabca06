/**
 * Binding to libxenforeignmemory (Xen 4.7+ API, Debian
 * `libxenforeignmemory1`): map a foreign domain's pages into this process.
 * `HAKOBU_LIBXENFOREIGNMEMORY` overrides the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "../_library.ts";
import { libc } from "./_libc.ts";
import { unwrap, xenError } from "./errors.ts";
import { notDom0Error } from "./xenctrl.ts";

/** The libxenforeignmemory symbols hakobu uses. */
export const XENFOREIGNMEMORY_SYMBOLS = {
  // xenforeignmemory_handle *xenforeignmemory_open(struct xentoollog_logger *logger, unsigned open_flags);
  xenforeignmemory_open: { parameters: ["pointer", "u32"], result: "pointer" },
  // int xenforeignmemory_close(xenforeignmemory_handle *fmem);
  xenforeignmemory_close: { parameters: ["pointer"], result: "i32" },
  // void *xenforeignmemory_map(xenforeignmemory_handle *fmem, uint32_t dom, int prot, size_t pages, const xen_pfn_t arr[], int err[]);
  xenforeignmemory_map: {
    parameters: ["pointer", "u32", "i32", "usize", "buffer", "buffer"],
    result: "pointer",
  },
  // int xenforeignmemory_unmap(xenforeignmemory_handle *fmem, void *addr, size_t pages);
  xenforeignmemory_unmap: {
    parameters: ["pointer", "pointer", "usize"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxenforeignmemory is looked for. */
export const XENFOREIGNMEMORY_LIBRARY: LibrarySpec<
  typeof XENFOREIGNMEMORY_SYMBOLS
> = {
  name: "libxenforeignmemory",
  envVar: "HAKOBU_LIBXENFOREIGNMEMORY",
  candidates: ["libxenforeignmemory.so.1", "libxenforeignmemory.so"],
  install: "apt-get install libxenforeignmemory1",
  symbols: XENFOREIGNMEMORY_SYMBOLS,
};

/**
 * The libxenforeignmemory symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { xenforeignmemory } from "./xenforeignmemory.ts";
 *
 * try {
 *   const { xenforeignmemory_open } = xenforeignmemory();
 *   assert.equal(typeof xenforeignmemory_open, "function");
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export const xenforeignmemory: () => Deno.DynamicLibrary<
  typeof XENFOREIGNMEMORY_SYMBOLS
>["symbols"] = lazyLibrary(XENFOREIGNMEMORY_LIBRARY);

/**
 * Opens libxenforeignmemory now from an explicit path (tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenforeignmemoryLibrary } from "./xenforeignmemory.ts";
 *
 * try {
 *   openXenforeignmemoryLibrary().close(); // the default sonames
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export function openXenforeignmemoryLibrary(
  path?: string,
): Deno.DynamicLibrary<typeof XENFOREIGNMEMORY_SYMBOLS> {
  return openLibrary(XENFOREIGNMEMORY_LIBRARY, { path });
}

/** `PROT_READ` / `PROT_WRITE` of mmap(2). */
export const Prot = { READ: 1, WRITE: 2 } as const;

const LIB = "libxenforeignmemory";

/** A mapping of foreign pages: `bytes` aliases guest memory until {@link ForeignMemory.unmap}. */
export interface ForeignMapping {
  /** The mapped address. */
  readonly address: Deno.PointerObject;
  /** Pages mapped. */
  readonly pages: number;
  /** `pages * 4096` bytes of guest memory. */
  readonly bytes: Uint8Array;
  /** Per-page result: 0 or a negative errno (a mapping may partially succeed). */
  readonly errors: Int32Array;
}

/**
 * An open `xenforeignmemory_handle`.
 *
 * @example
 * ```ts
 * import { openForeignMemory } from "./xenforeignmemory.ts";
 *
 * // Needs a Xen dom0 and maps a real domain's memory: the doc tests
 * // type-check this function and do not call it.
 * function firstBytes(domid: number): Uint8Array {
 *   const fm = openForeignMemory();
 *   try {
 *     const m = fm.map(domid, [0, 1, 2]);
 *     try {
 *       return m.bytes.slice(0, 16);
 *     } finally {
 *       fm.unmap(m);
 *     }
 *   } finally {
 *     fm.close();
 *   }
 * }
 * ```
 */
export class ForeignMemory {
  #h: Deno.PointerObject | null;

  /** @internal Use {@link openForeignMemory}. */
  constructor(h: Deno.PointerObject) {
    this.#h = h;
  }

  /**
   * Maps guest pfns of `domid` (read-only unless `prot` says otherwise).
   *
   * @throws {XenError} when nothing could be mapped.
   */
  map(
    domid: number,
    pfns: readonly number[] | BigUint64Array,
    prot: number = Prot.READ,
  ): ForeignMapping {
    const arr = pfns instanceof BigUint64Array
      ? pfns
      : BigUint64Array.from(pfns, (p) => BigInt(p));
    const errs = new Int32Array(arr.length);
    const p = xenforeignmemory().xenforeignmemory_map(
      this.#handle(),
      domid,
      prot,
      BigInt(arr.length),
      new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength),
      new Uint8Array(errs.buffer),
    );
    if (p === null) {
      throw xenError(
        LIB,
        "xenforeignmemory_map",
        `Cannot map ${arr.length} pages of domain "${domid}"`,
      );
    }
    return {
      address: p,
      pages: arr.length,
      bytes: new Uint8Array(
        Deno.UnsafePointerView.getArrayBuffer(p, arr.length * 4096),
      ),
      errors: errs,
    };
  }

  /** Unmaps a mapping; its `bytes` must not be used afterwards. @throws {XenError} */
  unmap(m: ForeignMapping): void {
    unwrap(
      xenforeignmemory().xenforeignmemory_unmap(
        this.#handle(),
        m.address,
        BigInt(m.pages),
      ),
      {
        library: LIB,
        call: "xenforeignmemory_unmap",
        what: `Cannot unmap ${m.pages} pages`,
      },
    );
  }

  /** Closes the handle (idempotent). */
  close(): void {
    if (!this.#h) return;
    const h = this.#h;
    this.#h = null;
    xenforeignmemory().xenforeignmemory_close(h);
  }

  #handle(): Deno.PointerObject {
    if (!this.#h) throw new RangeError("The foreign memory handle is closed");
    return this.#h;
  }
}

/**
 * Opens a foreign-memory handle.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { XenError } from "./errors.ts";
 * import { openForeignMemory } from "./xenforeignmemory.ts";
 *
 * try {
 *   openForeignMemory().close(); // on a dom0, as root
 * } catch (e) {
 *   assert.ok(e instanceof FfiError);
 *   if (e instanceof XenError) assert.match(e.message, /^Not a Xen dom0: /);
 * }
 * ```
 * @throws {XenError} `Not a Xen dom0: ...` off a dom0.
 */
export function openForeignMemory(): ForeignMemory {
  libc();
  const h = xenforeignmemory().xenforeignmemory_open(null, 0);
  if (h === null) throw notDom0Error(LIB, "xenforeignmemory_open");
  return new ForeignMemory(h);
}
