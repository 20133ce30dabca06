/**
 * The simulated hypervisor, driver `sim`: an in-process VM whose memory lives
 * in a `SharedArrayBuffer` and is written concurrently by a workload running
 * in a Web Worker, with a dirty bitmap, pause/resume, and a matching
 * destination memory sink. Deterministic from a seed; used by tests, the REPL
 * and benchmarks.
 *
 * - {@link SimVm} (`sim_vm.ts`): the source driver.
 * - {@link SimMemorySink} (`sim_sink.ts`): destination memory.
 * - `workloads/`: idle, zero, unique, random, partial, memcached, postgres, lmbench.
 * - {@link Prng} (`prng.ts`): the deterministic generator behind all content.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, SimMemorySink, SimVm } from "@hakobu/hakobu";
 *
 * await using vm = await SimVm.create({
 *   memoryBytes: MiB(16),
 *   workload: "memcached",
 * });
 * const sink = new SimMemorySink({
 *   pageSize: vm.pageSize,
 *   pageCount: vm.pageCount,
 * });
 * assert.equal(sink.memory.length, vm.memory.length);
 * ```
 *
 * @module
 */

export { SimError } from "./errors.ts";
export { deriveSeed, mix32, Prng } from "./prng.ts";
export { formatSize, SimVm, type SimVmOptions } from "./sim_vm.ts";
export {
  SimMemorySink,
  type SimMemorySinkOptions,
  type SinkState,
} from "./sim_sink.ts";
export * from "./workloads/mod.ts";
