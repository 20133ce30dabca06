/**
 * A domain's dirty rate, measured the way libxc's save loop sees it:
 * enable log-dirty mode, CLEAN the bitmap, wait an interval, CLEAN again
 * and count the bits (PEEK first when log-dirty was already on, so a
 * running migration keeps its bits).
 *
 * @module
 */

import {
  type DirtyBitmap,
  openXenctrl,
  ShadowOp,
  type XenCtrl,
} from "../../ffi/xen/xenctrl.ts";
import { XenError } from "../../ffi/xen/errors.ts";
import { PAGE_SIZE } from "../plan.ts";

/** What {@link measureDirtyRate} reports. */
export interface DirtyRate {
  /** The domain measured. */
  readonly domid: number;
  /** Milliseconds measured. */
  readonly intervalMs: number;
  /** Distinct pages dirtied in the interval (bits set). */
  readonly dirtyPages: number;
  /** `dirtyPages * 4096 / seconds`. */
  readonly bytesPerSecond: number;
  /** Pages dirty per second. */
  readonly pagesPerSecond: number;
  /** The pfn space measured. */
  readonly pfns: number;
}

/** The log-dirty operations the measurement needs (the FFI, or a fake in tests). */
export interface LogDirtyOps {
  /** The highest guest pfn of a domain (the pfn space is this + 1). */
  maximumGpfn(domid: number): number;
  /** A shadow operation without a bitmap (`OFF`, `ENABLE_LOGDIRTY`). */
  shadowControl(domid: number, op: number): void;
  /** Allocates a dirty bitmap for `pfns` pfns. */
  allocDirtyBitmap(pfns: number): Pick<DirtyBitmap, "bits" | "free">;
  /** Log-dirty CLEAN (11: read and reset) or PEEK (12: read) into `bitmap`. */
  logDirty(
    domid: number,
    op: 11 | 12,
    bitmap: Pick<DirtyBitmap, "bits" | "free">,
  ): unknown;
}

/**
 * Bits set in a bitmap.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countDirty } from "@hakobu/hakobu";
 *
 * assert.equal(countDirty(new Uint8Array([0b1011, 0xff])), 3 + 8);
 * ```
 */
export function countDirty(bits: Uint8Array): number {
  let n = 0;
  const words = Math.floor(bits.length / 4);
  const w = new Uint32Array(bits.buffer, bits.byteOffset, words);
  for (let i = 0; i < words; i++) {
    let x = w[i];
    x = x - ((x >>> 1) & 0x55555555);
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    n += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  for (let i = words * 4; i < bits.length; i++) {
    let x = bits[i];
    while (x) {
      n += x & 1;
      x >>= 1;
    }
  }
  return n;
}

/** Options of {@link measureDirtyRate}. */
export interface DirtyRateOptions {
  /** Milliseconds to measure (default 1000). */
  readonly intervalMs?: number;
  /** The operations; default: {@link openXenctrl} (needs a dom0). */
  readonly ops?: LogDirtyOps;
}

/**
 * Measures how fast a domain dirties its memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type LogDirtyOps, measureDirtyRate } from "@hakobu/hakobu";
 *
 * // On a dom0, `measureDirtyRate(7)` uses libxenctrl (and fails with XenError
 * // `Not a Xen dom0: ...` elsewhere). Here, a fake domain of 1024 pages that
 * // dirties 256 of them between the two CLEANs:
 * let cleans = 0;
 * const ops: LogDirtyOps = {
 *   maximumGpfn: () => 1023,
 *   shadowControl: () => {},
 *   allocDirtyBitmap: (pfns) => ({
 *     bits: new Uint8Array(pfns / 8),
 *     free() {},
 *   }),
 *   logDirty: (_domid, _op, bitmap) => {
 *     bitmap.bits.fill(0).fill(0xff, 0, ++cleans === 2 ? 32 : 0);
 *   },
 * };
 * const r = await measureDirtyRate(7, { intervalMs: 20, ops });
 * assert.equal(r.pfns, 1024);
 * assert.equal(r.dirtyPages, 256);
 * assert.equal(r.bytesPerSecond, 256 * 4096 / (r.intervalMs / 1000));
 * ```
 * @throws {XenError} off a dom0 (`Not a Xen dom0: ...`) or when log-dirty fails.
 */
export async function measureDirtyRate(
  domid: number,
  options: DirtyRateOptions = {},
): Promise<DirtyRate> {
  const intervalMs = options.intervalMs ?? 1000;
  let xc: XenCtrl | null = null;
  const ops: LogDirtyOps = options.ops ?? (xc = openXenctrl());
  try {
    const pfns = ops.maximumGpfn(domid) + 1;
    let enabled = false;
    try {
      ops.shadowControl(domid, ShadowOp.ENABLE_LOGDIRTY);
      enabled = true;
    } catch (e) {
      // EBUSY: log-dirty is already on (a migration, or VRAM tracking).
      if (!(e instanceof XenError && e.errno === 16)) throw e;
    }
    const bitmap = ops.allocDirtyBitmap(pfns);
    try {
      const op = enabled ? ShadowOp.CLEAN : ShadowOp.PEEK;
      ops.logDirty(domid, op, bitmap);
      const before = enabled ? null : bitmap.bits.slice();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, intervalMs));
      ops.logDirty(domid, op, bitmap);
      const ms = performance.now() - t0;
      let dirty: number;
      if (before) {
        const now = bitmap.bits;
        const diff = new Uint8Array(now.length);
        for (let i = 0; i < now.length; i++) diff[i] = now[i] & ~before[i];
        dirty = countDirty(diff);
      } else dirty = countDirty(bitmap.bits);
      return {
        domid,
        intervalMs: ms,
        dirtyPages: dirty,
        pagesPerSecond: dirty / (ms / 1000),
        bytesPerSecond: dirty * PAGE_SIZE / (ms / 1000),
        pfns,
      };
    } finally {
      bitmap.free();
      if (enabled) ops.shadowControl(domid, ShadowOp.OFF);
    }
  } finally {
    xc?.close();
  }
}
