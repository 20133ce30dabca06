import {
  type BufferInit,
  ComputeKernel,
  DECLINED,
  readBack,
  readbackBuffer,
  runOnce,
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
 * import assert from "node:assert/strict";
 * import {
 *   CompactKernels,
 *   encodedPage,
 *   openGpu,
 *   RleEncodeKernel,
 * } from "./mod.ts";
 * import { encodeOnce } from "./compact.ts";
 * import { packPages } from "./_runtime.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   // An encode kernel fills each page's scratch slot and its size; the
 *   // compact kernels pack the claimed pages densely (recorded by encodeOnce).
 *   const compact = new CompactKernels(gpu.device);
 *   const rle = new RleEncodeKernel(gpu.device);
 *   const pages = [new Uint8Array(4096).fill(1), new Uint8Array(4096).fill(2)];
 *   const r = await encodeOnce(gpu.device, {
 *     compact,
 *     label: "rle",
 *     count: 2,
 *     pageSize: 4096,
 *     inputs: { pages: packPages(pages, 4096) },
 *     encode: (enc, b) => rle.record(enc, b, 2, 4096),
 *   });
 *   assert.deepEqual([...r.offsets], [0, 2, 4]); // word offsets: 2 words a page
 *   assert.deepEqual(
 *     encodedPage(r, 1),
 *     new Uint8Array([0, 4, 0, 0, 2, 2, 2, 2]),
 *   );
 *   gpu.device.destroy();
 * }
 * ```
 */
export class CompactKernels {
  readonly #scan: ComputeKernel;
  readonly #compact: ComputeKernel;

  /**
   * Compiles the `scan` and `compact` kernels on `device`.
   *
   * @param device The WebGPU device to run on.
   */
  constructor(device: GPUDevice) {
    this.#scan = new ComputeKernel(device, SCAN_WGSL, "scan");
    this.#compact = new ComputeKernel(device, COMPACT_WGSL, "compact");
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
    this.#scan.record(encoder, {
      count,
      pageWords,
      groups: 1,
      buffers: [b.sizes, b.offsets],
    });
    this.#compact.record(encoder, {
      count,
      pageWords,
      groups: count,
      buffers: [b.scratch, b.sizes, b.offsets, b.out],
    });
  }
}

/** The buffers {@link encodeOnce} adds to an encode kernel's inputs. */
export type EncodeBuffer = "scratch" | "out" | "sizes" | "offsets";

/** Options of {@link encodeOnce}; `K` names the kernel's inputs. */
export interface EncodeOnceOptions<K extends string> {
  /** The scan and compact kernels (compiled once, by the driver). */
  readonly compact: CompactKernels;
  /** Prefix of the buffers' labels (`"<label> <name>"`). */
  readonly label: string;
  /** Pages in the batch. */
  readonly count: number;
  /** Page size in bytes (each page's scratch slot). */
  readonly pageSize: number;
  /** The kernel's inputs, created (and uploaded) first, in this order. */
  readonly inputs: Readonly<Record<K, BufferInit>>;
  /** Records the encode kernel, which fills `scratch` and `sizes`. */
  encode(
    encoder: GPUCommandEncoder,
    buffers: Readonly<Record<K | EncodeBuffer, GPUBuffer>>,
  ): void;
}

/**
 * Runs an encode kernel once with buffers of its own, for the encode
 * drivers' `run()` (tests and benches): `inputs` uploaded, then scratch,
 * out, sizes and offsets; `encode`, scan and compact in one submit; the
 * encodings read back with {@link readEncoded}; every buffer destroyed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   CompactKernels,
 *   encodedPage,
 *   openGpu,
 *   RleEncodeKernel,
 * } from "./mod.ts";
 * import { encodeOnce } from "./compact.ts";
 * import { packPages } from "./_runtime.ts";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const compact = new CompactKernels(gpu.device);
 *   const rleKernel = new RleEncodeKernel(gpu.device);
 *   const pages = [new Uint8Array(4096)];
 *   const r = await encodeOnce(gpu.device, {
 *     compact,
 *     label: "rle",
 *     count: pages.length,
 *     pageSize: 4096,
 *     inputs: { pages: packPages(pages, 4096) },
 *     encode: (enc, b) => rleKernel.record(enc, b, pages.length, 4096),
 *   });
 *   assert.deepEqual(
 *     encodedPage(r, 0),
 *     new Uint8Array([0, 4, 0, 0, 0, 0, 0, 0]),
 *   );
 *   gpu.device.destroy();
 * }
 * ```
 */
export function encodeOnce<K extends string>(
  device: GPUDevice,
  options: EncodeOnceOptions<K>,
): Promise<EncodedPages> {
  const { compact, count, pageSize } = options;
  const buffers = {
    ...options.inputs,
    scratch: count * pageSize,
    out: count * pageSize,
    sizes: count * 4,
    offsets: (count + 1) * 4,
  };
  return runOnce(device, {
    label: options.label,
    buffers,
    record: (enc, b) => {
      options.encode(enc, b);
      compact.record(enc, b, count, pageSize);
    },
    read: (b) => readEncoded(device, b, count),
  });
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
  const enc = device.createCommandEncoder();
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
  const data = words > 0
    ? await readBack(device, b.out, words * 4, "encoded")
    : new Uint8Array(0);
  return { sizes, offsets, data };
}

/** Page `i`'s encoded bytes in `r`, or `null` when declined. */
export function encodedPage(r: EncodedPages, i: number): Uint8Array | null {
  const n = r.sizes[i];
  if (n === DECLINED) return null;
  const at = r.offsets[i] * 4;
  return r.data.subarray(at, at + n);
}
