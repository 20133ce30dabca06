/**
 * Binding to libxenstore (Debian `libxenstore4`): read and write nodes and
 * watch them. `xs_read_watch` blocks until a watch fires, so it is bound
 * `nonblocking` (it runs on Deno's blocking pool and returns a Promise).
 * `HAKOBU_LIBXENSTORE` overrides the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "../_library.ts";
import { errno, errnoText, libc } from "./_libc.ts";
import { DOM0_FIX, unwrap, XenError, xenError } from "./errors.ts";

/** The libxenstore symbols hakobu uses. */
export const XENSTORE_SYMBOLS = {
  // struct xs_handle *xs_open(unsigned long flags);
  xs_open: { parameters: ["u64"], result: "pointer" },
  // void xs_close(struct xs_handle *xsh);
  xs_close: { parameters: ["pointer"], result: "void" },
  // void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path, unsigned int *len);
  xs_read: {
    parameters: ["pointer", "u32", "buffer", "buffer"],
    result: "pointer",
  },
  // bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *path, const void *data, unsigned int len);
  xs_write: {
    parameters: ["pointer", "u32", "buffer", "buffer", "u32"],
    result: "bool",
  },
  // bool xs_watch(struct xs_handle *h, const char *path, const char *token);
  xs_watch: { parameters: ["pointer", "buffer", "buffer"], result: "bool" },
  // char **xs_read_watch(struct xs_handle *h, unsigned int *num);
  xs_read_watch: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
    nonblocking: true,
  },
  // bool xs_resume_domain(struct xs_handle *h, unsigned int domid);
  xs_resume_domain: { parameters: ["pointer", "u32"], result: "bool" },
  // int xs_fileno(struct xs_handle *h);
  xs_fileno: { parameters: ["pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxenstore is looked for. */
export const XENSTORE_LIBRARY: LibrarySpec<typeof XENSTORE_SYMBOLS> = {
  name: "libxenstore",
  envVar: "HAKOBU_LIBXENSTORE",
  candidates: ["libxenstore.so.4", "libxenstore.so"],
  install: "apt-get install libxenstore4",
  symbols: XENSTORE_SYMBOLS,
};

/**
 * The libxenstore symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { xenstore } from "./xenstore.ts";
 *
 * try {
 *   const { xs_open } = xenstore();
 *   assert.equal(typeof xs_open, "function");
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export const xenstore: () => Deno.DynamicLibrary<
  typeof XENSTORE_SYMBOLS
>["symbols"] = lazyLibrary(XENSTORE_LIBRARY);

/**
 * Opens libxenstore now from an explicit path (tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenstoreLibrary } from "./xenstore.ts";
 *
 * try {
 *   openXenstoreLibrary().close(); // the default sonames
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export function openXenstoreLibrary(
  path?: string,
): Deno.DynamicLibrary<typeof XENSTORE_SYMBOLS> {
  return openLibrary(XENSTORE_LIBRARY, { path });
}

/** `XS_TRANSACTION_NULL`. */
export const XS_TRANSACTION_NULL = 0;

const LIB = "libxenstore";
const enc = new TextEncoder();

function cstr(s: string): Uint8Array {
  return enc.encode(s + "\0");
}

/**
 * A connection to xenstored.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenstore } from "./xenstore.ts";
 *
 * try {
 *   const xs = openXenstore(); // on a dom0, as root
 *   try {
 *     assert.equal(xs.read("/local/domain/0/name"), "Domain-0");
 *     assert.equal(xs.read("/no/such/path"), null);
 *   } finally {
 *     xs.close();
 *   }
 * } catch (e) {
 *   assert.ok(e instanceof FfiError, String(e)); // "Not a Xen dom0: ..."
 * }
 * ```
 */
export class XenStore {
  #h: Deno.PointerObject | null;

  /** @internal Use {@link openXenstore}. */
  constructor(h: Deno.PointerObject) {
    this.#h = h;
  }

  /** A node's value, or `null` when it does not exist. @throws {XenError} on other failures. */
  read(path: string): string | null {
    const len = new Uint32Array(1);
    const p = xenstore().xs_read(
      this.#handle(),
      XS_TRANSACTION_NULL,
      cstr(path),
      new Uint8Array(len.buffer),
    );
    if (p === null) {
      const code = errno();
      if (code === 2) return null;
      throw new XenError(
        LIB,
        "xs_read",
        `Cannot read xenstore node "${path}": xs_read failed (${
          errnoText(code)
        })`,
        code,
      );
    }
    const bytes = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(p, len[0]),
    ).slice();
    libc().free(p);
    return new TextDecoder().decode(bytes);
  }

  /** Writes a node. @throws {XenError} */
  write(path: string, value: string): void {
    const data = enc.encode(value);
    unwrap(
      xenstore().xs_write(
        this.#handle(),
        XS_TRANSACTION_NULL,
        cstr(path),
        data,
        data.length,
      ),
      { library: LIB, call: "xs_write", what: `Cannot write "${path}"` },
    );
  }

  /** Watches a node and its children; events come from {@link readWatch}. @throws {XenError} */
  watch(path: string, token: string): void {
    unwrap(xenstore().xs_watch(this.#handle(), cstr(path), cstr(token)), {
      library: LIB,
      call: "xs_watch",
      what: `Cannot watch "${path}"`,
    });
  }

  /**
   * Waits for the next watch event (on Deno's blocking pool).
   *
   * @returns The path that changed and the watch's token.
   * @throws {XenError} when the connection fails (errno is not available
   *   from the pool thread).
   */
  async readWatch(): Promise<{ path: string; token: string }> {
    const num = new Uint32Array(1);
    const p = await xenstore().xs_read_watch(
      this.#handle(),
      new Uint8Array(num.buffer),
    );
    if (p === null) {
      throw new XenError(
        LIB,
        "xs_read_watch",
        "Cannot read a xenstore watch event: xs_read_watch returned NULL",
        0,
      );
    }
    const v = new Deno.UnsafePointerView(p);
    const at = (i: number): string => {
      const s = Deno.UnsafePointer.create(v.getBigUint64(i * 8));
      return s === null ? "" : Deno.UnsafePointerView.getCString(s);
    };
    const event = { path: at(0), token: at(1) };
    libc().free(p);
    return event;
  }

  /**
   * Tells xenstored a suspended domain runs again (after a cancelled
   * save), so its shutdown watches fire again. @throws {XenError}
   */
  resumeDomain(domid: number): void {
    unwrap(xenstore().xs_resume_domain(this.#handle(), domid), {
      library: LIB,
      call: "xs_resume_domain",
      what: `Cannot tell xenstored that domain "${domid}" resumed`,
    });
  }

  /** The fd that becomes readable when a watch fires. */
  fileno(): number {
    return unwrap(xenstore().xs_fileno(this.#handle()), {
      library: LIB,
      call: "xs_fileno",
      what: "Cannot get the xenstore watch fd",
    });
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (!this.#h) return;
    const h = this.#h;
    this.#h = null;
    xenstore().xs_close(h);
  }

  #handle(): Deno.PointerObject {
    if (!this.#h) throw new RangeError("The xenstore connection is closed");
    return this.#h;
  }
}

/**
 * Connects to xenstored (`xs_open(0)`: the socket, else the xenbus device).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { XenError } from "./errors.ts";
 * import { openXenstore } from "./xenstore.ts";
 *
 * try {
 *   openXenstore().close();
 * } catch (e) {
 *   assert.ok(e instanceof FfiError);
 *   if (e instanceof XenError) assert.match(e.message, /^Not a Xen dom0: /);
 * }
 * ```
 * @throws {XenError} `Not a Xen dom0: cannot connect to xenstored (...)` off a dom0.
 */
export function openXenstore(): XenStore {
  libc();
  const h = xenstore().xs_open(0n);
  if (h === null) {
    const e = xenError(LIB, "xs_open", "x");
    throw new XenError(
      LIB,
      "xs_open",
      `Not a Xen dom0: cannot connect to xenstored (${
        e.errnoText || "no errno"
      }): ${DOM0_FIX}`,
      e.errno,
    );
  }
  return new XenStore(h);
}
