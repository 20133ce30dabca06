import { CompactKernels, type EncodedPages, readEncoded } from "./compact.ts";
import {
  computePipeline,
  packPages,
  recordDispatch,
  storageBuffer,
} from "./_runtime.ts";
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
 * const k = new RleEncodeKernel(device);
 * const r = await k.run([new Uint8Array(4096)], 4096);
 * // encodedPage(r, 0) is 00 04 00 00 00 00 00 00
 * ```
 */
export class RleEncodeKernel {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;
  readonly #compact: CompactKernels;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#pipeline = computePipeline(device, RLE_ENCODE_WGSL, "rle_encode");
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
    recordDispatch(
      this.#device,
      encoder,
      this.#pipeline,
      { count, pageWords: pageSize >>> 2 },
      count,
      [b.pages, b.scratch, b.sizes],
    );
  }

  /** Uploads, encodes, compacts and reads back one batch (tests and benches). */
  async run(
    pages: readonly Uint8Array[],
    pageSize: number,
  ): Promise<EncodedPages> {
    const d = this.#device;
    const n = pages.length;
    const input = storageBuffer(d, n * pageSize, "rle pages");
    const scratch = storageBuffer(d, n * pageSize, "rle scratch");
    const out = storageBuffer(d, n * pageSize, "rle out");
    const sizes = storageBuffer(d, n * 4, "rle sizes");
    const offsets = storageBuffer(d, (n + 1) * 4, "rle offsets");
    d.queue.writeBuffer(input, 0, packPages(pages, pageSize));
    const enc = d.createCommandEncoder();
    this.record(enc, { pages: input, scratch, sizes }, n, pageSize);
    this.#compact.record(enc, { scratch, sizes, offsets, out }, n, pageSize);
    d.queue.submit([enc.finish()]);
    const r = await readEncoded(d, { sizes, offsets, out }, n);
    for (const b of [input, scratch, out, sizes, offsets]) b.destroy();
    return r;
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
