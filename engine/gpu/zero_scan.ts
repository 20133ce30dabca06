import { ComputeKernel, packPages, readBack, runOnce } from "./_runtime.ts";
import { ZERO_SCAN_WGSL } from "./zero_scan.wgsl.ts";

/**
 * Driver of the `zero_scan` kernel: one flag per page, 1 when all zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openGpu, ZeroScanKernel } from "./mod.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const k = new ZeroScanKernel(gpu.device);
 *   const pages = [new Uint8Array(4096), new Uint8Array(4096).fill(1)];
 *   assert.deepEqual(await k.run(pages, 4096), new Uint32Array([1, 0]));
 *   gpu.device.destroy();
 * }
 * ```
 */
export class ZeroScanKernel {
  readonly #kernel: ComputeKernel;

  /**
   * Compiles the `zero_scan` kernel on `device`.
   *
   * @param device The WebGPU device to run on.
   */
  constructor(device: GPUDevice) {
    this.#kernel = new ComputeKernel(device, ZERO_SCAN_WGSL, "zero_scan");
  }

  /** Records the kernel: `flags[i]` for each of `count` pages of `pageSize` bytes in `pages`. */
  record(
    encoder: GPUCommandEncoder,
    buffers: { pages: GPUBuffer; flags: GPUBuffer },
    count: number,
    pageSize: number,
  ): void {
    this.#kernel.record(encoder, {
      count,
      pageWords: pageSize >>> 2,
      groups: count,
      buffers: [buffers.pages, buffers.flags],
    });
  }

  /** Uploads `pages`, runs the kernel and reads the flags back (tests and benches). */
  async run(
    pages: readonly Uint8Array[],
    pageSize: number,
  ): Promise<Uint32Array> {
    const d = this.#kernel.device;
    const n = pages.length;
    return await runOnce(d, {
      label: "zero_scan",
      buffers: { pages: packPages(pages, pageSize), flags: n * 4 },
      record: (enc, b) => this.record(enc, b, n, pageSize),
      read: async (b) =>
        new Uint32Array((await readBack(d, b.flags, n * 4)).buffer),
    });
  }
}
