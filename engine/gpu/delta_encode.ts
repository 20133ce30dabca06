import { CompactKernels, type EncodedPages, readEncoded } from "./compact.ts";
import {
  computePipeline,
  packPages,
  recordDispatch,
  storageBuffer,
} from "./_runtime.ts";
import { DELTA_ENCODE_WGSL } from "./delta_encode.wgsl.ts";

/**
 * Driver of the `delta_encode` (XBZRLE) kernel: each page against its old
 * version (the sender cache's copy, uploaded side by side), byte-identical
 * to `delta.createEncoder(...).encode(...)` for a page the cache holds.
 *
 * @example
 * ```ts
 * const k = new DeltaEncodeKernel(device);
 * const r = await k.run([page], [old], 4096); // encodedPage(r, 0)
 * ```
 */
export class DeltaEncodeKernel {
  readonly #device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;
  readonly #compact: CompactKernels;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#pipeline = computePipeline(device, DELTA_ENCODE_WGSL, "delta_encode");
    this.#compact = new CompactKernels(device);
  }

  /** Records the encode kernel; `hasOld[i]` 0 declines page `i` (not in the cache). */
  record(
    encoder: GPUCommandEncoder,
    b: {
      pages: GPUBuffer;
      olds: GPUBuffer;
      hasOld: GPUBuffer;
      scratch: GPUBuffer;
      sizes: GPUBuffer;
    },
    count: number,
    pageSize: number,
  ): void {
    if (!Number.isInteger(pageSize) || pageSize <= 0 || (pageSize & 3) !== 0) {
      throw new RangeError(
        `Bad page size "${pageSize}": the delta kernel needs a positive multiple of 4 bytes`,
      );
    }
    recordDispatch(
      this.#device,
      encoder,
      this.#pipeline,
      { count, pageWords: pageSize >>> 2 },
      Math.ceil(count / 64),
      [b.pages, b.olds, b.hasOld, b.scratch, b.sizes],
    );
  }

  /** Uploads, encodes, compacts and reads back one batch; `olds[i]` null = not cached. */
  async run(
    pages: readonly Uint8Array[],
    olds: readonly (Uint8Array | null)[],
    pageSize: number,
  ): Promise<EncodedPages> {
    const d = this.#device;
    const n = pages.length;
    const input = storageBuffer(d, n * pageSize, "delta pages");
    const oldBuf = storageBuffer(d, n * pageSize, "delta olds");
    const hasOld = storageBuffer(d, n * 4, "delta hasOld");
    const scratch = storageBuffer(d, n * pageSize, "delta scratch");
    const out = storageBuffer(d, n * pageSize, "delta out");
    const sizes = storageBuffer(d, n * 4, "delta sizes");
    const offsets = storageBuffer(d, (n + 1) * 4, "delta offsets");
    d.queue.writeBuffer(input, 0, packPages(pages, pageSize));
    const oldBytes = new Uint8Array(n * pageSize);
    const flags = new Uint32Array(n);
    olds.forEach((o, i) => {
      if (o) {
        oldBytes.set(o, i * pageSize);
        flags[i] = 1;
      }
    });
    d.queue.writeBuffer(oldBuf, 0, oldBytes);
    d.queue.writeBuffer(hasOld, 0, flags);
    const enc = d.createCommandEncoder();
    this.record(
      enc,
      { pages: input, olds: oldBuf, hasOld, scratch, sizes },
      n,
      pageSize,
    );
    this.#compact.record(enc, { scratch, sizes, offsets, out }, n, pageSize);
    d.queue.submit([enc.finish()]);
    const r = await readEncoded(d, { sizes, offsets, out }, n);
    for (const b of [input, oldBuf, hasOld, scratch, out, sizes, offsets]) {
      b.destroy();
    }
    return r;
  }
}
