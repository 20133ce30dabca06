/**
 * The machine's own scaling, to read a channel curve against: how much
 * faster `k` independent `zstd -1` processes compress the same bytes than
 * one does, for `k` = 1, 2, … — work with nothing shared but the machine.
 * Where the cores are shared underneath (a VM's vCPUs on one physical core's
 * hyperthreads, a memory bus, a power budget) that is less than `k`, and no
 * channel count can do better than the machine does.
 *
 * The speed-up at `k` is `k × t(1) / t(k)`, `t(k)` the wall time from
 * starting `k` processes to the last one's end.
 *
 * @module
 */

import { median } from "./_median.ts";

/** One point of the machine's curve. */
export interface MachinePoint {
  /** Processes compressing at once. */
  processes: number;
  /** Median wall milliseconds until the last of them ended. */
  ms: number;
  /** `processes × t(1) / t(processes)`. */
  speedup: number;
}

/** The curve, as bench:channels' JSON carries it. */
export interface MachineScaling {
  /** What each process runs. */
  tool: string;
  /** Bytes each process compresses. */
  bytes: number;
  points: MachinePoint[];
}

/** Whether the zstd command-line tool runs here. */
export async function hasZstdCli(): Promise<boolean> {
  try {
    const out = await new Deno.Command("zstd", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/**
 * Wall milliseconds for `processes` `zstd -1` processes, started together,
 * to compress `file` (to nowhere).
 *
 * @throws {Error} when a process fails.
 */
export async function timeProcesses(
  file: string,
  processes: number,
): Promise<number> {
  const t0 = performance.now();
  const outs = await Promise.all(
    Array.from({ length: processes }, () =>
      new Deno.Command("zstd", {
        args: ["-1", "-q", "-c", file],
        stdout: "null",
        stderr: "piped",
      }).output()),
  );
  const ms = performance.now() - t0;
  const failed = outs.find((o) => !o.success);
  if (failed) {
    throw new Error(
      `zstd -1 ${file} failed: ${new TextDecoder().decode(failed.stderr)}`,
    );
  }
  return ms;
}

/**
 * The curve from timings per process count (`samples[k - 1]`: every run's
 * wall ms with `k` processes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { scalingCurve } from "./_machine_scaling.ts";
 *
 * const curve = scalingCurve([[100, 110, 90], [140, 150, 130]]);
 * assert.deepEqual(curve.map((p) => p.speedup), [1, 2 * 100 / 140]);
 * ```
 */
export function scalingCurve(samples: readonly number[][]): MachinePoint[] {
  const one = median(samples[0]);
  return samples.map((s, i) => {
    const ms = median(s);
    return { processes: i + 1, ms, speedup: (i + 1) * one / ms };
  });
}
