/**
 * The few libc symbols the Xen bindings need: `errno` (through glibc's
 * `__errno_location`), its text (`strerror`), `free` for buffers that
 * libxenstore hands back, and `mkfifo`/`open`/`close` for the pipe that
 * `xc_domain_save` writes its stream into (Deno exposes no raw fds). `HAKOBU_LIBC` overrides the library path.
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
  // int open(const char *pathname, int flags, ...); (called without a mode)
  open: { parameters: ["buffer", "i32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int mkfifo(const char *pathname, mode_t mode);
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
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

/** `O_WRONLY | O_CLOEXEC` (x86-64 Linux): a write end that child processes do not inherit. */
export const O_WRONLY_CLOEXEC = 0o1 | 0o2000000;

/**
 * Makes a FIFO at `path` (mode 0600).
 *
 * @example
 * ```ts
 * makeFifo("/tmp/hakobu-save.fifo");
 * ```
 * @throws {Error} naming the path and errno text when mkfifo fails.
 */
export function makeFifo(path: string): void {
  if (libc().mkfifo(new TextEncoder().encode(path + "\0"), 0o600) !== 0) {
    const e = errno();
    throw new Error(`Cannot make the FIFO "${path}": ${errnoText(e)}`);
  }
}

/**
 * Opens `path` for writing with `open(2)` and returns the raw fd (blocks
 * until a reader opens a FIFO, so call it off the main thread).
 *
 * @example
 * ```ts
 * const fd = openForWriting("/tmp/hakobu-save.fifo");
 * closeFd(fd);
 * ```
 * @throws {Error} naming the path and errno text.
 */
export function openForWriting(path: string): number {
  const fd = libc().open(
    new TextEncoder().encode(path + "\0"),
    O_WRONLY_CLOEXEC,
  );
  if (fd < 0) {
    const e = errno();
    throw new Error(`Cannot open "${path}" for writing: ${errnoText(e)}`);
  }
  return fd;
}

/**
 * Closes a raw fd from {@link openForWriting}.
 *
 * @example
 * ```ts
 * closeFd(fd);
 * ```
 */
export function closeFd(fd: number): void {
  libc().close(fd);
}
