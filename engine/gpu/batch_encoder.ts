import { delta } from "../codecs/delta.ts";
import { DeltaCache } from "../codecs/delta_cache.ts";
import { raw } from "../codecs/raw.ts";
import { rle } from "../codecs/rle.ts";
import { zero } from "../codecs/zero.ts";
import { CompactKernels } from "./compact.ts";
import { DeltaEncodeKernel } from "./delta_encode.ts";
import { GpuError } from "./device.ts";
import { RleEncodeKernel } from "./rle_encode.ts";
import {
  DECLINED,
  readBack,
  readbackBuffer,
  storageBuffer,
} from "./_runtime.ts";
import { ZeroScanKernel } from "./zero_scan.ts";

/** Codec chains the GPU encodes: optional `zero`, then `rle` or `delta`; `raw` ends every chain. */
export type GpuChain =
  | readonly ["zero"]
  | readonly ["rle"]
  | readonly ["delta"]
  | readonly ["zero", "rle"]
  | readonly ["zero", "delta"];

/**
 * The GPU chain that runs `chain` (a chain's codecs, `raw` last or not),
 * read from the codecs' own twins (`Codec.gpu`): an optional `zero` twin,
 * then at most one `rle` or `delta` twin, then `raw`; `null` when any codec
 * has no twin or they do not compose so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName } from "@hakobu/hakobu";
 * import { gpuChainOf } from "./batch_encoder.ts";
 *
 * const chain = (...names: string[]) => names.map((n) => codecByName(n));
 * assert.deepEqual(gpuChainOf(chain("zero", "rle", "raw")), ["zero", "rle"]);
 * assert.equal(gpuChainOf(chain("zero", "zstd")), null); // zstd has no GPU twin
 * ```
 */
export function gpuChainOf(
  chain: readonly { readonly name: string; readonly gpu?: string }[],
): GpuChain | null {
  const codecs = chain.at(-1)?.name === "raw" ? chain.slice(0, -1) : chain;
  if (codecs.length === 0 || codecs.some((c) => c.gpu === undefined)) {
    return null;
  }
  const twins = codecs.map((c) => c.gpu!);
  const key = twins.join(",");
  const shapes: Record<string, GpuChain> = {
    "zero": ["zero"],
    "rle": ["rle"],
    "delta": ["delta"],
    "zero,rle": ["zero", "rle"],
    "zero,delta": ["zero", "delta"],
  };
  return shapes[key] ?? null;
}

/** Options of {@link GpuBatchEncoder}. */
export interface GpuBatchEncoderOptions {
  /** The chain, as the CPU `EncoderChain` would run it (`raw` is appended). */
  readonly chain: GpuChain;
  /** Pages per dispatch (`gpu({ batch })`). */
  readonly batch: number;
  /** Page size in bytes (4096; rle supports at most 4096). */
  readonly pageSize: number;
  /** Pages of the VM (for the delta cache's slot count). */
  readonly pageCount: number;
  /** Batches in flight at once (default 3: upload N+1 while N computes and N-1 reads back). */
  readonly inFlight?: number;
  /** The delta codec's options (`cacheBytes`), as announced in its CODEC frame. */
  readonly deltaOptions?: Readonly<Record<string, unknown>>;
}

/** One encoded batch: per page a codec id and its bytes. */
export interface EncodedBatch {
  /** Pages in the batch. */
  readonly count: number;
  /** Wire id of the codec that claimed each page (0 raw, 1 zero, 2 rle, 3 delta). */
  readonly codecIds: Uint8Array;
  /**
   * Page `i`'s encoded bytes: a view into the batch's own copy of the
   * readback (kept as long as the batch object), empty for `zero`, or the
   * caller's page itself for `raw`.
   */
  bytes(i: number): Uint8Array;
}

/** The GPU buffers of one batch in flight. */
interface Slot {
  pages: GPUBuffer;
  olds: GPUBuffer | null;
  hasOld: GPUBuffer | null;
  scratch: GPUBuffer;
  out: GPUBuffer;
  flags: GPUBuffer;
  sizes: GPUBuffer;
  offsets: GPUBuffer;
  meta: GPUBuffer;
  hostPages: Uint8Array<ArrayBuffer>;
  hostOlds: Uint8Array<ArrayBuffer> | null;
  hostHasOld: Uint32Array<ArrayBuffer> | null;
}

/**
 * Sender-side GPU batch encoder: the codec chain of {@link GpuChain} run
 * over batches of pages on the GPU, page for page byte-identical to the CPU
 * `EncoderChain` with the same chain (same codec ids, same bytes; the delta
 * cache is delta.ts's own `DeltaCache`: direct-mapped, `pfn % slots`, newest
 * wins, cached from a page's second send on).
 *
 * Per batch: the pages (and, for delta, the cached old versions) are copied
 * into one host array and uploaded with one `queue.writeBuffer`; one submit
 * runs `zero_scan`, the codec kernel, `scan` and `compact`, then copies
 * flags, sizes and offsets to a MAP_READ buffer; a second, exact-size copy
 * reads back only the encoded bytes.
 *
 * Overlap: up to `inFlight` batches (default 3) each own their buffers
 * (a slot). Call {@link encode} for the next batch without awaiting the
 * previous one: while batch N's kernels run and batch N-1 is mapped and
 * read back, the host packs and uploads batch N+1. Not overlapped: the host
 * packing (a memcpy of the batch, and the delta cache lookups) runs on the
 * JS thread, and the two readbacks of one batch are sequential.
 *
 * In a migration, each channel's encode Worker (`pipeline/encode_worker.ts`)
 * owns one per GPU chain and frames its output as a BATCH payload with
 * `BatchEncoderChain.encodeWith`, exactly as the CPU chain would have.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codecByName, GpuBatchEncoder, openGpu } from "@hakobu/hakobu";
 *
 * const gpu = await openGpu({ prefer: "gpu" }); // null where there is no adapter
 * if (gpu) {
 *   const enc = new GpuBatchEncoder(gpu.device, {
 *     chain: ["zero", "rle"],
 *     batch: 1024,
 *     pageSize: 4096,
 *     pageCount: 16,
 *   });
 *   const pages = [new Uint8Array(4096), new Uint8Array(4096).fill(0xab)];
 *   const b = await enc.encode([3, 4], pages);
 *   assert.deepEqual(
 *     [...b.codecIds],
 *     ["zero", "rle"].map((n) => codecByName(n).id),
 *   );
 *   assert.deepEqual(
 *     b.bytes(1),
 *     new Uint8Array([0, 4, 0, 0, 0xab, 0xab, 0xab, 0xab]),
 *   );
 *   // A channel then frames it with `BatchEncoderChain.encodeWith`.
 *   enc.destroy();
 *   gpu.device.destroy();
 * }
 * ```
 */
export class GpuBatchEncoder {
  readonly #device: GPUDevice;
  readonly #chain: GpuChain;
  readonly #batch: number;
  readonly #ps: number;
  readonly #zero: ZeroScanKernel;
  readonly #rle: RleEncodeKernel | null;
  readonly #delta: DeltaEncodeKernel | null;
  readonly #compact: CompactKernels;
  readonly #free: Slot[] = [];
  readonly #waiters: ((s: Slot) => void)[] = [];
  readonly #slots: Slot[] = [];
  // The delta codec's own cache class, so the rules cannot drift apart.
  readonly #cache: DeltaCache | null;

  /**
   * Compiles the chain's kernels on `device` and allocates buffers for
   * `inFlight` batches (at least one), and the delta cache when the chain
   * ends in `delta`.
   *
   * @param device The WebGPU device to run on.
   * @param options The chain, batch size and geometry.
   * @throws {GpuError} when the batch is not a positive integer or does not
   *   fit the device's storage binding limit.
   * @throws {CodecError} when `deltaOptions` are invalid.
   */
  constructor(device: GPUDevice, options: GpuBatchEncoderOptions) {
    const { chain, batch, pageSize, pageCount } = options;
    const inFlight = options.inFlight ?? 3;
    if (!Number.isInteger(batch) || batch < 1) {
      throw new GpuError(
        `Bad GPU batch "${batch}": expected a positive integer of pages`,
      );
    }
    if (batch * pageSize > device.limits.maxStorageBufferBindingSize) {
      throw new GpuError(
        `Bad GPU batch "${batch}": ${batch} pages of ${pageSize} bytes exceed the device's storage binding limit (${device.limits.maxStorageBufferBindingSize} bytes); at most ${
          Math.floor(device.limits.maxStorageBufferBindingSize / pageSize)
        } pages`,
      );
    }
    this.#device = device;
    this.#chain = chain;
    this.#batch = batch;
    this.#ps = pageSize;
    const codec = chain[chain.length - 1];
    this.#zero = new ZeroScanKernel(device);
    this.#rle = codec === "rle" ? new RleEncodeKernel(device) : null;
    this.#delta = codec === "delta" ? new DeltaEncodeKernel(device) : null;
    this.#compact = new CompactKernels(device);
    if (this.#delta) {
      // Validates the options exactly as the CPU codec does.
      delta.createEncoder!({
        pageSize,
        pageCount,
        options: options.deltaOptions ?? {},
      });
      const cacheBytes = Number(
        options.deltaOptions?.cacheBytes ?? 64 * 1024 * 1024,
      );
      this.#cache = new DeltaCache({ pageSize, pageCount, cacheBytes });
    } else {
      this.#cache = null;
    }
    for (let i = 0; i < Math.max(1, inFlight); i++) {
      const s = this.#makeSlot();
      this.#slots.push(s);
      this.#free.push(s);
    }
  }

  /** Wire ids of the chain's codecs, `raw` included, for the CODEC frames. */
  get codecIds(): number[] {
    const ids = this.#chain.map((c) =>
      ({ zero: zero.id, rle: rle.id, delta: delta.id })[c]
    );
    return [...ids, raw.id];
  }

  /**
   * Encodes one batch of at most `batch` pages (`pages[i]` is page
   * `pfns[i]`, `pageSize` bytes). Calls may overlap (up to `inFlight` run
   * at once; later ones wait, in call order); results resolve in any order,
   * each for its own batch. The pages are copied for upload when the batch
   * gets its slot, but `raw` entries are handed back as the caller's views:
   * keep the pages unchanged until the batch is consumed.
   */
  async encode(
    pfns: ArrayLike<number>,
    pages: readonly Uint8Array[],
  ): Promise<EncodedBatch> {
    const n = pages.length;
    if (n > this.#batch || pfns.length !== n) {
      throw new GpuError(
        `Cannot encode a batch of ${n} pages with ${pfns.length} pfns: expected one pfn per page and at most ${this.#batch} pages`,
      );
    }
    const slot = await this.#acquire();
    try {
      return await this.#run(slot, pfns, pages);
    } finally {
      this.#release(slot);
    }
  }

  /**
   * Records a page sent by another path (the CPU chain) in this encoder's
   * delta cache, so a later GPU batch deltas against what the receiver holds.
   */
  recordSent(pfn: number, page: Uint8Array): void {
    this.#cache?.record(pfn, page);
  }

  /** Frees the GPU buffers (in-flight batches must have resolved). */
  destroy(): void {
    for (const s of this.#slots) {
      for (
        const b of [
          s.pages,
          s.olds,
          s.hasOld,
          s.scratch,
          s.out,
          s.flags,
          s.sizes,
          s.offsets,
          s.meta,
        ]
      ) {
        b?.destroy();
      }
    }
  }

  async #run(
    slot: Slot,
    pfns: ArrayLike<number>,
    pages: readonly Uint8Array[],
  ): Promise<EncodedBatch> {
    const d = this.#device;
    const ps = this.#ps;
    const n = pages.length;
    const codecIds = new Uint8Array(n);
    if (n === 0) return { count: 0, codecIds, bytes: () => new Uint8Array(0) };
    // Host side (synchronous, in call order): pack, and mirror delta's cache.
    for (let i = 0; i < n; i++) {
      if (pages[i].length !== ps) {
        throw new GpuError(
          `Cannot encode page ${pfns[i]}: expected ${ps} bytes, got ${
            pages[i].length
          }`,
        );
      }
      slot.hostPages.set(pages[i], i * ps);
    }
    if (this.#cache && slot.hostOlds && slot.hostHasOld) {
      for (let i = 0; i < n; i++) {
        const pfn = pfns[i];
        const old = this.#cache.lookup(pfn);
        if (old) {
          slot.hostOlds.set(old, i * ps);
          slot.hostHasOld[i] = 1;
        } else {
          slot.hostHasOld[i] = 0;
        }
        // Every page is sent, whichever codec claims it: record it now (as `sent`).
        this.#cache.record(pfn, pages[i]);
      }
    }
    d.queue.writeBuffer(slot.pages, 0, slot.hostPages, 0, n * ps);
    if (slot.olds && slot.hostOlds && slot.hasOld && slot.hostHasOld) {
      d.queue.writeBuffer(slot.olds, 0, slot.hostOlds, 0, n * ps);
      d.queue.writeBuffer(slot.hasOld, 0, slot.hostHasOld, 0, n);
    }
    const enc = d.createCommandEncoder();
    const useZero = this.#chain[0] === "zero";
    if (useZero) {
      this.#zero.record(enc, { pages: slot.pages, flags: slot.flags }, n, ps);
    }
    const codec = this.#rle ? rle : this.#delta ? delta : null;
    if (this.#rle) {
      this.#rle.record(
        enc,
        { pages: slot.pages, scratch: slot.scratch, sizes: slot.sizes },
        n,
        ps,
      );
    } else if (this.#delta) {
      this.#delta.record(
        enc,
        {
          pages: slot.pages,
          olds: slot.olds!,
          hasOld: slot.hasOld!,
          scratch: slot.scratch,
          sizes: slot.sizes,
        },
        n,
        ps,
      );
    }
    if (codec) {
      this.#compact.record(
        enc,
        {
          scratch: slot.scratch,
          sizes: slot.sizes,
          offsets: slot.offsets,
          out: slot.out,
        },
        n,
        ps,
      );
      enc.copyBufferToBuffer(slot.sizes, 0, slot.meta, 0, n * 4);
      enc.copyBufferToBuffer(slot.offsets, 0, slot.meta, n * 4, (n + 1) * 4);
    }
    if (useZero) {
      enc.copyBufferToBuffer(slot.flags, 0, slot.meta, (2 * n + 1) * 4, n * 4);
    }
    d.queue.submit([enc.finish()]);
    await slot.meta.mapAsync(GPUMapMode.READ, 0, (3 * n + 1) * 4);
    const meta = new Uint32Array(
      slot.meta.getMappedRange(0, (3 * n + 1) * 4).slice(0),
    );
    slot.meta.unmap();
    const sizes = meta.subarray(0, n);
    const offsets = meta.subarray(n, 2 * n + 1);
    const flags = meta.subarray(2 * n + 1, 3 * n + 1);
    const words = codec ? offsets[n] : 0;
    const data = words > 0
      ? await readBack(d, slot.out, words * 4, "encoded")
      : new Uint8Array(0);
    const empty = new Uint8Array(0);
    for (let i = 0; i < n; i++) {
      if (useZero && flags[i] === 1) codecIds[i] = zero.id;
      else if (codec && sizes[i] !== DECLINED) codecIds[i] = codec.id;
      else codecIds[i] = raw.id;
    }
    return {
      count: n,
      codecIds,
      bytes(i: number): Uint8Array {
        const id = codecIds[i];
        if (id === zero.id) return empty;
        if (id === raw.id) return pages[i];
        const at = offsets[i] * 4;
        return data.subarray(at, at + sizes[i]);
      },
    };
  }

  #makeSlot(): Slot {
    const d = this.#device;
    const n = this.#batch;
    const ps = this.#ps;
    const isDelta = this.#delta !== null;
    return {
      pages: storageBuffer(d, n * ps, "batch pages"),
      olds: isDelta ? storageBuffer(d, n * ps, "batch olds") : null,
      hasOld: isDelta ? storageBuffer(d, n * 4, "batch hasOld") : null,
      scratch: storageBuffer(d, n * ps, "batch scratch"),
      out: storageBuffer(d, n * ps, "batch out"),
      flags: storageBuffer(d, n * 4, "batch flags"),
      sizes: storageBuffer(d, n * 4, "batch sizes"),
      offsets: storageBuffer(d, (n + 1) * 4, "batch offsets"),
      meta: readbackBuffer(d, (3 * n + 1) * 4, "batch meta"),
      hostPages: new Uint8Array(n * ps),
      hostOlds: isDelta ? new Uint8Array(n * ps) : null,
      hostHasOld: isDelta ? new Uint32Array(n) : null,
    };
  }

  #acquire(): Promise<Slot> {
    const s = this.#free.pop();
    if (s && this.#waiters.length === 0) return Promise.resolve(s);
    if (s) this.#free.push(s);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #release(slot: Slot): void {
    const next = this.#waiters.shift();
    if (next) next(slot);
    else this.#free.push(slot);
  }
}
