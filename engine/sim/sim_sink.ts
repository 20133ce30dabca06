/**
 * Destination memory for the simulated VM: what a receiver writes pages into.
 *
 * @module
 */

import type { MemorySink } from "../driver.ts";
import { type MemoryDigest, memoryDigest } from "../digest.ts";
import { isZeroPage } from "../zero_page.ts";
import { SimError } from "./errors.ts";

/** Lifecycle of a {@link SimMemorySink}. */
export type SinkState = "receiving" | "committed" | "discarded";

/** Options of {@link SimMemorySink}. */
export interface SimMemorySinkOptions {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Number of pages. */
  readonly pageCount: number;
}

/**
 * Destination memory in an `ArrayBuffer`: checks every pfn and page length
 * before writing, hashes the image for the end-of-migration comparison, and
 * records whether the migration was committed or discarded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimMemorySink } from "@hakobu/hakobu";
 *
 * const sink = new SimMemorySink({ pageSize: 4096, pageCount: 16 });
 * sink.writePage(3, new Uint8Array(4096).fill(7));
 * const digest = await sink.digest();
 * assert.equal(digest.ranges.length, 32);
 * await sink.commit();
 * assert.equal(sink.state, "committed");
 * ```
 */
export class SimMemorySink implements MemorySink {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Number of pages. */
  readonly pageCount: number;
  #memory: Uint8Array;
  #state: SinkState = "receiving";
  #pagesWritten = 0;
  /** 1 for each page written with non-zero content at least once. */
  #touched: Uint8Array;
  /** Memory and touched map, shared with the receiver's decode Workers. */
  readonly shared: {
    readonly memory: SharedArrayBuffer;
    readonly touched: SharedArrayBuffer;
  };

  /**
   * Allocates zeroed destination memory of `pageSize * pageCount` bytes.
   *
   * @param options Page size and count.
   * @throws {SimError} If the page size or count is not a positive integer.
   */
  constructor(options: SimMemorySinkOptions) {
    const { pageSize, pageCount } = options;
    if (!Number.isSafeInteger(pageSize) || pageSize <= 0) {
      throw new SimError(
        `Invalid page size "${pageSize}": expected a positive integer`,
        "pageSize",
      );
    }
    if (!Number.isSafeInteger(pageCount) || pageCount <= 0) {
      throw new SimError(
        `Invalid page count "${pageCount}": expected a positive integer`,
        "pageCount",
      );
    }
    this.pageSize = pageSize;
    this.pageCount = pageCount;
    const touched = new SharedArrayBuffer(pageCount);
    this.#touched = new Uint8Array(touched);
    try {
      const memory = new SharedArrayBuffer(pageSize * pageCount);
      this.#memory = new Uint8Array(memory);
      this.shared = { memory, touched };
    } catch (e) {
      throw new SimError(
        `Cannot allocate destination memory of "${
          pageSize * pageCount
        }" bytes: ${String(e)}`,
        "pageCount",
        {
          cause: e,
        },
      );
    }
  }

  /**
   * A sink of the same shape as a source driver.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimMemorySink, SimVm } from "@hakobu/hakobu";
   *
   * await using vm = await SimVm.create({
   *   memoryBytes: MiB(4),
   *   workload: "idle",
   * });
   * const sink = SimMemorySink.create({
   *   pageSize: vm.pageSize,
   *   pageCount: vm.pageCount,
   * });
   * assert.equal(sink.memory.length, MiB(4));
   * ```
   */
  static create(options: SimMemorySinkOptions): SimMemorySink {
    return new SimMemorySink(options);
  }

  /** `"receiving"` until {@link commit} or {@link discard}. */
  get state(): SinkState {
    return this.#state;
  }

  /** The destination memory (empty once discarded). */
  get memory(): Uint8Array {
    return this.#memory;
  }

  /** Pages written so far (a page written twice counts twice). */
  get pagesWritten(): number {
    return this.#pagesWritten;
  }

  /**
   * A read-only view of the page at `pfn` as memory holds it now (what a
   * delta codec decodes against).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimMemorySink } from "@hakobu/hakobu";
   *
   * const sink = new SimMemorySink({ pageSize: 4096, pageCount: 16 });
   * assert.equal(sink.readPage(0).length, 4096);
   * ```
   *
   * @throws {SimError} If `pfn` is out of range or the sink was discarded.
   */
  readPage(pfn: number): Uint8Array {
    if (this.#state === "discarded") {
      throw new SimError(
        `Cannot read page "${pfn}": the sink is discarded`,
        "state",
      );
    }
    if (!(pfn >= 0 && pfn < this.pageCount && Number.isInteger(pfn))) {
      throw new SimError(
        `Page "${pfn}" out of range: the sink has ${this.pageCount} pages`,
        "pfn",
      );
    }
    const at = pfn * this.pageSize;
    return this.#memory.subarray(at, at + this.pageSize);
  }

  /**
   * Copies `page` into memory at `pfn`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimMemorySink } from "@hakobu/hakobu";
   *
   * const sink = new SimMemorySink({ pageSize: 4096, pageCount: 16 });
   * sink.writePage(0, new Uint8Array(4096).fill(1));
   * assert.equal(sink.readPage(0)[0], 1);
   * assert.throws(
   *   () => sink.writePage(16, new Uint8Array(4096)),
   *   /out of range/,
   * );
   * ```
   *
   * @throws {SimError} If `pfn` is out of range, `page` has the wrong length,
   * or the sink is no longer receiving.
   */
  writePage(pfn: number, page: Uint8Array): void {
    if (this.#state !== "receiving") {
      throw new SimError(
        `Cannot write page "${pfn}": the sink is ${this.#state}`,
        "state",
      );
    }
    if (!(pfn >= 0 && pfn < this.pageCount && Number.isInteger(pfn))) {
      throw new SimError(
        `Page "${pfn}" out of range: the sink has ${this.pageCount} pages`,
        "pfn",
      );
    }
    if (page.length !== this.pageSize) {
      throw new SimError(
        `Page "${pfn}" has wrong length "${page.length}": expected ${this.pageSize} bytes`,
        "page",
      );
    }
    // Like QEMU's destination: a zero page over memory never written (still
    // the kernel's zero page) is skipped, so fresh memory is not faulted in.
    if (this.#touched[pfn] === 0) {
      if (isZeroPage(page)) {
        this.#pagesWritten++;
        return;
      }
      this.#touched[pfn] = 1;
    }
    this.#memory.set(page, pfn * this.pageSize);
    this.#pagesWritten++;
  }

  /**
   * The digest of the whole destination memory (`digest.ts`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { MiB, SimMemorySink } from "@hakobu/hakobu";
   *
   * const sink = new SimMemorySink({
   *   pageSize: 4096,
   *   pageCount: MiB(64) / 4096,
   * });
   * assert.equal((await sink.digest()).ranges.length, 32); // 32 bytes per 64 MiB
   * ```
   *
   * @throws {SimError} If the sink was discarded.
   */
  digest(): Promise<MemoryDigest> {
    if (this.#state === "discarded") {
      return Promise.reject(
        new SimError("Cannot digest memory: the sink is discarded", "state"),
      );
    }
    return memoryDigest(this.#memory);
  }

  /**
   * Marks the migration verified; no more writes are accepted.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimMemorySink } from "@hakobu/hakobu";
   *
   * const sink = new SimMemorySink({ pageSize: 4096, pageCount: 16 });
   * await sink.commit();
   * assert.equal(sink.state, "committed");
   * ```
   *
   * @throws {SimError} If the sink was discarded.
   */
  commit(): Promise<void> {
    if (this.#state === "discarded") {
      return Promise.reject(
        new SimError("Cannot commit: the sink is discarded", "state"),
      );
    }
    this.#state = "committed";
    return Promise.resolve();
  }

  /**
   * Drops the destination memory after a failed migration. Safe to call twice.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SimMemorySink } from "@hakobu/hakobu";
   *
   * const sink = new SimMemorySink({ pageSize: 4096, pageCount: 16 });
   * await sink.discard();
   * assert.equal(sink.state, "discarded");
   * ```
   *
   * @throws {SimError} If the sink was already committed.
   */
  discard(): Promise<void> {
    if (this.#state === "committed") {
      return Promise.reject(
        new SimError("Cannot discard: the sink is committed", "state"),
      );
    }
    this.#memory = new Uint8Array(0);
    this.#state = "discarded";
    return Promise.resolve();
  }
}
