/**
 * Opening a WebGPU device for the GPU codec twins, with the fallback rules of
 * a plan's `gpu({ prefer, require })` settings.
 *
 * @module
 */

import { HakobuError } from "../errors.ts";

/** The GPU layer could not do what was asked: no adapter when one is required, a limit too small. */
export class GpuError extends HakobuError {}

/** The part of `navigator.gpu` that {@link openGpu} uses; tests inject a fake one. */
export interface GpuEntry {
  /** As `GPU.requestAdapter`. */
  requestAdapter(
    options?: GPURequestAdapterOptions,
  ): Promise<GPUAdapter | null>;
}

/** Options of {@link openGpu}; the first two mirror a plan's `GpuSettings`. */
export interface OpenGpuOptions {
  /** `cpu`: never touch WebGPU; `gpu`: any adapter, software ones too; `auto` (default): a hardware adapter only. */
  readonly prefer?: "gpu" | "cpu" | "auto";
  /** Throw a {@link GpuError} instead of returning `null` when no adapter is found. */
  readonly require?: boolean;
  /** The WebGPU entry point; defaults to `navigator.gpu` (tests inject a fake one). */
  readonly gpu?: GpuEntry | null;
  /** Told why `null` is returned (for the report's fallback statement). */
  readonly onFallback?: (reason: string) => void;
}

/** The limits the kernels depend on, as granted to the device. */
export interface GpuLimits {
  /** Largest storage binding in bytes: bounds pages per batch (`batch * pageSize`). */
  readonly maxStorageBufferBindingSize: number;
  /** Largest buffer in bytes. */
  readonly maxBufferSize: number;
  /** Most workgroups per dispatch dimension (65535): more pages use a 2D dispatch. */
  readonly maxComputeWorkgroupsPerDimension: number;
}

/** An open GPU: the device the kernels run on and what it is. */
export interface GpuContext {
  /** The device, with {@link GpuLimits} raised to the adapter's maxima. */
  readonly device: GPUDevice;
  /** The adapter, in words, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H200`. */
  readonly adapterInfo: {
    readonly description: string;
    readonly vendor: string;
    readonly isFallbackAdapter: boolean;
  };
  /** Limits granted to the device. */
  readonly limits: GpuLimits;
  /**
   * Set when the adapter is a software one (lavapipe): the kernels are
   * correct there but slower than the CPU codecs.
   */
  readonly fallbackReason?: string;
}

/** The message of a required but missing adapter. */
export const NO_ADAPTER_MESSAGE =
  "No WebGPU adapter: Deno found no Vulkan, Metal or DirectX device; install mesa-vulkan-drivers for a software adapter, or run on a machine with a GPU; or set gpu({ require: false })";

/**
 * Opens a WebGPU device as a plan's GPU settings allow.
 *
 * - `prefer: "cpu"` returns `null` without touching WebGPU;
 * - no adapter (or no `navigator.gpu`): `null`, or a {@link GpuError} with
 *   `require: true`;
 * - `prefer: "auto"` (the default) declines a software adapter (lavapipe):
 *   the CPU codecs are faster than it; `prefer: "gpu"` takes any adapter and
 *   says so in `fallbackReason`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openGpu } from "@hakobu/hakobu";
 *
 * assert.equal(await openGpu({ prefer: "cpu" }), null); // never touches WebGPU
 * const gpu = await openGpu({
 *   prefer: "gpu",
 *   onFallback: (r) => console.log(r),
 * });
 * if (gpu) {
 *   assert.ok(gpu.adapterInfo.description.length > 0); // e.g. "NVIDIA H200"
 *   gpu.device.destroy();
 * }
 * ```
 */
export async function openGpu(
  options: OpenGpuOptions = {},
): Promise<GpuContext | null> {
  const prefer = options.prefer ?? "auto";
  const require = options.require ?? false;
  const fallback = (reason: string): null => {
    if (require) throw new GpuError(`${NO_ADAPTER_MESSAGE} (${reason})`);
    options.onFallback?.(reason);
    return null;
  };
  if (prefer === "cpu") {
    options.onFallback?.('the policy prefers the CPU (gpu({ prefer: "cpu" }))');
    return null;
  }
  const entry = options.gpu !== undefined
    ? options.gpu
    : (globalThis.navigator as { gpu?: GpuEntry } | undefined)?.gpu;
  if (!entry) return fallback("this runtime has no navigator.gpu");
  ensureRuntimeDir();
  ensureVulkanOnLinux();
  let adapter: GPUAdapter | null;
  try {
    adapter = await entry.requestAdapter({
      powerPreference: "high-performance",
    });
  } catch (e) {
    return fallback(`requestAdapter failed: ${(e as Error).message}`);
  }
  if (!adapter) return fallback("requestAdapter returned no adapter");
  const info = adapter.info;
  const adapterInfo = {
    description: info?.description || info?.device || "unknown adapter",
    vendor: info?.vendor ?? "",
    isFallbackAdapter: Boolean(
      info?.isFallbackAdapter ??
        (adapter as unknown as { isFallbackAdapter?: boolean })
          .isFallbackAdapter,
    ),
  };
  if (adapterInfo.isFallbackAdapter && prefer === "auto" && !require) {
    return fallback(
      `only a software adapter is present ("${adapterInfo.description}"), slower than the CPU codecs; gpu({ prefer: "gpu" }) uses it anyway`,
    );
  }
  const want = {
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
    maxComputeWorkgroupsPerDimension:
      adapter.limits.maxComputeWorkgroupsPerDimension,
  };
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits: want });
  } catch (e) {
    if (require) {
      throw new GpuError(
        `Cannot open a device on "${adapterInfo.description}": ${
          (e as Error).message
        }`,
        { cause: e },
      );
    }
    return fallback(`requestDevice failed: ${(e as Error).message}`);
  }
  return {
    device,
    adapterInfo,
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupsPerDimension:
        device.limits.maxComputeWorkgroupsPerDimension,
    },
    fallbackReason: adapterInfo.isFallbackAdapter
      ? `software adapter "${adapterInfo.description}": correct, not fast`
      : undefined,
  };
}

/**
 * Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid or not set" on
 * every adapter request without a private runtime directory; give this
 * process one (mode 0700) when the environment has none, so probing for a
 * GPU stays quiet.
 */
function ensureRuntimeDir(): void {
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    const dir = Deno.makeTempDirSync({ prefix: "hakobu-xdg-" });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
  } catch {
    // No env or write permission: the driver's warning is harmless.
  }
}

/**
 * On Linux, asks Deno's WebGPU (wgpu) for its Vulkan backend alone
 * (`DENO_WEBGPU_BACKEND=vulkan`) unless the environment names backends
 * itself. Without it wgpu also probes OpenGL, which loads libglvnd's
 * `libEGL.so.1`; at process exit that library's destructor frees its
 * per-thread state while Worker threads that touched it are exiting too,
 * and glibc aborts with "double free or corruption" or "corrupted size vs.
 * prev_size in fastbins" after all work is done (a core dump showed both
 * threads inside libEGL). Measured on the doc tests of `engine/gpu`: 4
 * aborts in 114 runs with OpenGL probed, none in 160 with Vulkan alone.
 * hakobu's kernels need compute shaders, which every Linux GPU with a
 * Vulkan driver has; a machine with only an OpenGL driver can still set
 * `DENO_WEBGPU_BACKEND=gl` before starting hakobu. Deno reads the variable
 * when it first creates its WebGPU instance, so this must run before the
 * first `requestAdapter`.
 */
function ensureVulkanOnLinux(): void {
  if (Deno.build.os !== "linux") return;
  try {
    if (Deno.env.get("DENO_WEBGPU_BACKEND") !== undefined) return;
    Deno.env.set("DENO_WEBGPU_BACKEND", "vulkan");
  } catch {
    // No env permission: wgpu probes every backend, as before.
  }
}
