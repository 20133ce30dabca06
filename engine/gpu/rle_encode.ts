import { CompactKernels, type EncodedPages, encodeOnce } from "./compact.ts";
import { ComputeKernel, packPages } from "./_runtime.ts";
import { RLE_ENCODE_WGSL } from "./rle_encode.wgsl.ts";

/** Largest page the `rle_encode` kernel handles (1024 words, its workgroup arrays). */
export const RLE_MAX_PAGE_BYTES = 4096;

/**
 * Driver of the `rle_encode` kernel: per-page rle encodings into the page's
 * scratch slot plus a size per page (bytes, or declined). Byte-identical to
 * `rle.createEncoder(...).encode(...)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodedPage, openGpu, RleEncodeKernel } from "./mod.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const k = new RleEncodeKernel(gpu.device);
 *   const r = await k.run([new Uint8Array(4096)], 4096);
 *   assert.deepEqual(
 *     encodedPage(r, 0),
 *     new Uint8Array([0, 4, 0, 0, 0, 0, 0, 0]),
 *   );
 *   gpu.device.destroy();
 * }
 * ```
 */
export class RleEncodeKernel {
  readonly #kernel: ComputeKernel;
  readonly #compact: CompactKernels;

  /**
   * Compiles the `rle_encode` kernel on `device`.
   *
   * @param device The WebGPU device to run on.
   */
  constructor(device: GPUDevice) {
    this.#kernel = new ComputeKernel(device, RLE_ENCODE_WGSL, "rle_encode");
    this.#compact = new CompactKernels(device);
  }

  /** Records the encode kernel for `count` pages of `pageSize` bytes (a multiple of 4, at most 4096). */
  record(
    encoder: GPUCommandEncoder,
    b: { pages: GPUBuffer; scratch: GPUBuffer; sizes: GPUBuffer },
    count: number,
    pageSize: number,
  ): void {
    checkPageSize(pageSize);
    this.#kernel.record(encoder, {
      count,
      pageWords: pageSize >>> 2,
      groups: count,
      buffers: [b.pages, b.scratch, b.sizes],
    });
  }

  /** Uploads, encodes, compacts and reads back one batch (tests and benches). */
  async run(
    pages: readonly Uint8Array[],
    pageSize: number,
  ): Promise<EncodedPages> {
    const n = pages.length;
    return await encodeOnce(this.#kernel.device, {
      compact: this.#compact,
      label: "rle",
      count: n,
      pageSize,
      inputs: { pages: packPages(pages, pageSize) },
      encode: (enc, b) => this.record(enc, b, n, pageSize),
    });
  }
}

function checkPageSize(pageSize: number): void {
  if (
    !Number.isInteger(pageSize) || pageSize <= 0 || (pageSize & 3) !== 0 ||
    pageSize > RLE_MAX_PAGE_BYTES
  ) {
    throw new RangeError(
      `Bad page size "${pageSize}": the rle kernel needs a positive multiple of 4 bytes up to ${RLE_MAX_PAGE_BYTES}`,
    );
  }
}
