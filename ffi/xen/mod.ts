/**
 * Xen bindings (Xen 4.17, Debian bookworm sonames), one file per library:
 *
 * | file | library | override |
 * |---|---|---|
 * | `xenctrl.ts` | libxenctrl.so.4.17: domains, pause, pfn space, log-dirty | `HAKOBU_LIBXENCTRL` |
 * | `xenforeignmemory.ts` | libxenforeignmemory.so.1: map guest pages | `HAKOBU_LIBXENFOREIGNMEMORY` |
 * | `xenstore.ts` | libxenstore.so.4: read/write/watch | `HAKOBU_LIBXENSTORE` |
 * | `xenguest.ts` | libxenguest.so.4.17: `xc_domain_save` + `save_callbacks` | `HAKOBU_LIBXENGUEST` |
 * | `errors.ts` | {@link XenError} and `unwrap(rc, where)` | |
 *
 * Off a dom0 every handle-opening call throws a {@link XenError}
 * `Not a Xen dom0: cannot open /dev/xen/privcmd (...): run hakobu on a Xen dom0 as root`.
 *
 * @example
 * ```ts
 * import { openXenctrl } from "./ffi/xen/mod.ts";
 * const xc = openXenctrl();
 * xc.domainInfo(7).totPages;
 * ```
 *
 * @module
 */

export * from "./errors.ts";
export { errno, errnoText } from "./_libc.ts";
export * from "./xenctrl.ts";
export * from "./xenforeignmemory.ts";
export * from "./xenstore.ts";
export * from "./xenguest.ts";
