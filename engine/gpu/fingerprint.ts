import { ComputeKernel, packPages, readBack, runOnce } from "./_runtime.ts";
import { FINGERPRINT_WGSL } from "./fingerprint.wgsl.ts";

/**
 * Driver of the `fingerprint` kernel: MurmurHash3_x86_128 (seed 0) of each
 * chunk, 4 u32 per chunk, equal to `fingerprint128` of
 * `engine/codecs/_fingerprint.ts` on the same words.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FingerprintKernel, openGpu } from "./mod.ts";
 * import { fingerprint128 } from "../codecs/_fingerprint.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const k = new FingerprintKernel(gpu.device);
 *   const page = new Uint8Array(4096).map((_, i) => i * 7);
 *   const fps = await k.run([page], { pageSize: 4096, chunkBytes: 4096 });
 *   const cpu = new Uint32Array(4);
 *   fingerprint128(new Uint32Array(page.buffer), 0, 1024, cpu);
 *   assert.deepEqual(fps, cpu); // 4 u32 per chunk, as on the CPU
 *   gpu.device.destroy();
 * }
 * ```
 */
export class FingerprintKernel {
  readonly #kernel: ComputeKernel;

  /**
   * Compiles the `fingerprint` kernel on `device`.
   *
   * @param device The WebGPU device to run on.
   */
  constructor(device: GPUDevice) {
    this.#kernel = new ComputeKernel(device, FINGERPRINT_WGSL, "fingerprint");
  }

  /** Records fingerprints of `chunks` chunks of `chunkBytes` (a multiple of 16) in `words` into `out`. */
  record(
    encoder: GPUCommandEncoder,
    buffers: { words: GPUBuffer; out: GPUBuffer },
    chunks: number,
    chunkBytes: number,
  ): void {
    if (chunkBytes <= 0 || chunkBytes % 16 !== 0) {
      throw new RangeError(
        `Bad chunk size "${chunkBytes}": expected a positive multiple of 16 bytes`,
      );
    }
    this.#kernel.record(encoder, {
      count: chunks,
      pageWords: chunkBytes >>> 2,
      groups: Math.ceil(chunks / 64),
      buffers: [buffers.words, buffers.out],
    });
  }

  /** Uploads `pages`, fingerprints every chunk, reads them back: 4 u32 per chunk, in page order. */
  async run(
    pages: readonly Uint8Array[],
    options: { pageSize: number; chunkBytes: number },
  ): Promise<Uint32Array> {
    const d = this.#kernel.device;
    const { pageSize, chunkBytes } = options;
    const chunks = pages.length * (pageSize / chunkBytes);
    return await runOnce(d, {
      label: "fp",
      buffers: { pages: packPages(pages, pageSize), out: chunks * 16 },
      record: (enc, b) =>
        this.record(enc, { words: b.pages, out: b.out }, chunks, chunkBytes),
      read: async (b) =>
        new Uint32Array((await readBack(d, b.out, chunks * 16)).buffer),
    });
  }
}
