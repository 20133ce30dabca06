/**
 * Helpers shared by the sim tests (not part of the public API).
 */

import { createHash } from "node:crypto";
import { SimVm } from "./sim_vm.ts";
import type { Region } from "./workloads/workload.ts";

/** Result of {@link runWorkload}: the paused VM and the pages it dirtied. */
export interface WorkloadRun {
  readonly vm: SimVm;
  readonly dirty: Uint32Array;
  /** Memory right after dirty logging started (before the measured writes). */
  readonly before: Uint8Array;
}

/**
 * Creates a VM, starts dirty logging, snapshots memory, lets the workload run
 * for `ms`, pauses and syncs. The caller closes `vm`.
 */
export async function runWorkload(
  workload: string,
  opts: {
    memoryBytes?: number;
    ms?: number;
    dirtyRate?: number;
    seed?: number;
  } = {},
): Promise<WorkloadRun> {
  const vm = await SimVm.create({
    memoryBytes: opts.memoryBytes ?? 16 << 20,
    workload,
    seed: opts.seed,
    dirtyRate: opts.dirtyRate,
  });
  try {
    await vm.pause();
    await vm.startDirtyLog();
    const before = vm.memory.slice();
    await vm.resume();
    await sleep(opts.ms ?? 300);
    await vm.pause();
    const out = new Uint32Array(vm.pageCount);
    const n = vm.syncDirty(out);
    return { vm, dirty: out.slice(0, n), before };
  } catch (e) {
    await vm.close();
    throw e;
  }
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A content key for a page (SHA-1 hex): equal pages, equal keys. */
export function pageKey(page: Uint8Array): string {
  return createHash("sha1").update(page).digest("hex");
}

/** Whether every byte of `page` is zero. */
export function isZero(page: Uint8Array): boolean {
  const w = new Int32Array(page.buffer, page.byteOffset, page.length / 4);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
  return true;
}

/** The region of `vm` called `name`. */
export function regionOf(vm: SimVm, name: string): Region {
  const r = vm.regions.find((x) => x.name === name);
  if (!r) throw new Error(`No region "${name}" in ${vm.description}`);
  return r;
}

/** Whether `pfn` lies in `r`. */
export function inRegion(r: Region, pfn: number): boolean {
  return pfn >= r.start && pfn < r.start + r.count;
}

/** Content statistics of a memory image: zero pages and pages whose content occurs more than once. */
export function pageStats(
  memory: Uint8Array,
  pageSize = 4096,
): { zero: number; duplicate: number; total: number } {
  const counts = new Map<string, number>();
  let zero = 0;
  const total = memory.length / pageSize;
  for (let p = 0; p < total; p++) {
    const page = memory.subarray(p * pageSize, (p + 1) * pageSize);
    if (isZero(page)) {
      zero++;
      continue;
    }
    const k = pageKey(page);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  let duplicate = 0;
  for (const c of counts.values()) if (c > 1) duplicate += c;
  return { zero, duplicate, total };
}
