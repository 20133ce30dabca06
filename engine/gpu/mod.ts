/**
 * GPU offload of the page codecs through Deno's built-in WebGPU: WGSL twins
 * of `zero`, `rle` and `delta` (XBZRLE) whose output is byte-identical to the
 * CPU codecs, MurmurHash3 fingerprints for `dedup`, and receiver-side
 * decoders, run over batches of pages (`gpu({ batch })`) with several
 * batches in flight. See `docs/gpu.md`.
 *
 * - {@link openGpu}: a device as the plan's `gpu({ prefer, require })` allows, or `null` and why;
 * - {@link GpuBatchEncoder}: sender, a chain (`zero`?, `rle` | `delta`, `raw`) per batch;
 * - {@link GpuBatchDecoder}: receiver, `rle` and `delta` batches;
 * - kernel drivers ({@link ZeroScanKernel}, {@link FingerprintKernel},
 *   {@link RleEncodeKernel}, {@link DeltaEncodeKernel}, {@link CompactKernels})
 *   and their WGSL sources, for benches and other pipelines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GpuBatchEncoder, openGpu } from "@hakobu/hakobu";
 *
 * // Any adapter, lavapipe too; null where there is none.
 * const gpu = await openGpu({ prefer: "gpu" });
 * if (gpu) {
 *   const enc = new GpuBatchEncoder(gpu.device, {
 *     chain: ["zero", "rle"],
 *     batch: 4096,
 *     pageSize: 4096,
 *     pageCount: 1,
 *   });
 *   const b = await enc.encode([0], [new Uint8Array(4096)]);
 *   assert.equal(b.codecIds[0], 1); // zero
 *   assert.equal(b.bytes(0).length, 0);
 *   enc.destroy();
 *   gpu.device.destroy();
 * }
 * ```
 *
 * @module
 */
export {
  type GpuContext,
  type GpuEntry,
  GpuError,
  type GpuLimits,
  NO_ADAPTER_MESSAGE,
  openGpu,
  type OpenGpuOptions,
} from "./device.ts";
export {
  type EncodedBatch,
  GpuBatchEncoder,
  type GpuBatchEncoderOptions,
  type GpuChain,
} from "./batch_encoder.ts";
export {
  GpuBatchDecoder,
  type GpuBatchDecoderOptions,
  type GpuDecodeCodec,
} from "./batch_decoder.ts";
export { ZeroScanKernel } from "./zero_scan.ts";
export { FingerprintKernel } from "./fingerprint.ts";
export { RLE_MAX_PAGE_BYTES, RleEncodeKernel } from "./rle_encode.ts";
export { DeltaEncodeKernel } from "./delta_encode.ts";
export {
  CompactKernels,
  encodedPage,
  type EncodedPages,
  readEncoded,
} from "./compact.ts";
export { DECLINED, dispatchGrid } from "./_runtime.ts";
export { ZERO_SCAN_WGSL } from "./zero_scan.wgsl.ts";
export { FINGERPRINT_WGSL } from "./fingerprint.wgsl.ts";
export { RLE_ENCODE_WGSL } from "./rle_encode.wgsl.ts";
export { DELTA_ENCODE_WGSL } from "./delta_encode.wgsl.ts";
export { COMPACT_WGSL, SCAN_WGSL } from "./compact.wgsl.ts";
export { RLE_DECODE_WGSL } from "./rle_decode.wgsl.ts";
export { DELTA_DECODE_WGSL } from "./delta_decode.wgsl.ts";
