/**
 * The engine: the pre-copy loop and its pipeline, codecs, the wire protocol,
 * the receivers and their session core, the hypervisor drivers (`sim/`,
 * `qemu/`, `xen/`), the stream tunnel (`stream/`) and the report of a
 * migration as data (tables, charts and HTML of it are in `report/`).
 *
 * Read in this order: `plan.ts` (what a policy tells the engine),
 * `steering.ts` (how every backend asks it), `round_report.ts` (how a
 * backend reports a round it steered), `driver.ts` (what a hypervisor
 * offers), `codecs/`, `wire/`, `precopy.ts` (source side), `receiver.ts`
 * (destination side), `report.ts`, `backend/` (sim, QEMU and Xen behind one
 * interface).
 *
 * @module
 */

export * from "./plan.ts";
export * from "./steering.ts";
export * from "./round_report.ts";
export * from "./driver.ts";
export * from "./errors.ts";
export * from "./digest.ts";
export * from "./format.ts";
export * from "./zero_page.ts";
export * from "./word_view.ts";
export * from "./report.ts";
export * from "./precopy.ts";
export * from "./default_channels.ts";
export * from "./receiver.ts";
export * from "./codecs/mod.ts";
export * from "./wire/mod.ts";
export * from "./transport/mod.ts";
// What a program that migrates with the GPU uses; the kernels and their
// WGSL sources are for benches and other pipelines, from `./gpu`
// (engine/gpu/mod.ts).
export {
  type EncodedBatch,
  GpuBatchDecoder,
  type GpuBatchDecoderOptions,
  GpuBatchEncoder,
  type GpuBatchEncoderOptions,
  type GpuChain,
  type GpuContext,
  type GpuDecodeCodec,
  type GpuEntry,
  GpuError,
  type GpuLimits,
  NO_ADAPTER_MESSAGE,
  openGpu,
  type OpenGpuOptions,
} from "./gpu/mod.ts";
export * from "./stream/mod.ts";
export * from "./qemu/mod.ts";
export * from "./xen/mod.ts";
export * from "./backend/mod.ts";
// The sim driver by name; its workload objects (one is called `zero`, like
// the codec) stay reachable through workloadByName().
export {
  type MarkDirty,
  type Region,
  SimError,
  SimMemorySink,
  type SimMemorySinkOptions,
  SimVm,
  type SimVmOptions,
  type SinkState,
  type Workload,
  workloadByName,
  workloadNames,
  type WorkloadWriter,
} from "./sim/mod.ts";
