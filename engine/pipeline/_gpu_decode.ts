/**
 * A decode Worker's GPU: the `rle` and `delta` sections of a batch decoded
 * by the WGSL kernels (`GpuBatchDecoder`) instead of the CPU decoders, into
 * the same scratch, byte for byte the same pages. Imported by the Worker
 * only when its receiver asked for the GPU, so a CPU receiver never
 * compiles the GPU modules.
 *
 * Exactness rests on three things: the section's page lengths are read by
 * the same {@link PageSectionReader} as the CPU decoder reads them; `delta`
 * reads the destination's current page through the same `current`
 * callback, before anything of the batch is applied; and a section the GPU
 * rejects is decoded again by the CPU decoder
 * (`BatchDecoderSet.decodeOffloaded`), whose exact `CodecError` fails the
 * batch before it touches memory.
 *
 * @module
 */

import { PageSectionReader } from "../codecs/batch.ts";
import type { SectionOffload } from "../codecs/batch_chain.ts";
import { GpuBatchDecoder, type GpuDecodeCodec } from "../gpu/batch_decoder.ts";
import { type GpuContext, openGpu } from "../gpu/device.ts";
import type { DecodeGpu, DecodeGpuInfo } from "./_messages.ts";

/** One channel's GPU decoder: a device, its kernels, and the pages it decoded. */
export class GpuSectionDecoder {
  readonly #gpu: GpuContext;
  readonly #decoder: GpuBatchDecoder;
  readonly #pageSize: number;
  readonly #batch: number;
  /** Pages decoded on the GPU since the last {@link take}. */
  #pages = 0;

  private constructor(
    gpu: GpuContext,
    pageSize: number,
    batch: number,
    current: (pfn: number) => Uint8Array,
  ) {
    this.#gpu = gpu;
    this.#pageSize = pageSize;
    // one dispatch's pages, within the device's largest binding
    const fit = Math.floor(gpu.limits.maxStorageBufferBindingSize / pageSize);
    this.#batch = Math.max(1, Math.min(batch, fit));
    this.#decoder = new GpuBatchDecoder(gpu.device, { pageSize, current });
  }

  /**
   * Opens this Worker's own device as `settings` allow (`openGpu`'s rules:
   * `auto` declines a software adapter, `gpu` takes any, `require` throws a
   * `GpuError` instead of falling back). The decoder is null where the CPU
   * decodes; `info` says which adapter, or why none.
   */
  static async open(
    settings: DecodeGpu,
    pageSize: number,
    current: (pfn: number) => Uint8Array,
  ): Promise<{ decoder: GpuSectionDecoder | null; info: DecodeGpuInfo }> {
    let note = "";
    const gpu = await openGpu({
      prefer: settings.prefer,
      require: settings.require,
      onFallback: (reason) => note = reason,
    });
    const info = {
      adapter: gpu?.adapterInfo.description ?? null,
      software: gpu?.adapterInfo.isFallbackAdapter ?? false,
      note: gpu?.fallbackReason ?? note,
    };
    if (!gpu) return { decoder: null, info };
    return {
      decoder: new GpuSectionDecoder(gpu, pageSize, settings.batch, current),
      info,
    };
  }

  /** The offload `BatchDecoderSet.decodeOffloaded` takes: rle and delta sections go to the GPU. */
  readonly offload: SectionOffload = (codec, section, pfns, which, n, out) => {
    const twin = codec.gpu;
    if ((twin !== "rle" && twin !== "delta") || !codec.maxEncodedBytes) {
      return null;
    }
    return this.#decode(
      twin,
      codec.name,
      codec.maxEncodedBytes(this.#pageSize),
      {
        section,
        pfns,
        which,
        n,
        out,
      },
    );
  };

  async #decode(
    twin: GpuDecodeCodec,
    name: string,
    maxPage: number,
    s: {
      section: Uint8Array;
      pfns: Float64Array;
      which: Uint32Array;
      n: number;
      out: Uint8Array;
    },
  ): Promise<void> {
    const ps = this.#pageSize;
    // The section's page bodies, read and checked as the CPU decoder reads them.
    const reader = new PageSectionReader(name, s.section, s.n, maxPage);
    const pfns = new Uint32Array(s.n);
    const bodies: Uint8Array[] = new Array(s.n);
    for (let k = 0; k < s.n; k++) {
      pfns[k] = s.pfns[s.which[k]];
      bodies[k] = reader.next(k, pfns[k]);
    }
    reader.end();
    for (let start = 0; start < s.n; start += this.#batch) {
      const end = Math.min(s.n, start + this.#batch);
      const pages = await this.#decoder.decode(
        twin,
        pfns.subarray(start, end),
        bodies.slice(start, end),
      );
      s.out.set(pages, start * ps);
    }
    this.#pages += s.n;
  }

  /** Pages decoded on the GPU since the last call (a batch's, once it is applied). */
  take(): number {
    const n = this.#pages;
    this.#pages = 0;
    return n;
  }

  /** Releases the device. */
  destroy(): void {
    this.#gpu.device.destroy();
  }
}
