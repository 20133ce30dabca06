/**
 * {@link DomainStats}: one domain's `virConnectGetAllDomainStats` /
 * `virDomainListGetStats` record (typed parameters such as `state.state`,
 * `balloon.current`, `vcpu.current`, `dirtyrate.megabytes_per_second`) as
 * a plain record, with the fields an inventory reads pulled out in bytes.
 *
 * @module
 */

import { DomainStatsTypes } from "./constants.ts";
import {
  type TypedParam,
  typedParamsRecord,
  type TypedValue,
} from "./typed_params.ts";

/** The stats groups asked for by default: state, CPU time, balloon, vCPUs and dirty rate. */
export const DEFAULT_DOMAIN_STATS: number = DomainStatsTypes.state |
  DomainStatsTypes.cpuTotal | DomainStatsTypes.balloon |
  DomainStatsTypes.vcpu | DomainStatsTypes.dirtyrate;

/** One domain's stats. Sizes in bytes; fields absent when the driver did not send them. */
export interface DomainStats {
  /** The domain's name. */
  readonly name: string;
  /** The domain's UUID. */
  readonly uuid: string;
  /** `state.state` (`DomainState`). */
  readonly state?: number;
  /** `state.reason`. */
  readonly stateReason?: number;
  /** `cpu.time` (ns). */
  readonly cpuTimeNs?: number;
  /** `balloon.current` × 1024: memory the guest has now. */
  readonly balloonCurrentBytes?: number;
  /** `balloon.maximum` × 1024. */
  readonly balloonMaximumBytes?: number;
  /** `vcpu.current`. */
  readonly vcpuCurrent?: number;
  /** `vcpu.maximum`. */
  readonly vcpuMaximum?: number;
  /** `dirtyrate.calc_status` (0 unstarted, 1 measuring, 2 measured). */
  readonly dirtyRateStatus?: number;
  /** `dirtyrate.megabytes_per_second` × 2^20: the last measured dirty rate (bytes/s). */
  readonly dirtyRateBytesPerSecond?: number;
  /** Every parameter, 64-bit values exact. */
  readonly params: readonly TypedParam[];
  /** Every parameter as field → value. */
  readonly record: Readonly<Record<string, TypedValue>>;
}

/**
 * Builds {@link DomainStats} from a domain's name, UUID and parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { domainStats } from "./domain_stats.ts";
 *
 * const s = domainStats("web1", "6695eb01-f6a4-8304-79aa-97f2502e193f", [
 *   { field: "state.state", type: "int", value: 1 },
 *   { field: "balloon.current", type: "ullong", value: 524288n },
 *   { field: "dirtyrate.megabytes_per_second", type: "llong", value: 12n },
 * ]);
 * assert.equal(s.state, 1);
 * assert.equal(s.balloonCurrentBytes, 512 * 2 ** 20);
 * assert.equal(s.dirtyRateBytesPerSecond, 12 * 2 ** 20);
 * assert.equal(s.vcpuCurrent, undefined);
 * ```
 */
export function domainStats(
  name: string,
  uuid: string,
  params: readonly TypedParam[],
): DomainStats {
  const record = typedParamsRecord(params);
  const num = (k: string, scale = 1): number | undefined =>
    typeof record[k] === "number" ? (record[k] as number) * scale : undefined;
  const out: Record<string, unknown> = {
    name,
    uuid,
    state: num("state.state"),
    stateReason: num("state.reason"),
    cpuTimeNs: num("cpu.time"),
    balloonCurrentBytes: num("balloon.current", 1024),
    balloonMaximumBytes: num("balloon.maximum", 1024),
    vcpuCurrent: num("vcpu.current"),
    vcpuMaximum: num("vcpu.maximum"),
    dirtyRateStatus: num("dirtyrate.calc_status"),
    dirtyRateBytesPerSecond: num("dirtyrate.megabytes_per_second", 2 ** 20),
    params,
    record,
  };
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out as unknown as DomainStats;
}
