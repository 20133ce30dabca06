/**
 * Binding to libxenguest (Xen 4.17, Debian `libxenmisc4.17`): the libxc
 * save loop `xc_domain_save` and its `struct save_callbacks`, whose
 * `precopy_policy` lets hakobu decide each pre-copy round from a TS plan.
 * `HAKOBU_LIBXENGUEST` overrides the library path.
 *
 * `xc_domain_save` blocks for the whole migration and calls
 * `precopy_policy` synchronously on the calling thread, so it must not run
 * on the main JS thread: `engine/xen/_save_worker.ts` runs it in a Worker (the worker's
 * thread blocks in C; the callback runs re-entrantly on that same thread
 * and asks the main thread's plan through shared memory).
 *
 * @module
 */

import { lazyLibrary, type LibrarySpec, openLibrary } from "../_library.ts";

/** `struct precopy_stats` by value, as Deno FFI describes it: `{unsigned iteration; unsigned long total_written; long dirty_count;}`. */
export const PRECOPY_STATS_STRUCT = {
  struct: ["u32", "u64", "i64"],
} as const satisfies Deno.NativeStructType;

/**
 * `struct precopy_stats` (xenguest.h) on x86-64: `iteration` u32 at 0,
 * `total_written` u64 at 8, `dirty_count` i64 at 16 (-1 if unknown); 24 bytes.
 */
export const PRECOPY_STATS = {
  size: 24,
  iteration: 0,
  totalWritten: 8,
  dirtyCount: 16,
} as const;

/** `typedef int (*precopy_policy_t)(struct precopy_stats, void *);` */
export const PRECOPY_POLICY_DEF = {
  parameters: [PRECOPY_STATS_STRUCT, "pointer"],
  result: "i32",
} as const satisfies Deno.UnsafeCallbackDefinition;

/** `int (*suspend)(void *data);`: suspend the guest; 1 = done, 0 = failed. */
export const SUSPEND_DEF = {
  parameters: ["pointer"],
  result: "i32",
} as const satisfies Deno.UnsafeCallbackDefinition;

/**
 * `int (*switch_qemu_logdirty)(uint32_t domid, unsigned enable, void *data);`:
 * libxc asserts it is set for HVM-container guests (HVM and PVH); 0 = done.
 */
export const SWITCH_QEMU_LOGDIRTY_DEF = {
  parameters: ["u32", "u32", "pointer"],
  result: "i32",
} as const satisfies Deno.UnsafeCallbackDefinition;

/** The libxenguest symbols hakobu uses. */
export const XENGUEST_SYMBOLS = {
  // int xc_domain_save(xc_interface *xch, int io_fd, uint32_t dom, uint32_t flags, struct save_callbacks *callbacks, xc_stream_type_t stream_type, int recv_fd);
  xc_domain_save: {
    parameters: ["pointer", "i32", "u32", "u32", "buffer", "i32", "i32"],
    result: "i32",
  },
  // int xc_domain_resume(xc_interface *xch, uint32_t domid, int fast);
  xc_domain_resume: { parameters: ["pointer", "u32", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** Where libxenguest is looked for. */
export const XENGUEST_LIBRARY: LibrarySpec<typeof XENGUEST_SYMBOLS> = {
  name: "libxenguest",
  envVar: "HAKOBU_LIBXENGUEST",
  candidates: ["libxenguest.so.4.17", "libxenguest.so"],
  install: "apt-get install libxenmisc4.17 (Debian bookworm)",
  symbols: XENGUEST_SYMBOLS,
};

/**
 * The libxenguest symbols, loading the library on first call.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { xenguest } from "./xenguest.ts";
 *
 * try {
 *   const { xc_domain_save } = xenguest();
 *   assert.equal(typeof xc_domain_save, "function");
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export const xenguest: () => Deno.DynamicLibrary<
  typeof XENGUEST_SYMBOLS
>["symbols"] = lazyLibrary(XENGUEST_LIBRARY);

/**
 * Opens libxenguest now from an explicit path (tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FfiError } from "../mod.ts";
 * import { openXenguestLibrary } from "./xenguest.ts";
 *
 * try {
 *   openXenguestLibrary().close(); // the default sonames
 * } catch (e) {
 *   assert.ok(e instanceof FfiError); // libxen is not installed here
 * }
 * ```
 */
export function openXenguestLibrary(
  path?: string,
): Deno.DynamicLibrary<typeof XENGUEST_SYMBOLS> {
  return openLibrary(XENGUEST_LIBRARY, { path });
}

/** `XGS_POLICY_*`: what `precopy_policy` returns. */
export const XgsPolicy = {
  ABORT: -1,
  CONTINUE_PRECOPY: 0,
  STOP_AND_COPY: 1,
} as const;

/** `XCFLAGS_*` of `xc_domain_save`. */
export const XcFlags = { LIVE: 1, DEBUG: 2 } as const;

/** `xc_stream_type_t`. */
export const XcStreamType = { PLAIN: 0, REMUS: 1, COLO: 2 } as const;

/**
 * `struct save_callbacks` (xenguest.h, Xen 4.17) on x86-64: seven pointers,
 * 56 bytes: `suspend` 0, `precopy_policy` 8, `postcopy` 16, `checkpoint`
 * 24, `wait_checkpoint` 32, `switch_qemu_logdirty` 40, `data` 48.
 */
export const SAVE_CALLBACKS = {
  size: 56,
  suspend: 0,
  precopyPolicy: 8,
  postcopy: 16,
  checkpoint: 24,
  waitCheckpoint: 32,
  switchQemuLogdirty: 40,
  data: 48,
} as const;

/** The decoded `struct precopy_stats`. */
export interface PrecopyStats {
  /** Pre-copy iteration, 0 first. */
  readonly iteration: number;
  /** Pages written so far. */
  readonly totalWritten: number;
  /** Pages dirty now, or -1 when unknown (between sending and the next CLEAN). */
  readonly dirtyCount: number;
}

/**
 * Encodes `struct precopy_stats` (for a fake C caller in tests).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodePrecopyStats, PRECOPY_STATS } from "./xenguest.ts";
 *
 * const bytes = encodePrecopyStats({
 *   iteration: 1,
 *   totalWritten: 5,
 *   dirtyCount: -1,
 * });
 * assert.equal(bytes.length, PRECOPY_STATS.size); // 24: u32 (padded), u64, i64
 * assert.equal(new DataView(bytes.buffer).getBigInt64(16, true), -1n);
 * ```
 */
export function encodePrecopyStats(s: PrecopyStats): Uint8Array {
  const out = new Uint8Array(PRECOPY_STATS.size);
  const v = new DataView(out.buffer);
  v.setUint32(PRECOPY_STATS.iteration, s.iteration, true);
  v.setBigUint64(PRECOPY_STATS.totalWritten, BigInt(s.totalWritten), true);
  v.setBigInt64(PRECOPY_STATS.dirtyCount, BigInt(s.dirtyCount), true);
  return out;
}

/**
 * Decodes `struct precopy_stats` as a callback receives it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodePrecopyStats, encodePrecopyStats } from "./xenguest.ts";
 *
 * const stats = { iteration: 2, totalWritten: 9, dirtyCount: 3 };
 * assert.deepEqual(decodePrecopyStats(encodePrecopyStats(stats)), stats);
 * ```
 */
export function decodePrecopyStats(bytes: Uint8Array): PrecopyStats {
  const v = new DataView(bytes.buffer, bytes.byteOffset, PRECOPY_STATS.size);
  return {
    iteration: v.getUint32(PRECOPY_STATS.iteration, true),
    totalWritten: Number(v.getBigUint64(PRECOPY_STATS.totalWritten, true)),
    dirtyCount: Number(v.getBigInt64(PRECOPY_STATS.dirtyCount, true)),
  };
}

/** The callbacks {@link encodeSaveCallbacks} fills in (the rest stay NULL). */
export interface SaveCallbackPointers {
  /** `precopy_policy`. */
  readonly precopyPolicy: Deno.PointerValue;
  /** `suspend` (needed by a real save). */
  readonly suspend?: Deno.PointerValue;
  /** `switch_qemu_logdirty` (needed for HVM and PVH guests). */
  readonly switchQemuLogdirty?: Deno.PointerValue;
  /** `data`, passed back to each callback. */
  readonly data?: Deno.PointerValue;
}

/**
 * Builds a `struct save_callbacks`; libxc treats NULL callbacks as absent
 * (but calls `suspend` unconditionally and asserts `switch_qemu_logdirty`
 * for HVM and PVH guests, so a real save sets both).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   encodeSaveCallbacks,
 *   PRECOPY_POLICY_DEF,
 *   SAVE_CALLBACKS,
 *   XgsPolicy,
 * } from "./xenguest.ts";
 *
 * const cb = new Deno.UnsafeCallback(
 *   PRECOPY_POLICY_DEF,
 *   () => XgsPolicy.CONTINUE_PRECOPY,
 * );
 * try {
 *   const callbacks = encodeSaveCallbacks({ precopyPolicy: cb.pointer });
 *   const view = new DataView(callbacks.buffer);
 *   assert.equal(callbacks.length, SAVE_CALLBACKS.size);
 *   assert.equal(
 *     view.getBigUint64(SAVE_CALLBACKS.precopyPolicy, true),
 *     BigInt(Deno.UnsafePointer.value(cb.pointer)),
 *   );
 *   assert.equal(view.getBigUint64(SAVE_CALLBACKS.suspend, true), 0n); // NULL
 * } finally {
 *   cb.close();
 * }
 * ```
 */
export function encodeSaveCallbacks(c: SaveCallbackPointers): Uint8Array {
  const out = new Uint8Array(SAVE_CALLBACKS.size);
  const v = new DataView(out.buffer);
  const put = (offset: number, p: Deno.PointerValue | undefined) =>
    v.setBigUint64(offset, BigInt(Deno.UnsafePointer.value(p ?? null)), true);
  put(SAVE_CALLBACKS.suspend, c.suspend);
  put(SAVE_CALLBACKS.precopyPolicy, c.precopyPolicy);
  put(SAVE_CALLBACKS.switchQemuLogdirty, c.switchQemuLogdirty);
  put(SAVE_CALLBACKS.data, c.data);
  return out;
}
