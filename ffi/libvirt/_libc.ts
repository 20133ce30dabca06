/**
 * The few libc symbols the libvirt binding needs: `free` for the strings
 * and arrays libvirt hands back (its documentation says to release them
 * with `free()`), and `dlopen`/`dlsym` to find the address of one libvirt
 * function to install as its error handler (`libvirt.ts`). glibc 2.34 and
 * later export `dlopen`/`dlsym` from libc itself. `HAKOBU_LIBC` overrides
 * the library path.
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec } from "../_library.ts";

/** The libc symbols the libvirt binding uses. */
export const LIBC_SYMBOLS = {
  // void free(void *ptr);
  free: { parameters: ["pointer"], result: "void" },
  // void *dlopen(const char *filename, int flags);
  dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
  // void *dlsym(void *handle, const char *symbol);
  dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libc is looked for: `HAKOBU_LIBC`, else `libc.so.6`. */
export const LIBC_LIBRARY: LibrarySpec<typeof LIBC_SYMBOLS> = {
  name: "libc",
  envVar: "HAKOBU_LIBC",
  candidates: ["libc.so.6"],
  install: "apt-get install libc6",
  symbols: LIBC_SYMBOLS,
};

/** `RTLD_NOW` (dlfcn.h, Linux). */
export const RTLD_NOW = 2;
/** `RTLD_NOLOAD` (dlfcn.h, Linux): only return a handle to a library already loaded. */
export const RTLD_NOLOAD = 4;

/** The libc symbols, loading libc on first call. */
export const libcSymbols: () => Deno.DynamicLibrary<
  typeof LIBC_SYMBOLS
>["symbols"] = lazyLibrary(LIBC_LIBRARY);

/**
 * Reads the C string at `p` and frees it with `free()`; `null` for NULL.
 */
export function takeCString(p: Deno.PointerValue): string | null {
  if (p === null) return null;
  try {
    return Deno.UnsafePointerView.getCString(p);
  } finally {
    libcSymbols().free(p);
  }
}
