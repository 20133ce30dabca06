/**
 * {@link JobStats}: `virDomainGetJobStats`'s typed parameters as the fields
 * a migration steerer reads (progress, remaining bytes, dirty rate,
 * iteration, expected downtime), plus the raw record. Every field but
 * `type` is optional: libvirt only sends what the driver and the job's phase
 * know (the QEMU driver sends the memory fields once the migration's setup
 * is over; the test driver does not implement job stats at all).
 *
 * @module
 */

import { JobType, type JobTypeName } from "./constants.ts";
import {
  type TypedParam,
  typedParamsRecord,
  type TypedValue,
} from "./typed_params.ts";

/** xbzrle/compression counters of a job, when the job uses compression. */
export interface JobCompressionStats {
  /** `compression_cache`: xbzrle cache size (bytes). */
  readonly cacheBytes?: number;
  /** `compression_bytes`: compressed bytes sent. */
  readonly bytes?: number;
  /** `compression_pages`: compressed pages sent. */
  readonly pages?: number;
  /** `compression_cache_misses`: pages not in the xbzrle cache. */
  readonly cacheMisses?: number;
  /** `compression_overflow`: pages whose compression did not pay. */
  readonly overflow?: number;
}

/** A domain's job, as `virDomainGetJobStats` reports it. Times in ms, sizes in bytes. */
export interface JobStats {
  /** `virDomainJobType` ({@link JobType}). */
  readonly type: number;
  /** The type's name: `"none"`, `"unbounded"` (a live migration running), `"completed"`, ... */
  readonly typeName: JobTypeName | "unknown";
  /** Whether a job is running (bounded or unbounded). */
  readonly active: boolean;
  /** `operation`: what started the job (`virDomainJobOperation`; 5 = outgoing migration). */
  readonly operation?: number;
  /** `time_elapsed`: ms since the job began. */
  readonly timeElapsedMs?: number;
  /** `time_remaining`: ms left, for bounded jobs. */
  readonly timeRemainingMs?: number;
  /** `setup_time`: ms spent in the setup phase before the first iteration. */
  readonly setupTimeMs?: number;
  /** `downtime`: while the job runs, the downtime QEMU expects; once completed, the real one (ms). */
  readonly downtimeMs?: number;
  /** `downtime` while the job is active: the expected downtime (ms). */
  readonly expectedDowntimeMs?: number;
  /** `downtime_net`: measured downtime without the control hand-over (ms), completed jobs. */
  readonly downtimeNetMs?: number;
  /** `data_total`. */
  readonly dataTotal?: number;
  /** `data_processed`. */
  readonly dataProcessed?: number;
  /** `data_remaining`. */
  readonly dataRemaining?: number;
  /** `memory_total`: guest memory. */
  readonly memoryTotal?: number;
  /** `memory_processed`: memory bytes sent so far (all iterations). */
  readonly memoryProcessed?: number;
  /** `memory_remaining`: memory bytes still to send in this iteration. */
  readonly memoryRemaining?: number;
  /** `memory_constant`: pages sent as one repeated byte (mostly zero pages). */
  readonly memoryConstantPages?: number;
  /** `memory_normal`: pages sent as they are. */
  readonly memoryNormalPages?: number;
  /** `memory_normal_bytes`. */
  readonly memoryNormalBytes?: number;
  /** `memory_bps`: memory throughput (bytes/s). */
  readonly memoryBps?: number;
  /** `memory_dirty_rate`: pages dirtied per second. */
  readonly memoryDirtyRatePages?: number;
  /** `memory_dirty_rate * memory_page_size`: bytes dirtied per second, when both are known. */
  readonly memoryDirtyRateBytes?: number;
  /**
   * `memory_iteration`: the pass over memory. The header says 0 for the
   * first, full copy; with QEMU 7.2 under libvirt 9.0 the setup phase read
   * 0 and the first copy 1 (QEMU's dirty-sync count).
   */
  readonly memoryIteration?: number;
  /** `memory_page_size` (bytes). */
  readonly memoryPageSize?: number;
  /** `memory_postcopy_requests`: page faults served during post-copy. */
  readonly postcopyRequests?: number;
  /** `auto_converge_throttle`: percent the vCPUs are throttled by auto-converge. */
  readonly autoConvergeThrottle?: number;
  /** Compression counters, when any `compression_*` field is present. */
  readonly compression?: JobCompressionStats;
  /** `success`: completed jobs only. */
  readonly success?: boolean;
  /** `errmsg`: a failed completed job's message. */
  readonly errmsg?: string;
  /** Every field as libvirt sent it. */
  readonly raw: Readonly<Record<string, TypedValue>>;
}

const TYPE_NAMES = Object.fromEntries(
  Object.entries(JobType).map(([k, v]) => [v, k]),
) as Record<number, JobTypeName>;

/**
 * Builds {@link JobStats} from the job type and its typed parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeJobStats, JobType } from "./mod.ts";
 *
 * const s = decodeJobStats(JobType.unbounded, [
 *   { field: "memory_remaining", type: "ullong", value: 1_048_576n },
 *   { field: "memory_dirty_rate", type: "ullong", value: 2_000n },
 *   { field: "memory_page_size", type: "ullong", value: 4_096n },
 *   { field: "memory_iteration", type: "ullong", value: 3n },
 *   { field: "downtime", type: "ullong", value: 42n },
 * ]);
 * assert.equal(s.typeName, "unbounded");
 * assert.equal(s.memoryDirtyRateBytes, 2_000 * 4_096);
 * assert.equal(s.expectedDowntimeMs, 42); // active job: downtime is the expected one
 * assert.equal(s.compression, undefined);
 * ```
 */
export function decodeJobStats(
  type: number,
  params: readonly TypedParam[],
): JobStats {
  const raw = typedParamsRecord(params);
  const num = (k: string): number | undefined =>
    typeof raw[k] === "number" ? raw[k] as number : undefined;
  const active = type === JobType.bounded || type === JobType.unbounded;
  const dirty = num("memory_dirty_rate");
  const page = num("memory_page_size");
  const compression: JobCompressionStats = {
    cacheBytes: num("compression_cache"),
    bytes: num("compression_bytes"),
    pages: num("compression_pages"),
    cacheMisses: num("compression_cache_misses"),
    overflow: num("compression_overflow"),
  };
  const hasCompression = Object.values(compression).some((v) =>
    v !== undefined
  );
  const out: { -readonly [K in keyof JobStats]: JobStats[K] } = {
    type,
    typeName: TYPE_NAMES[type] ?? "unknown",
    active,
    operation: num("operation"),
    timeElapsedMs: num("time_elapsed"),
    timeRemainingMs: num("time_remaining"),
    setupTimeMs: num("setup_time"),
    downtimeMs: num("downtime"),
    expectedDowntimeMs: active ? num("downtime") : undefined,
    downtimeNetMs: num("downtime_net"),
    dataTotal: num("data_total"),
    dataProcessed: num("data_processed"),
    dataRemaining: num("data_remaining"),
    memoryTotal: num("memory_total"),
    memoryProcessed: num("memory_processed"),
    memoryRemaining: num("memory_remaining"),
    memoryConstantPages: num("memory_constant"),
    memoryNormalPages: num("memory_normal"),
    memoryNormalBytes: num("memory_normal_bytes"),
    memoryBps: num("memory_bps"),
    memoryDirtyRatePages: dirty,
    memoryDirtyRateBytes: dirty !== undefined && page !== undefined
      ? dirty * page
      : undefined,
    memoryIteration: num("memory_iteration"),
    memoryPageSize: page,
    postcopyRequests: num("memory_postcopy_requests"),
    autoConvergeThrottle: num("auto_converge_throttle"),
    compression: hasCompression ? compression : undefined,
    success: typeof raw.success === "boolean" ? raw.success : undefined,
    errmsg: typeof raw.errmsg === "string" ? raw.errmsg : undefined,
    raw,
  };
  for (const k of Object.keys(out) as (keyof JobStats)[]) {
    if (out[k] === undefined) delete out[k];
  }
  for (const k of Object.keys(compression) as (keyof JobCompressionStats)[]) {
    if (compression[k] === undefined) {
      delete (compression as Record<string, unknown>)[k];
    }
  }
  return out;
}
