/**
 * Small helpers shared by the kernel drivers: 2D dispatch, the per-dispatch
 * parameter block, buffers and readback.
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

/** A compute pipeline from WGSL source (entry point `main`). */
export function computePipeline(
  device: GPUDevice,
  code: string,
  label: string,
): GPUComputePipeline {
  const module = device.createShaderModule({ code, label });
  return device.createComputePipeline({
    label,
    layout: "auto",
    compute: { module, entryPoint: "main" },
  });
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

/** Records one dispatch of `groups` workgroups of `pipeline` with buffers bound at 1, 2, … after the params. */
export function recordDispatch(
  device: GPUDevice,
  encoder: GPUCommandEncoder,
  pipeline: GPUComputePipeline,
  params: { count: number; pageWords: number; extra?: number },
  groups: number,
  buffers: readonly GPUBuffer[],
): void {
  if (groups === 0) return;
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
    new Uint32Array([params.count, x, params.pageWords, params.extra ?? 0]),
  );
  const entries: GPUBindGroupEntry[] = [{
    binding: 0,
    resource: { buffer: uniform },
  }];
  buffers.forEach((buffer, i) =>
    entries.push({ binding: i + 1, resource: { buffer } })
  );
  const bindGroup = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries,
  });
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(x, y);
  pass.end();
}

/** Copies `bytes` bytes of `src` into a fresh array through a MAP_READ buffer. */
export async function readBack(
  device: GPUDevice,
  src: GPUBuffer,
  bytes: number,
): Promise<Uint8Array> {
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  const staging = readbackBuffer(device, size, "readback");
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
