/**
 * Small helpers shared by the kernel drivers: a compiled kernel and its
 * dispatch (2D grid, the per-dispatch parameter block), buffers, one-shot
 * runs and readback.
 *
 * @module
 */

/** Marks a page whose encoding the kernel declined (not smaller than the page). */
export const DECLINED = 0xffffffff;

/** The WGSL parameter block every kernel starts with. */
export const PARAMS_WGSL = `
struct Params {
  count: u32,     // pages (or chunks) in the batch
  groupsX: u32,   // workgroups along x of a 2D dispatch
  pageWords: u32, // words per page (or per chunk)
  extra: u32,
}
@group(0) @binding(0) var<uniform> params: Params;
`;

/**
 * Splits `groups` workgroups into a 2D grid no wider than `maxPerDim`
 * (65535 on every adapter today); a kernel finds its linear index as
 * `wid.x + wid.y * params.groupsX`.
 */
export function dispatchGrid(
  groups: number,
  maxPerDim: number,
): [number, number] {
  if (groups <= 0) return [0, 0];
  const x = Math.min(groups, maxPerDim);
  return [x, Math.ceil(groups / x)];
}

/** A storage buffer of at least 4 bytes (rounded up to a multiple of 4). */
export function storageBuffer(
  device: GPUDevice,
  bytes: number,
  label: string,
  extraUsage = 0,
): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(4, Math.ceil(bytes / 4) * 4),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST |
      GPUBufferUsage.COPY_SRC | extraUsage,
  });
}

/** A MAP_READ staging buffer. */
export function readbackBuffer(
  device: GPUDevice,
  bytes: number,
  label: string,
): GPUBuffer {
  return device.createBuffer({
    label,
    size: Math.max(4, Math.ceil(bytes / 4) * 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
}

/** One dispatch of a {@link ComputeKernel}: its params block and what to bind. */
export interface KernelDispatch {
  /** `params.count`: pages (or chunks) in the batch. */
  readonly count: number;
  /** `params.pageWords`: words per page (or per chunk). */
  readonly pageWords: number;
  /** `params.extra` (default 0). */
  readonly extra?: number;
  /** Workgroups to run, split by {@link dispatchGrid}; 0 records nothing. */
  readonly groups: number;
  /** Storage buffers, bound at 1, 2, … after the params at 0. */
  readonly buffers: readonly GPUBuffer[];
}

/**
 * One WGSL kernel (entry point `main`, layout `auto`) compiled on one device,
 * recorded with a fresh params block at binding 0 and the dispatch's buffers
 * at 1, 2, ….
 *
 * @example
 * ```ts
 * const k = new ComputeKernel(device, ZERO_SCAN_WGSL, "zero_scan");
 * k.record(enc, { count, pageWords: 1024, groups: count, buffers: [pages, flags] });
 * ```
 */
export class ComputeKernel {
  /** The device the pipeline belongs to. */
  readonly device: GPUDevice;
  readonly #pipeline: GPUComputePipeline;

  /** Compiles `code` on `device`; `label` names the shader module and the pipeline. */
  constructor(device: GPUDevice, code: string, label: string) {
    this.device = device;
    const module = device.createShaderModule({ code, label });
    this.#pipeline = device.createComputePipeline({
      label,
      layout: "auto",
      compute: { module, entryPoint: "main" },
    });
  }

  /** Records one dispatch into `encoder` (nothing when `groups` is 0). */
  record(encoder: GPUCommandEncoder, dispatch: KernelDispatch): void {
    const { groups, buffers } = dispatch;
    if (groups === 0) return;
    const device = this.device;
    const [x, y] = dispatchGrid(
      groups,
      device.limits.maxComputeWorkgroupsPerDimension,
    );
    const uniform = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(
      uniform,
      0,
      new Uint32Array([
        dispatch.count,
        x,
        dispatch.pageWords,
        dispatch.extra ?? 0,
      ]),
    );
    const entries: GPUBindGroupEntry[] = [{
      binding: 0,
      resource: { buffer: uniform },
    }];
    buffers.forEach((buffer, i) =>
      entries.push({ binding: i + 1, resource: { buffer } })
    );
    const bindGroup = device.createBindGroup({
      layout: this.#pipeline.getBindGroupLayout(0),
      entries,
    });
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.#pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y);
    pass.end();
  }
}

/**
 * Copies the first `bytes` bytes of `src` into a fresh array through a
 * MAP_READ buffer (one submit, one map). The caller has submitted the work
 * that fills `src`.
 */
export async function readBack(
  device: GPUDevice,
  src: GPUBuffer,
  bytes: number,
  label = "readback",
): Promise<Uint8Array> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = readbackBuffer(device, size, label);
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(src, 0, staging, 0, size);
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Uint8Array(staging.getMappedRange().slice(0, bytes));
  staging.unmap();
  staging.destroy();
  return out;
}

/** Packs pages (each `pageSize` bytes) into one array, page `i` at `i * pageSize`. */
export function packPages(
  pages: readonly Uint8Array[],
  pageSize: number,
  into?: Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  const out = into ?? new Uint8Array(pages.length * pageSize);
  for (let i = 0; i < pages.length; i++) out.set(pages[i], i * pageSize);
  return out;
}

/** A storage buffer for {@link runOnce}: its size in bytes, or host data to upload into it. */
export type BufferInit =
  | number
  | Uint8Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>;

/** Options of {@link runOnce}; `K` names the buffers. */
export interface RunOnceOptions<K extends string, T> {
  /** Prefix of the buffers' labels (`"<label> <name>"`). */
  readonly label: string;
  /** One storage buffer per name, created in this order. */
  readonly buffers: Readonly<Record<K, BufferInit>>;
  /** Records the work; it is submitted as one command buffer. */
  record(
    encoder: GPUCommandEncoder,
    buffers: Readonly<Record<K, GPUBuffer>>,
  ): void;
  /** Reads the results back once the work is submitted. */
  read(buffers: Readonly<Record<K, GPUBuffer>>): Promise<T>;
}

/**
 * Runs GPU work once with buffers of its own, for the kernel drivers' `run()`
 * (tests and benches): creates a storage buffer per entry of `buffers`
 * (uploading those given as host data), records `record` into one submit,
 * awaits `read`, then destroys the buffers, also when something throws.
 *
 * @example
 * ```ts
 * const flags = await runOnce(device, {
 *   label: "zero_scan",
 *   buffers: { pages: packPages(pages, 4096), flags: pages.length * 4 },
 *   record: (enc, b) => kernel.record(enc, b, pages.length, 4096),
 *   read: (b) => readBack(device, b.flags, pages.length * 4),
 * });
 * ```
 */
export async function runOnce<K extends string, T>(
  device: GPUDevice,
  options: RunOnceOptions<K, T>,
): Promise<T> {
  const made = {} as Record<K, GPUBuffer>;
  try {
    const inits = Object.entries(options.buffers) as [K, BufferInit][];
    for (const [name, init] of inits) {
      const bytes = typeof init === "number" ? init : init.byteLength;
      made[name] = storageBuffer(device, bytes, `${options.label} ${name}`);
      if (typeof init !== "number") {
        device.queue.writeBuffer(made[name], 0, init);
      }
    }
    const encoder = device.createCommandEncoder();
    options.record(encoder, made);
    device.queue.submit([encoder.finish()]);
    return await options.read(made);
  } finally {
    for (const buffer of Object.values<GPUBuffer>(made)) buffer.destroy();
  }
}
