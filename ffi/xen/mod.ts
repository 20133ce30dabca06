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
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenctrl } from "./mod.ts";
 *
 * try {
 *   const xc = openXenctrl(); // on a dom0, as root
 *   try {
 *     assert.equal(xc.domainInfo(0).domid, 0); // dom0 itself
 *   } finally {
 *     xc.close();
 *   }
 * } catch (e) {
 *   // Elsewhere: XenError "Not a Xen dom0: ...", a FfiError without libxen.
 *   assert.ok(e instanceof FfiError, String(e));
 * }
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
