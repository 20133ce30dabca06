/**
 * Where a lab migration's CPU went, for bench:qemu: on a machine of few
 * cores a migration is as fast as the CPU it can get, so each row says how
 * many CPU-seconds the whole machine spent over the migration, how many of
 * them the guest's vCPUs took, how many QEMU's other threads took (the
 * source's migration thread, I/O threads, the destination loading the
 * stream), and the rest: the tunnels, the kernel's network path, the bench.
 * Read from `/proc/stat` and `/proc/PID/stat` (Linux, clock ticks of 1/100
 * s); the vCPU threads are told apart by name, which QEMU gives its threads
 * with `-name ...,debug-threads=on` (the lab's guests run with it).
 *
 * @module
 */

import {
  PROC_TICKS_PER_SECOND,
  procStatTimes,
} from "../../engine/proc_stat.ts";

/** Busy clock ticks of the whole machine, from `/proc/stat`'s first line (all but idle and iowait). */
export function machineBusyTicks(procStat: string): number {
  const line = procStat.split("\n", 1)[0];
  const f = line.trim().split(/\s+/);
  if (f[0] !== "cpu" || f.length < 8) {
    throw new Error(
      `Cannot read /proc/stat: its first line is "${line}", not "cpu USER NICE SYSTEM IDLE IOWAIT IRQ SOFTIRQ ..."`,
    );
  }
  const n = f.slice(1).map(Number);
  // user nice system idle iowait irq softirq steal [guest guest_nice]:
  // guest time is already inside user, so it is not added again
  return n[0] + n[1] + n[2] + n[5] + n[6] + (n[7] ?? 0);
}

/** Whether a QEMU thread runs a guest vCPU (`CPU 0/TCG`, `CPU 1/KVM`). */
export function isVcpuThread(comm: string): boolean {
  return /^CPU \d+\/[A-Z]+$/.test(comm);
}

/** One reading of the counters (see {@link sampleCpu}). */
export interface CpuSample {
  /** Busy ticks of the whole machine. */
  readonly machine: number;
  /** Ticks of the source QEMU's vCPU threads. */
  readonly guest: number;
  /** Ticks of every other thread of both QEMUs. */
  readonly qemu: number;
  /** Of which the source QEMU's (its migration and multifd threads, its main loop). */
  readonly qemuSource: number;
}

/** CPU-seconds between two samples (see {@link cpuBudget}). */
export interface CpuBudget {
  /** The whole machine. */
  readonly machineS: number;
  /** The source guest's vCPUs. */
  readonly guestS: number;
  /** Both QEMUs' other threads (migration thread, loading, I/O). */
  readonly qemuS: number;
  /** Of which the source's (the rest: the destination loading the stream). */
  readonly qemuSourceS: number;
  /** The rest: tunnels, the kernel's network path, the bench itself. */
  readonly otherS: number;
}

/**
 * A process's ticks, its vCPU threads' apart; a process that is gone counts
 * 0. The process's own line counts threads that already ended (QEMU's
 * migration and multifd threads end with the migration), the vCPU threads
 * live on and are read one by one.
 */
async function processTicks(
  pid: number | null,
): Promise<{ vcpu: number; other: number }> {
  const sum = { vcpu: 0, other: 0 };
  if (pid === null) return sum;
  try {
    const all = procStatTimes(await Deno.readTextFile(`/proc/${pid}/stat`));
    for await (const t of Deno.readDir(`/proc/${pid}/task`)) {
      const text = await Deno.readTextFile(`/proc/${pid}/task/${t.name}/stat`)
        .catch(() => null);
      if (text === null) continue; // the thread ended meanwhile
      const { comm, ticks } = procStatTimes(text);
      if (isVcpuThread(comm)) sum.vcpu += ticks;
    }
    sum.other = Math.max(0, all.ticks - sum.vcpu);
  } catch { /* gone */ }
  return sum;
}

/**
 * Reads the machine's busy time and the source and destination QEMUs'
 * thread times now.
 *
 * @example
 * ```ts ignore
 * const before = await sampleCpu(sourcePid, destinationPid);
 * // ... migrate ...
 * const budget = cpuBudget(before, await sampleCpu(sourcePid, destinationPid));
 * ```
 */
export async function sampleCpu(
  sourcePid: number | null,
  destinationPid: number | null,
): Promise<CpuSample> {
  const [src, dst, stat] = await Promise.all([
    processTicks(sourcePid),
    processTicks(destinationPid),
    Deno.readTextFile("/proc/stat"),
  ]);
  return {
    machine: machineBusyTicks(stat),
    guest: src.vcpu,
    qemu: src.other + dst.vcpu + dst.other,
    qemuSource: src.other,
  };
}

/**
 * CPU-seconds spent between two samples, by whom.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cpuBudget } from "./cpu_budget.ts";
 *
 * const b = cpuBudget(
 *   { machine: 1000, guest: 300, qemu: 50, qemuSource: 20 },
 *   { machine: 1400, guest: 400, qemu: 80, qemuSource: 30 },
 * );
 * assert.deepEqual(b, {
 *   machineS: 4,
 *   guestS: 1,
 *   qemuS: 0.3,
 *   qemuSourceS: 0.1,
 *   otherS: 2.7,
 * });
 * ```
 */
export function cpuBudget(before: CpuSample, after: CpuSample): CpuBudget {
  const machine = after.machine - before.machine;
  const guest = after.guest - before.guest;
  const qemu = after.qemu - before.qemu;
  const r = (ticks: number) => Math.round(ticks) / PROC_TICKS_PER_SECOND;
  return {
    machineS: r(machine),
    guestS: r(guest),
    qemuS: r(qemu),
    qemuSourceS: r(after.qemuSource - before.qemuSource),
    otherS: r(Math.max(0, machine - guest - qemu)),
  };
}
