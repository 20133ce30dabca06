import { CodecError } from "../errors.ts";
import type { PageDecoder } from "../codecs/codec.ts";
import { delta } from "../codecs/delta.ts";
import { rle } from "../codecs/rle.ts";
import { ComputeKernel, readbackBuffer, storageBuffer } from "./_runtime.ts";
import { DELTA_DECODE_WGSL } from "./delta_decode.wgsl.ts";
import { RLE_DECODE_WGSL } from "./rle_decode.wgsl.ts";

/** Codecs the GPU decodes on the receiver. */
export type GpuDecodeCodec = "rle" | "delta";

/** Options of {@link GpuBatchDecoder}. */
export interface GpuBatchDecoderOptions {
  /** Page size in bytes (a multiple of 4). */
  readonly pageSize: number;
  /** Receiver side, for `delta`: the page as destination memory holds it now. */
  readonly current?: (pfn: number) => Uint8Array;
}

/**
 * Receiver-side batch decoder: decodes a batch of `rle` or `delta` pages on
 * the GPU (the `rle_decode` / `delta_decode` kernels) into one array of
 * pages, identical to what the CPU decoders write. A page the kernel flags
 * as malformed is decoded again by the CPU decoder, which throws the
 * {@link CodecError} with its exact message (page and input offset); the
 * kernels never write outside the page's own output slot.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GpuBatchDecoder, openGpu } from "@hakobu/hakobu";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const dec = new GpuBatchDecoder(gpu.device, { pageSize: 4096 });
 *   // Two rle pages: one run of 1024 words each (0 and 0xabababab).
 *   const zeros = new Uint8Array([0, 4, 0, 0, 0, 0, 0, 0]);
 *   const abs = new Uint8Array([0, 4, 0, 0, 0xab, 0xab, 0xab, 0xab]);
 *   const pages = await dec.decode("rle", [0, 1], [zeros, abs]);
 *   assert.deepEqual(
 *     pages.subarray(4096, 8192),
 *     new Uint8Array(4096).fill(0xab),
 *   );
 *   gpu.device.destroy();
 * }
 * ```
 */
export class GpuBatchDecoder {
  readonly #device: GPUDevice;
  readonly #pageSize: number;
  readonly #current: ((pfn: number) => Uint8Array) | undefined;
  readonly #kernels: Record<GpuDecodeCodec, ComputeKernel>;
  readonly #cpu: Record<GpuDecodeCodec, PageDecoder>;

  /**
   * Compiles the `rle_decode` and `delta_decode` kernels on `device` and
   * creates the CPU decoders that report malformed pages.
   *
   * @param device The WebGPU device to run on.
   * @param options Page size, and the current pages for `delta`.
   * @throws {RangeError} when the page size is not a positive multiple of 4.
   */
  constructor(device: GPUDevice, options: GpuBatchDecoderOptions) {
    const ps = options.pageSize;
    if (!Number.isInteger(ps) || ps <= 0 || (ps & 3) !== 0) {
      throw new RangeError(
        `Bad page size "${ps}": expected a positive multiple of 4 bytes`,
      );
    }
    this.#device = device;
    this.#pageSize = ps;
    this.#current = options.current;
    this.#kernels = {
      rle: new ComputeKernel(device, RLE_DECODE_WGSL, "rle_decode"),
      delta: new ComputeKernel(device, DELTA_DECODE_WGSL, "delta_decode"),
    };
    const ctx = {
      pageSize: ps,
      pageCount: 0x7fffffff,
      options: {},
      current: options.current,
    };
    this.#cpu = {
      rle: rle.createDecoder!(ctx),
      delta: delta.createDecoder!(ctx),
    };
  }

  /**
   * Decodes `inputs[i]` (page `pfns[i]`) into page `i` of the result
   * (`inputs.length * pageSize` bytes).
   *
   * @throws {CodecError} naming the first malformed page, as the CPU decoder would.
   */
  async decode(
    codec: GpuDecodeCodec,
    pfns: ArrayLike<number>,
    inputs: readonly Uint8Array[],
  ): Promise<Uint8Array> {
    const d = this.#device;
    const ps = this.#pageSize;
    const n = inputs.length;
    if (pfns.length !== n) {
      throw new RangeError(
        `Cannot decode a batch of ${n} inputs with ${pfns.length} pfns: expected one pfn per input`,
      );
    }
    if (n === 0) return new Uint8Array(0);
    const offs = new Uint32Array(n);
    const lens = new Uint32Array(n);
    let words = 0;
    for (let i = 0; i < n; i++) {
      offs[i] = words * 4;
      lens[i] = inputs[i].length;
      words += Math.ceil(inputs[i].length / 4);
    }
    const packed = new Uint8Array(Math.max(4, words * 4));
    for (let i = 0; i < n; i++) packed.set(inputs[i], offs[i]);
    const pages = new Uint8Array(n * ps);
    if (codec === "delta") {
      const current = this.#current;
      if (!current) {
        throw new CodecError(
          "delta",
          `Cannot decode delta page ${
            pfns[0]
          }: the receiver gave no current page (GpuBatchDecoderOptions.current)`,
        );
      }
      for (let i = 0; i < n; i++) {
        const c = current(pfns[i]);
        if (c.length !== ps) {
          throw new CodecError(
            "delta",
            `Cannot decode delta page ${
              pfns[i]
            }: the current page has ${c.length} bytes, expected ${ps}`,
          );
        }
        pages.set(c, i * ps);
      }
    }
    const input = storageBuffer(d, packed.length, "decode input");
    const inOff = storageBuffer(d, n * 4, "decode inOff");
    const inLen = storageBuffer(d, n * 4, "decode inLen");
    const out = storageBuffer(d, n * ps, "decode out");
    const errors = storageBuffer(d, n * 4, "decode errors");
    d.queue.writeBuffer(input, 0, packed);
    d.queue.writeBuffer(inOff, 0, offs);
    d.queue.writeBuffer(inLen, 0, lens);
    if (codec === "delta") d.queue.writeBuffer(out, 0, pages);
    const enc = d.createCommandEncoder();
    this.#kernels[codec].record(enc, {
      count: n,
      pageWords: ps >>> 2,
      groups: Math.ceil(n / 64),
      buffers: [input, inOff, inLen, out, errors],
    });
    const staging = readbackBuffer(d, n * 4 + n * ps, "decode readback");
    enc.copyBufferToBuffer(errors, 0, staging, 0, n * 4);
    enc.copyBufferToBuffer(out, 0, staging, n * 4, n * ps);
    d.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const range = staging.getMappedRange();
    const errs = new Uint32Array(range.slice(0, n * 4));
    pages.set(new Uint8Array(range, n * 4, n * ps));
    staging.unmap();
    for (const b of [staging, input, inOff, inLen, out, errors]) b.destroy();
    for (let i = 0; i < n; i++) {
      if (errs[i] !== 0) {
        // The CPU decoder names the failure exactly; it must throw here.
        this.#cpu[codec].decode(pfns[i], inputs[i], new Uint8Array(ps));
        throw new CodecError(
          codec,
          `Cannot decode ${codec} page ${
            pfns[i]
          }: the GPU decoder flagged it (code ${
            errs[i]
          }) but the CPU decoder accepts it`,
        );
      }
    }
    return pages;
  }
}
