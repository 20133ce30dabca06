/**
 * The hypervisor driver interface, source side, and the memory sink on the
 * receiver side. A driver knows memory and dirty pages; it never sees codecs
 * or sockets.
 *
 * @module
 */

import type { MemoryDigest } from "./digest.ts";

/** A VM whose memory the engine can copy while it runs (native mode: the engine drives rounds). */
export interface SourceDriver {
  /** Short description for reports, e.g. `"sim:memcached 1 GiB seed 1"`. */
  readonly description: string;
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Number of pages of guest memory. */
  readonly pageCount: number;
  /** Starts dirty logging; every page written from now on is reported by {@link syncDirty}. */
  startDirtyLog(): Promise<void>;
  /**
   * Fetches and clears the dirty log: writes the pfns of pages dirtied since
   * the previous sync, in ascending order, into `out` and returns how many.
   *
   * @param out Room for `pageCount` pfns.
   */
  syncDirty(out: Uint32Array): number;
  /**
   * A read-only view of one page. The view may alias live guest memory, so
   * its bytes can change while the guest runs; a page changed after the sync
   * that reported it is reported again at the next sync.
   */
  page(pfn: number): Uint8Array;
  /**
   * The whole guest memory as a `SharedArrayBuffer` (page `pfn` at
   * `pfn * pageSize`), when the driver has it mapped so: the channel Workers
   * then read pages and hash ranges themselves, in parallel. Drivers
   * without it are read through {@link page} on the main thread.
   */
  readonly shared?: SharedArrayBuffer;
  /** Stops the guest's vCPUs; resolves once no guest write can happen any more. */
  pause(): Promise<void>;
  /** Lets the guest run again (after an aborted migration). */
  resume(): Promise<void>;
  /** The memory digest (`digest.ts`: SHA-256 per range); call while paused. */
  digest(): Promise<MemoryDigest>;
  /** Stops the guest for good and frees its resources. */
  close(): Promise<void>;
}

/** Where a receiver writes pages: destination memory. */
export interface MemorySink {
  /** Page size in bytes. */
  readonly pageSize: number;
  /** Number of pages; a pfn at or above it is refused before anything is written. */
  readonly pageCount: number;
  /**
   * Destination memory as a `SharedArrayBuffer` and a shared byte per page
   * (1 once written with non-zero bytes; a page whose byte is 0 must be all
   * zero), when the sink holds memory so: the decode Workers then write
   * pages and hash ranges themselves, and skip reading untouched ranges. Sinks
   * without it get every page through {@link writePage}.
   */
  readonly shared?: {
    readonly memory: SharedArrayBuffer;
    readonly touched: SharedArrayBuffer;
  };
  /** Copies one decoded page into memory at `pfn`. */
  writePage(pfn: number, page: Uint8Array): void;
  /** A read-only view of the page at `pfn` as memory holds it now. */
  readPage(pfn: number): Uint8Array;
  /** The memory digest (`digest.ts`: SHA-256 per range). */
  digest(): Promise<MemoryDigest>;
  /** Called once the migration is verified; the destination VM may start. */
  commit(): Promise<void>;
  /** Called when the migration failed; the destination memory is discarded. */
  discard(): Promise<void>;
}
