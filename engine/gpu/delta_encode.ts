import { CompactKernels, type EncodedPages, encodeOnce } from "./compact.ts";
import { ComputeKernel, packPages } from "./_runtime.ts";
import { DELTA_ENCODE_WGSL } from "./delta_encode.wgsl.ts";

/**
 * Driver of the `delta_encode` (XBZRLE) kernel: each page against its old
 * version (the sender cache's copy, uploaded side by side), byte-identical
 * to `delta.createEncoder(...).encode(...)` for a page the cache holds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DeltaEncodeKernel, encodedPage, openGpu } from "./mod.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const k = new DeltaEncodeKernel(gpu.device);
 *   const old = new Uint8Array(4096);
 *   const page = old.slice();
 *   page[1001] = 1;
 *   const r = await k.run([page], [old], 4096);
 *   // As the CPU delta encoder: zrun 1001 (e9 07), a 1-byte nzrun (01 01).
 *   assert.deepEqual(
 *     encodedPage(r, 0),
 *     new Uint8Array([0xe9, 0x07, 0x01, 0x01]),
 *   );
 *   gpu.device.destroy();
 * }
 * ```
 */
export class DeltaEncodeKernel {
  readonly #kernel: ComputeKernel;
  readonly #compact: CompactKernels;

  /**
   * Compiles the `delta_encode` kernel on `device`.
   *
   * @param device The WebGPU device to run on.
   */
  constructor(device: GPUDevice) {
    this.#kernel = new ComputeKernel(device, DELTA_ENCODE_WGSL, "delta_encode");
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
    this.#kernel.record(encoder, {
      count,
      pageWords: pageSize >>> 2,
      groups: Math.ceil(count / 64),
      buffers: [b.pages, b.olds, b.hasOld, b.scratch, b.sizes],
    });
  }

  /** Uploads, encodes, compacts and reads back one batch; `olds[i]` null = not cached. */
  async run(
    pages: readonly Uint8Array[],
    olds: readonly (Uint8Array | null)[],
    pageSize: number,
  ): Promise<EncodedPages> {
    const n = pages.length;
    const oldBytes = new Uint8Array(n * pageSize);
    const hasOld = new Uint32Array(n);
    olds.forEach((o, i) => {
      if (o) {
        oldBytes.set(o, i * pageSize);
        hasOld[i] = 1;
      }
    });
    return await encodeOnce(this.#kernel.device, {
      compact: this.#compact,
      label: "delta",
      count: n,
      pageSize,
      inputs: { pages: packPages(pages, pageSize), olds: oldBytes, hasOld },
      encode: (enc, b) => this.record(enc, b, n, pageSize),
    });
  }
}
