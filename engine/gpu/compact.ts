import {
  computePipeline,
  DECLINED,
  readbackBuffer,
  recordDispatch,
} from "./_runtime.ts";
import { COMPACT_WGSL, SCAN_WGSL } from "./compact.wgsl.ts";

/** Encoded pages of one batch as read back: sizes, word offsets, the compacted bytes. */
export interface EncodedPages {
  /** Encoded bytes per page; {@link DECLINED} (0xffffffff) when the codec declined it. */
  readonly sizes: Uint32Array;
  /** Word offset of each page's bytes in {@link data}; `offsets[count]` = total words. */
  readonly offsets: Uint32Array;
  /** Every claimed page's encoding, page `i` at byte `offsets[i] * 4`, padded to whole words. */
  readonly data: Uint8Array;
}

/**
 * Drivers of the `scan` and `compact` kernels: per-page sizes → a prefix
 * sum of word offsets over the batch → each page's encoding copied from its
 * scratch slot to its offset in one dense output buffer, so that only the
 * encoded bytes cross back to the host.
 *
 * @example
 * ```ts
 * const c = new CompactKernels(device);
 * c.record(enc, { scratch, sizes, offsets, out }, count, 4096);
 * ```
 */
export class CompactKernels {
  readonly #device: GPUDevice;
  readonly #scan: GPUComputePipeline;
  readonly #compact: GPUComputePipeline;

  constructor(device: GPUDevice) {
    this.#device = device;
    this.#scan = computePipeline(device, SCAN_WGSL, "scan");
    this.#compact = computePipeline(device, COMPACT_WGSL, "compact");
  }

  /** Records scan then compact for `count` pages of `pageSize` bytes. */
  record(
    encoder: GPUCommandEncoder,
    b: {
      scratch: GPUBuffer;
      sizes: GPUBuffer;
      offsets: GPUBuffer;
      out: GPUBuffer;
    },
    count: number,
    pageSize: number,
  ): void {
    const pageWords = pageSize >>> 2;
    recordDispatch(
      this.#device,
      encoder,
      this.#scan,
      {
        count,
        pageWords,
      },
      1,
      [b.sizes, b.offsets],
    );
    recordDispatch(
      this.#device,
      encoder,
      this.#compact,
      { count, pageWords },
      count,
      [b.scratch, b.sizes, b.offsets, b.out],
    );
  }
}

/**
 * Reads an encoded batch back in two steps: sizes and offsets first (small),
 * then exactly `offsets[count]` words of the dense output. The caller has
 * submitted the work that fills the buffers.
 */
export async function readEncoded(
  device: GPUDevice,
  b: { sizes: GPUBuffer; offsets: GPUBuffer; out: GPUBuffer },
  count: number,
): Promise<EncodedPages> {
  const meta = readbackBuffer(device, count * 4 + (count + 1) * 4, "meta");
  let enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(b.sizes, 0, meta, 0, count * 4);
  enc.copyBufferToBuffer(b.offsets, 0, meta, count * 4, (count + 1) * 4);
  device.queue.submit([enc.finish()]);
  await meta.mapAsync(GPUMapMode.READ);
  const all = new Uint32Array(meta.getMappedRange().slice(0));
  meta.unmap();
  meta.destroy();
  const sizes = all.subarray(0, count);
  const offsets = all.subarray(count, 2 * count + 1);
  const words = offsets[count];
  let data = new Uint8Array(0);
  if (words > 0) {
    const staging = readbackBuffer(device, words * 4, "encoded");
    enc = device.createCommandEncoder();
    enc.copyBufferToBuffer(b.out, 0, staging, 0, words * 4);
    device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    data = new Uint8Array(staging.getMappedRange().slice(0));
    staging.unmap();
    staging.destroy();
  }
  return { sizes, offsets, data };
}

/** Page `i`'s encoded bytes in `r`, or `null` when declined. */
export function encodedPage(r: EncodedPages, i: number): Uint8Array | null {
  const n = r.sizes[i];
  if (n === DECLINED) return null;
  const at = r.offsets[i] * 4;
  return r.data.subarray(at, at + n);
}
