/**
 * One line of Linux's `/proc/PID/stat` (or `/proc/PID/task/TID/stat`): a
 * process's or thread's name and CPU time.
 *
 * @module
 */

/** Clock ticks per second of `/proc` times (`getconf CLK_TCK`: 100 on Linux). */
export const PROC_TICKS_PER_SECOND = 100;

/** What {@link procStatTimes} reads from a stat line. */
export interface ProcStatTimes {
  /** The name (`comm`), e.g. `CPU 0/TCG` for a QEMU vCPU thread. */
  readonly comm: string;
  /** User + system clock ticks. */
  readonly ticks: number;
  /** User + system clock ticks of reaped children (a process line's; 0 in a thread's). */
  readonly childTicks: number;
}

/**
 * The name and CPU clock ticks of one `/proc/.../stat` line. The name may
 * hold spaces and parentheses, so the fields are counted from its last `)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { procStatTimes } from "./proc_stat.ts";
 *
 * const t = procStatTimes("42 (CPU 0/TCG) R 1 1 1 0 -1 0 0 0 0 0 123 45 6 7");
 * assert.deepEqual(t, { comm: "CPU 0/TCG", ticks: 168, childTicks: 13 });
 * ```
 *
 * @throws {Error} naming the line when it is not a stat line.
 */
export function procStatTimes(line: string): ProcStatTimes {
  const open = line.indexOf("(");
  const close = line.lastIndexOf(")");
  if (open < 0 || close < open) {
    throw new Error(`Cannot read a /proc stat line: "${line.slice(0, 80)}"`);
  }
  const f = line.slice(close + 2).split(" ");
  // after the name: state(0) ... utime(11) stime(12) cutime(13) cstime(14)
  return {
    comm: line.slice(open + 1, close),
    ticks: Number(f[11]) + Number(f[12]),
    childTicks: Number(f[13]) + Number(f[14]),
  };
}
