/**
 * Test helpers: one device per test file, and whether an adapter exists at
 * all (tests skip only when it does not).
 *
 * @module
 */
import { type GpuContext, openGpu } from "./device.ts";

/** The device for this test file, or null where no adapter exists. */
export const gpu: GpuContext | null = await openGpu({ prefer: "gpu" });

/** Whether a WebGPU adapter exists here (lavapipe counts). */
export const hasAdapter: boolean = gpu !== null;

/** A deterministic byte generator (xorshift32). */
export function bytesFrom(seed: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed | 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
