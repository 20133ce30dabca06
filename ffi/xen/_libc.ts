/**
 * The few libc symbols the Xen bindings need: `errno` (through glibc's
 * `__errno_location`), its text (`strerror`) and `free` for buffers that
 * libxenstore hands back. `HAKOBU_LIBC` overrides the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec } from "../_library.ts";

/** The libc symbols hakobu's Xen bindings use. */
export const LIBC_SYMBOLS = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libc is looked for: `HAKOBU_LIBC`, else `libc.so.6`. */
export const LIBC_LIBRARY: LibrarySpec<typeof LIBC_SYMBOLS> = {
  name: "libc",
  envVar: "HAKOBU_LIBC",
  candidates: ["libc.so.6"],
  install: "apt-get install libc6",
  symbols: LIBC_SYMBOLS,
};

/**
 * The libc symbols, loading libc on first call.
 *
 * @example
 * ```ts
 * libc().strerror(2); // pointer to "No such file or directory"
 * ```
 */
export const libc: () => Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"] =
  lazyLibrary(LIBC_LIBRARY);

/**
 * The calling thread's `errno` right now. Read it straight after the failed
 * call: a synchronous FFI call runs on the JS thread, so this is that call's
 * errno (a `nonblocking` call's errno is lost with its pool thread).
 *
 * @example
 * ```ts
 * const e = errno(); // e.g. 2
 * ```
 */
export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}

/**
 * `strerror(code)`, e.g. `"No such file or directory"` for 2.
 *
 * @example
 * ```ts
 * errnoText(13); // "Permission denied"
 * ```
 */
export function errnoText(code: number): string {
  const p = libc().strerror(code);
  return p === null ? `errno ${code}` : Deno.UnsafePointerView.getCString(p);
}
