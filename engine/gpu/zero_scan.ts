import {
  computePipeline,
  packPages,
  readBack,
  recordDispatch,
  storageBuffer,
} from "./_runtime.ts";
import { ZERO_SCAN_WGSL } from "./zero_scan.wgsl.ts";

/**
 * Driver of the `zero_scan` kernel: one flag per page, 1 when all zero.
 *
 * @example
 * ```ts
 * const k = new ZeroScanKernel(device);
 * const flags = await k.run([new Uint8Array(4096)], 4096); // Uint32Array [1]
 * ```
 */
export class ZeroScanKernel {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#pipeline = computePipeline(device, ZERO_SCAN_WGSL, "zero_scan");
  }

  /** Records the kernel: `flags[i]` for each of `count` pages of `pageSize` bytes in `pages`. */
  record(
    encoder: GPUCommandEncoder,
    buffers: { pages: GPUBuffer; flags: GPUBuffer },
    count: number,
    pageSize: number,
  ): void {
    recordDispatch(
      this.#device,
      encoder,
      this.#pipeline,
      { count, pageWords: pageSize >>> 2 },
      count,
      [buffers.pages, buffers.flags],
    );
  }

  /** Uploads `pages`, runs the kernel and reads the flags back (tests and benches). */
  async run(
    pages: readonly Uint8Array[],
    pageSize: number,
  ): Promise<Uint32Array> {
    const d = this.#device;
    const n = pages.length;
    const input = storageBuffer(d, n * pageSize, "zero_scan pages");
    const flags = storageBuffer(d, n * 4, "zero_scan flags");
    d.queue.writeBuffer(input, 0, packPages(pages, pageSize));
    const enc = d.createCommandEncoder();
    this.record(enc, { pages: input, flags }, n, pageSize);
    d.queue.submit([enc.finish()]);
    const out = new Uint32Array((await readBack(d, flags, n * 4)).buffer);
    input.destroy();
    flags.destroy();
    return out;
  }
}
