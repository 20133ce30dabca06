import {
  computePipeline,
  packPages,
  readBack,
  recordDispatch,
  storageBuffer,
} from "./_runtime.ts";
import { FINGERPRINT_WGSL } from "./fingerprint.wgsl.ts";

/**
 * Driver of the `fingerprint` kernel: MurmurHash3_x86_128 (seed 0) of each
 * chunk, 4 u32 per chunk, equal to `fingerprint128` of
 * `engine/codecs/_fingerprint.ts` on the same words.
 *
 * @example
 * ```ts
 * const k = new FingerprintKernel(device);
 * const fps = await k.run([page], { pageSize: 4096, chunkBytes: 4096 }); // 4 u32
 * ```
 */
export class FingerprintKernel {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#pipeline = computePipeline(device, FINGERPRINT_WGSL, "fingerprint");
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
    recordDispatch(
      this.#device,
      encoder,
      this.#pipeline,
      { count: chunks, pageWords: chunkBytes >>> 2 },
      Math.ceil(chunks / 64),
      [buffers.words, buffers.out],
    );
  }

  /** Uploads `pages`, fingerprints every chunk, reads them back: 4 u32 per chunk, in page order. */
  async run(
    pages: readonly Uint8Array[],
    options: { pageSize: number; chunkBytes: number },
  ): Promise<Uint32Array> {
    const d = this.#device;
    const { pageSize, chunkBytes } = options;
    const chunks = pages.length * (pageSize / chunkBytes);
    const input = storageBuffer(d, pages.length * pageSize, "fp pages");
    const out = storageBuffer(d, chunks * 16, "fp out");
    d.queue.writeBuffer(input, 0, packPages(pages, pageSize));
    const enc = d.createCommandEncoder();
    this.record(enc, { words: input, out }, chunks, chunkBytes);
    d.queue.submit([enc.finish()]);
    const r = new Uint32Array((await readBack(d, out, chunks * 16)).buffer);
    input.destroy();
    out.destroy();
    return r;
  }
}
