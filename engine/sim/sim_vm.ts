/**
 * The simulated VM, driver `sim`.
 *
 * @module
 */

import type { SourceDriver } from "../driver.ts";
import { type MemoryDigest, memoryDigest } from "../digest.ts";
import {
  C64_PAGES_WRITTEN,
  C_FAILED,
  C_PARKED,
  C_RATE,
  C_STATE,
  CONTROL_BYTES,
  PAUSE,
  RUN,
  STOP,
  type WorkerReport,
  type WorkerStart,
} from "./_control.ts";
import { SimError } from "./errors.ts";
import { workloadByName } from "./workloads/registry.ts";
import { PAGE_SIZE, type Region, type Workload } from "./workloads/workload.ts";

/** How long pause/resume wait for the worker's acknowledgement before failing. */
const ACK_TIMEOUT_MS = 5000;

/** Options of {@link SimVm.create}. */
export interface SimVmOptions {
  /** Guest memory in bytes, a positive multiple of 4096. */
  readonly memoryBytes: number;
  /** Workload name, see `workloadNames()`. */
  readonly workload: string;
  /** Seed of the initial memory content and of the writes (default 1). */
  readonly seed?: number;
  /** Dirty rate in page writes per second; overrides the workload's default; 0 = no writes. */
  readonly dirtyRate?: number;
}

/**
 * Formats a byte size for descriptions: `"1.00 GiB"`, `"64.00 MiB"`, `"12.00 KiB"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSize } from "./sim_vm.ts";
 *
 * assert.equal(formatSize(1 << 30), "1.00 GiB");
 * assert.equal(formatSize(12 << 10), "12.00 KiB");
 * ```
 */
export function formatSize(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
  return `${(bytes / 2 ** 10).toFixed(2)} KiB`;
}

/** Checks options; returns the workload, seed and dirty rate to use. */
function validate(
  opts: SimVmOptions,
): { workload: Workload; seed: number; rate: number } {
  const { memoryBytes } = opts;
  if (
    !Number.isSafeInteger(memoryBytes) || memoryBytes <= 0 ||
    memoryBytes % PAGE_SIZE !== 0
  ) {
    throw new SimError(
      `Invalid memory size "${memoryBytes}": expected a positive multiple of ${PAGE_SIZE} bytes`,
      "memoryBytes",
    );
  }
  const workload = workloadByName(opts.workload);
  const seed = opts.seed ?? 1;
  if (!Number.isInteger(seed)) {
    throw new SimError(`Invalid seed "${seed}": expected an integer`, "seed");
  }
  const rate = opts.dirtyRate ?? workload.dirtyRate;
  validateRate(rate);
  return { workload, seed: seed | 0, rate };
}

function validateRate(rate: number): void {
  if (!Number.isFinite(rate) || rate < 0 || rate > 2 ** 31 - 1) {
    throw new SimError(
      `Invalid dirty rate "${rate}": expected a number of pages per second, 0 or more`,
      "dirtyRate",
    );
  }
}

function allocate(bytes: number, what: string): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes);
  } catch (e) {
    throw new SimError(
      `Cannot allocate ${what} of "${formatSize(bytes)}": ${String(e)}`,
      "memoryBytes",
      {
        cause: e,
      },
    );
  }
}

/**
 * A simulated VM: guest memory in a `SharedArrayBuffer`, a dirty bitmap, and
 * a workload writing concurrently in a Web Worker. Implements the engine's
 * {@link SourceDriver}. Deterministic from its seed: equal options give equal
 * initial memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, SimVm } from "@hakobu/hakobu";
 *
 * const vm = await SimVm.create({
 *   memoryBytes: MiB(4),
 *   workload: "memcached",
 *   seed: 1,
 * });
 * await vm.startDirtyLog();
 * const pfns = new Uint32Array(vm.pageCount);
 * await new Promise((r) => setTimeout(r, 200));
 * const n = vm.syncDirty(pfns); // pages written in the last 200 ms
 * assert.ok(n > 0 && n <= vm.pageCount);
 * await vm.pause();
 * assert.equal(vm.description, "sim:memcached 4.00 MiB seed 1");
 * assert.equal((await vm.digest()).ranges.length, 32);
 * await vm.close();
 * ```
 */
export class SimVm implements SourceDriver {
  /** Page size in bytes (4096). */
  readonly pageSize: number = PAGE_SIZE;
  /** Number of pages of guest memory. */
  readonly pageCount: number;
  /** The whole guest memory; live, the workload writes it. Read it, never write it. */
  readonly memory: Uint8Array;
  /** Name of the workload. */
  readonly workload: string;
  /** Seed of the content and writes. */
  readonly seed: number;
  /** The workload's memory layout for this VM (kernel, heap, WAL, ...). */
  readonly regions: readonly Region[];
  /** Milliseconds the initial fill took. */
  readonly initMillis: number;
  /** Short description, e.g. `"sim:memcached 1.00 GiB seed 1"`. */
  readonly description: string;

  readonly #bitmap: Int32Array;
  readonly #control: Int32Array;
  readonly #counters: BigInt64Array;
  readonly #worker: Worker;
  #error: string | undefined;
  #paused = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #logging = false;

  private constructor(
    init: {
      memory: Uint8Array;
      bitmap: Int32Array;
      control: Int32Array;
      worker: Worker;
      workload: Workload;
      seed: number;
      initMillis: number;
    },
  ) {
    this.memory = init.memory;
    this.pageCount = init.memory.length / PAGE_SIZE;
    this.workload = init.workload.name;
    this.seed = init.seed;
    this.regions = init.workload.regions(this.pageCount);
    this.initMillis = init.initMillis;
    this.description = `sim:${this.workload} ${
      formatSize(init.memory.length)
    } seed ${init.seed}`;
    this.#bitmap = init.bitmap;
    this.#control = init.control;
    this.#counters = new BigInt64Array(init.control.buffer);
    this.#worker = init.worker;
    this.#worker.onmessage = (e: MessageEvent<WorkerReport>) => {
      if (e.data.type === "error") this.#error = e.data.message;
    };
  }

  /**
   * Creates the VM: allocates memory, fills it with the workload's initial
   * content (in the worker) and starts the workload writing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(16),
   *   workload: "postgres",
   *   dirtyRate: 500,
   * });
   * assert.equal(vm.pageCount, 4096);
   * assert.equal(vm.dirtyRate, 500); // page writes per second
   * ```
   *
   * @throws {SimError} On an unknown workload, a memory size that is not a
   * positive multiple of 4096, a negative dirty rate, or a failed allocation.
   */
  static async create(opts: SimVmOptions): Promise<SimVm> {
    const { workload, seed, rate } = validate(opts);
    const pageCount = opts.memoryBytes / PAGE_SIZE;
    const memory = allocate(opts.memoryBytes, "guest memory");
    const bitmap = allocate(Math.ceil(pageCount / 32) * 4, "dirty bitmap");
    const control = allocate(CONTROL_BYTES, "control block");
    const ctl = new Int32Array(control);
    ctl[C_RATE] = Math.round(rate);
    const worker = new Worker(
      new URL("./workload_worker.ts", import.meta.url),
      { type: "module" },
    );
    const start: WorkerStart = {
      memory,
      bitmap,
      control,
      workload: workload.name,
      seed,
    };
    let initMillis: number;
    try {
      initMillis = await new Promise<number>((resolve, reject) => {
        worker.onmessage = (e: MessageEvent<WorkerReport>) => {
          if (e.data.type === "ready") resolve(e.data.initMillis);
          else {reject(
              new SimError(
                `Workload "${workload.name}" failed to start: ${e.data.message}`,
                "workload",
              ),
            );}
        };
        worker.onerror = (e: ErrorEvent) => {
          e.preventDefault();
          reject(
            new SimError(
              `Workload "${workload.name}" worker failed: ${e.message}`,
              "workload",
            ),
          );
        };
        worker.postMessage(start);
      });
    } catch (e) {
      worker.terminate();
      throw e;
    }
    return new SimVm({
      memory: new Uint8Array(memory),
      bitmap: new Int32Array(bitmap),
      control: ctl,
      worker,
      workload,
      seed,
      initMillis,
    });
  }

  /** Pages written by the workload since creation (after the initial fill). */
  get pagesWritten(): number {
    return Number(Atomics.load(this.#counters, C64_PAGES_WRITTEN));
  }

  /** Current dirty rate in page writes per second. */
  get dirtyRate(): number {
    return Atomics.load(this.#control, C_RATE);
  }

  /** Whether the guest is paused (or closed). */
  get paused(): boolean {
    return this.#paused || this.#closed;
  }

  /**
   * Changes the dirty rate while running, e.g. to watch pre-copy stop
   * converging.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "idle",
   * });
   * vm.setDirtyRate(20000);
   * assert.equal(vm.dirtyRate, 20000);
   * ```
   *
   * @throws {SimError} If `rate` is negative or not a number.
   */
  setDirtyRate(rate: number): void {
    validateRate(rate);
    Atomics.store(this.#control, C_RATE, Math.round(rate));
    Atomics.notify(this.#control, C_STATE);
  }

  /**
   * Clears the dirty bitmap and starts reporting written pages.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "random",
   *   dirtyRate: 100_000,
   * });
   * await vm.startDirtyLog();
   * await new Promise((r) => setTimeout(r, 200));
   * // The pages the workload wrote since logging started:
   * assert.ok(vm.syncDirty(new Uint32Array(vm.pageCount)) > 0);
   * ```
   */
  startDirtyLog(): Promise<void> {
    const bm = this.#bitmap;
    for (let i = 0; i < bm.length; i++) {
      if (bm[i] !== 0) Atomics.store(bm, i, 0);
    }
    this.#logging = true;
    return Promise.resolve();
  }

  /**
   * Fetches and clears the dirty log (`Atomics.exchange` per 32-page word):
   * writes the pfns dirtied since the last sync, ascending, into `out`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "random",
   *   dirtyRate: 100_000,
   * });
   * await vm.startDirtyLog();
   * await new Promise((r) => setTimeout(r, 200));
   * const out = new Uint32Array(vm.pageCount);
   * const n = vm.syncDirty(out);
   * const pfns = out.subarray(0, n);
   * assert.ok(n > 0);
   * assert.ok(pfns.every((pfn, i) => i === 0 || pfns[i - 1] < pfn)); // ascending
   * for (const pfn of pfns) assert.equal(vm.page(pfn).length, 4096); // to send
   * ```
   *
   * @param out Room for `pageCount` pfns.
   * @returns How many pfns were written to `out`.
   * @throws {SimError} If logging was not started or `out` is too small.
   */
  syncDirty(out: Uint32Array): number {
    if (!this.#logging) {
      throw new SimError(
        "Dirty logging is not started: call startDirtyLog() first",
        "startDirtyLog",
      );
    }
    if (out.length < this.pageCount) {
      throw new SimError(
        `Dirty pfn buffer too small "${out.length}": needs room for ${this.pageCount} pfns`,
        "out",
      );
    }
    const bm = this.#bitmap;
    let n = 0;
    for (let i = 0; i < bm.length; i++) {
      if (bm[i] === 0) continue; // plain read: a bit set after it is reported next time
      let v = Atomics.exchange(bm, i, 0);
      const base = i * 32;
      while (v !== 0) {
        const low = v & -v;
        out[n++] = base + 31 - Math.clz32(low);
        v ^= low;
      }
    }
    return n;
  }

  /**
   * A view of page `pfn` of live guest memory (no copy).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "idle",
   * });
   * assert.equal(vm.page(0).length, 4096);
   * assert.throws(() => vm.page(vm.pageCount), /out of range/);
   * ```
   *
   * @throws {SimError} If `pfn` is not a page of this VM.
   */
  page(pfn: number): Uint8Array {
    if (!(pfn >= 0 && pfn < this.pageCount && Number.isInteger(pfn))) {
      throw new SimError(
        `Page "${pfn}" out of range: the VM has ${this.pageCount} pages`,
        "pfn",
      );
    }
    return this.memory.subarray(pfn * PAGE_SIZE, pfn * PAGE_SIZE + PAGE_SIZE);
  }

  /**
   * Stops the workload; resolves once the worker has parked between page
   * writes, so no guest write can happen any more.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "idle",
   * });
   * await vm.pause();
   * const digest = await vm.digest();
   * assert.deepEqual(await vm.digest(), digest); // paused: memory stands still
   * assert.equal(vm.paused, true);
   * ```
   *
   * @throws {SimError} If the worker does not acknowledge within 5 s.
   */
  async pause(): Promise<void> {
    if (this.#paused || this.#closing) return;
    Atomics.store(this.#control, C_STATE, PAUSE);
    Atomics.notify(this.#control, C_STATE);
    await this.#awaitParked(1, "pause");
    this.#paused = true;
  }

  /**
   * Lets the workload write again.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "idle",
   * });
   * await vm.pause();
   * await vm.resume();
   * assert.equal(vm.paused, false);
   * ```
   *
   * @throws {SimError} If the worker does not acknowledge within 5 s.
   */
  async resume(): Promise<void> {
    if (!this.#paused || this.#closing) return;
    if (Atomics.load(this.#control, C_FAILED) === 1) {
      throw new SimError(
        `Workload "${this.workload}" failed: ${this.#error ?? "unknown error"}`,
        "workload",
      );
    }
    Atomics.store(this.#control, C_STATE, RUN);
    Atomics.notify(this.#control, C_STATE);
    await this.#awaitParked(0, "resume");
    this.#paused = false;
  }

  /** Waits until the worker's parked flag reads `want`: a short blocking wait, then 1 ms polls. */
  async #awaitParked(want: 0 | 1, what: string): Promise<void> {
    const ctl = this.#control;
    const deadline = performance.now() + ACK_TIMEOUT_MS;
    // The worker checks between page writes: usually parked within microseconds.
    const spinUntil = performance.now() + 2;
    while (
      Atomics.load(ctl, C_PARKED) !== want && performance.now() < spinUntil
    ) {
      Atomics.wait(ctl, C_PARKED, 1 - want, 0.5);
    }
    while (Atomics.load(ctl, C_PARKED) !== want) {
      if (performance.now() > deadline) {
        throw new SimError(
          `Workload "${this.workload}" did not ${what} within ${ACK_TIMEOUT_MS} ms: ${
            this.#error ?? "no answer"
          }`,
          "workload",
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * The memory digest (`digest.ts`; call while paused for a stable answer).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(64),
   *   workload: "idle",
   * });
   * await vm.pause();
   * assert.equal((await vm.digest()).ranges.length, 32); // 32 bytes per 64 MiB
   * ```
   */
  digest(): Promise<MemoryDigest> {
    return memoryDigest(this.memory);
  }

  /** The guest memory's `SharedArrayBuffer`: the channel Workers read pages from it. */
  get shared(): SharedArrayBuffer {
    return this.memory.buffer as SharedArrayBuffer;
  }

  /**
   * Stops the workload for good and terminates its worker: resolves once the
   * worker has parked between page writes, so memory and `pagesWritten` stand
   * still from then on. Memory stays readable. Safe to call twice (both calls
   * get the same promise).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimVm } from "@hakobu/hakobu";
   *
   * const vm = await SimVm.create({ memoryBytes: MiB(4), workload: "idle" });
   * await vm.close();
   * await vm.close(); // safe to call twice
   * assert.equal(vm.paused, true);
   * ```
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * Parks the worker first, so that no page write is under way, then stops and
   * terminates it: `terminate()` alone returns before the worker's thread
   * stops, and a write (and its counter) could land after close. A worker that
   * failed has parked itself already (it is not waited for); one that does
   * not park within the acknowledgement timeout is terminated all the same:
   * closing does not fail.
   */
  async #close(): Promise<void> {
    const ctl = this.#control;
    try {
      if (!this.#paused && Atomics.load(ctl, C_FAILED) !== 1) {
        Atomics.store(ctl, C_STATE, PAUSE);
        Atomics.notify(ctl, C_STATE);
        await this.#awaitParked(1, "stop");
      }
    } catch {
      // Not parked within ACK_TIMEOUT_MS: terminate it below regardless.
    } finally {
      this.#closed = true;
      Atomics.store(ctl, C_STATE, STOP);
      Atomics.notify(ctl, C_STATE);
      this.#worker.terminate();
    }
  }

  /** Closes the VM at the end of an `await using` block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
