/**
 * The libvirt enum values the binding uses, with their C names in the doc of
 * each member. `libvirt_test.ts` checks each value against the installed
 * headers.
 *
 * @module
 */

/** `virDomainState` (libvirt-domain.h). */
export const DomainState = {
  /** `VIR_DOMAIN_NOSTATE`. */
  nostate: 0,
  /** `VIR_DOMAIN_RUNNING`. */
  running: 1,
  /** `VIR_DOMAIN_BLOCKED`. */
  blocked: 2,
  /** `VIR_DOMAIN_PAUSED`. */
  paused: 3,
  /** `VIR_DOMAIN_SHUTDOWN` (being shut down). */
  shutdown: 4,
  /** `VIR_DOMAIN_SHUTOFF`. */
  shutoff: 5,
  /** `VIR_DOMAIN_CRASHED`. */
  crashed: 6,
  /** `VIR_DOMAIN_PMSUSPENDED`. */
  pmsuspended: 7,
} as const;

/** A {@link DomainState} name. */
export type DomainStateName = keyof typeof DomainState;

/**
 * The name of a `virDomainState` value, e.g. `"running"` for 1; `"unknown"`
 * for a value this binding does not know.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DomainState, domainStateName } from "./constants.ts";
 *
 * assert.equal(domainStateName(DomainState.shutoff), "shutoff");
 * assert.equal(domainStateName(99), "unknown");
 * ```
 */
export function domainStateName(state: number): DomainStateName | "unknown" {
  for (const [name, value] of Object.entries(DomainState)) {
    if (value === state) return name as DomainStateName;
  }
  return "unknown";
}

/** `virConnectListAllDomainsFlags` (libvirt-domain.h): filters, grouped; 0 lists every domain. */
export const ListDomainsFlags = {
  /** `VIR_CONNECT_LIST_DOMAINS_ACTIVE`. */
  active: 1 << 0,
  /** `VIR_CONNECT_LIST_DOMAINS_INACTIVE`. */
  inactive: 1 << 1,
  /** `VIR_CONNECT_LIST_DOMAINS_PERSISTENT`. */
  persistent: 1 << 2,
  /** `VIR_CONNECT_LIST_DOMAINS_TRANSIENT`. */
  transient: 1 << 3,
  /** `VIR_CONNECT_LIST_DOMAINS_RUNNING`. */
  running: 1 << 4,
  /** `VIR_CONNECT_LIST_DOMAINS_PAUSED`. */
  paused: 1 << 5,
  /** `VIR_CONNECT_LIST_DOMAINS_SHUTOFF`. */
  shutoff: 1 << 6,
} as const;

/** `virDomainStatsTypes` (libvirt-domain.h): which groups of domain stats to return. */
export const DomainStatsTypes = {
  /** `VIR_DOMAIN_STATS_STATE`: `state.state`, `state.reason`. */
  state: 1 << 0,
  /** `VIR_DOMAIN_STATS_CPU_TOTAL`: `cpu.time`, `cpu.user`, `cpu.system`. */
  cpuTotal: 1 << 1,
  /** `VIR_DOMAIN_STATS_BALLOON`: `balloon.current`, `balloon.maximum`, ... (KiB). */
  balloon: 1 << 2,
  /** `VIR_DOMAIN_STATS_VCPU`: `vcpu.current`, `vcpu.maximum`, `vcpu.<n>.*`. */
  vcpu: 1 << 3,
  /** `VIR_DOMAIN_STATS_INTERFACE`: `net.*`. */
  interface: 1 << 4,
  /** `VIR_DOMAIN_STATS_BLOCK`: `block.*`. */
  block: 1 << 5,
  /** `VIR_DOMAIN_STATS_PERF`: `perf.*`. */
  perf: 1 << 6,
  /** `VIR_DOMAIN_STATS_IOTHREAD`: `iothread.*`. */
  iothread: 1 << 7,
  /** `VIR_DOMAIN_STATS_MEMORY`: `memory.bandwidth.*`. */
  memory: 1 << 8,
  /**
   * `VIR_DOMAIN_STATS_DIRTYRATE`: `dirtyrate.calc_status`,
   * `dirtyrate.megabytes_per_second`, ... (the last `virsh domdirtyrate-calc`
   * measurement).
   */
  dirtyrate: 1 << 9,
  /** `VIR_DOMAIN_STATS_VM`: `vm.*` (hypervisor-specific counters). */
  vm: 1 << 10,
} as const;

/**
 * `virDomainDirtyRateStatus`: `dirtyrate.calc_status` in a domain's stats
 * (libvirt-domain.h).
 */
export const DirtyRateStatus = {
  /** `VIR_DOMAIN_DIRTYRATE_UNSTARTED`: never measured. */
  unstarted: 0,
  /** `VIR_DOMAIN_DIRTYRATE_MEASURING`: a measurement is under way. */
  measuring: 1,
  /** `VIR_DOMAIN_DIRTYRATE_MEASURED`: `dirtyrate.megabytes_per_second` holds the result. */
  measured: 2,
} as const;

/** `virDomainDirtyRateCalcFlags`: how {@link DirtyRateStatus} is measured (libvirt-domain.h). */
export const DirtyRateCalcFlags = {
  /** `VIR_DOMAIN_DIRTYRATE_MODE_PAGE_SAMPLING`: hash sampled pages (the default; works under TCG). */
  pageSampling: 0,
  /** `VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_BITMAP`: KVM's dirty bitmap. */
  dirtyBitmap: 1 << 0,
  /** `VIR_DOMAIN_DIRTYRATE_MODE_DIRTY_RING`: KVM's dirty ring. */
  dirtyRing: 1 << 1,
} as const;

/** `virDomainMemoryFlags`: how {@link LibvirtDomain.memoryPeek}'s addresses are read (libvirt-domain.h). */
export const MemoryFlags = {
  /** `VIR_MEMORY_VIRTUAL`: guest virtual addresses (of the vCPU's current mappings). */
  VIRTUAL: 1 << 0,
  /** `VIR_MEMORY_PHYSICAL`: guest physical addresses. */
  PHYSICAL: 1 << 1,
} as const;

/** `virDomainGetJobStatsFlags` (libvirt-domain.h). */
export const JobStatsFlags = {
  /** `VIR_DOMAIN_JOB_STATS_COMPLETED`: the stats of the last completed job. */
  completed: 1 << 0,
  /** `VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED`: do not clear them on reading. */
  keepCompleted: 1 << 1,
} as const;

/** `virDomainJobType` (libvirt-domain.h). */
export const JobType = {
  /** `VIR_DOMAIN_JOB_NONE`: no job is active. */
  none: 0,
  /** `VIR_DOMAIN_JOB_BOUNDED`: a job with a finite completion time. */
  bounded: 1,
  /** `VIR_DOMAIN_JOB_UNBOUNDED`: a job without one (a live migration). */
  unbounded: 2,
  /** `VIR_DOMAIN_JOB_COMPLETED`. */
  completed: 3,
  /** `VIR_DOMAIN_JOB_FAILED`. */
  failed: 4,
  /** `VIR_DOMAIN_JOB_CANCELLED`. */
  cancelled: 5,
} as const;

/** A {@link JobType} name. */
export type JobTypeName = keyof typeof JobType;

/** `virDomainMigrateFlags` (libvirt-domain.h); OR them together. */
export const MigrateFlags = {
  /** `VIR_MIGRATE_LIVE`: do not pause the domain while copying. */
  LIVE: 1 << 0,
  /**
   * `VIR_MIGRATE_PEER2PEER`: the source daemon talks to the destination
   * itself; required by `virDomainMigrateToURI3` with a destination
   * connection URI (QEMU offers no other mode for it).
   */
  PEER2PEER: 1 << 1,
  /** `VIR_MIGRATE_TUNNELLED`: the stream goes through the libvirt RPC connection. */
  TUNNELLED: 1 << 2,
  /** `VIR_MIGRATE_PERSIST_DEST`: define the domain on the destination. */
  PERSIST_DEST: 1 << 3,
  /** `VIR_MIGRATE_UNDEFINE_SOURCE`: undefine it on the source after success. */
  UNDEFINE_SOURCE: 1 << 4,
  /** `VIR_MIGRATE_PAUSED`: leave it paused on the destination. */
  PAUSED: 1 << 5,
  /** `VIR_MIGRATE_NON_SHARED_DISK`: copy whole disks. */
  NON_SHARED_DISK: 1 << 6,
  /** `VIR_MIGRATE_NON_SHARED_INC`: copy disks incrementally. */
  NON_SHARED_INC: 1 << 7,
  /** `VIR_MIGRATE_CHANGE_PROTECTION`: no configuration change during the migration. */
  CHANGE_PROTECTION: 1 << 8,
  /** `VIR_MIGRATE_UNSAFE`: skip libvirt's safety checks. */
  UNSAFE: 1 << 9,
  /** `VIR_MIGRATE_OFFLINE`: migrate the definition only. */
  OFFLINE: 1 << 10,
  /** `VIR_MIGRATE_COMPRESSED`: compress with the `compression` params' methods (xbzrle by default). */
  COMPRESSED: 1 << 11,
  /** `VIR_MIGRATE_ABORT_ON_ERROR`: abort on an I/O error. */
  ABORT_ON_ERROR: 1 << 12,
  /** `VIR_MIGRATE_AUTO_CONVERGE`: throttle the guest's vCPUs when it does not converge. */
  AUTO_CONVERGE: 1 << 13,
  /** `VIR_MIGRATE_RDMA_PIN_ALL`. */
  RDMA_PIN_ALL: 1 << 14,
  /** `VIR_MIGRATE_POSTCOPY`: allow switching to post-copy. */
  POSTCOPY: 1 << 15,
  /** `VIR_MIGRATE_TLS`: QEMU's native TLS for the stream. */
  TLS: 1 << 16,
  /** `VIR_MIGRATE_PARALLEL`: several connections (`parallel.connections`). */
  PARALLEL: 1 << 17,
  /** `VIR_MIGRATE_NON_SHARED_SYNCHRONOUS_WRITES`. */
  NON_SHARED_SYNCHRONOUS_WRITES: 1 << 18,
  /** `VIR_MIGRATE_POSTCOPY_RESUME`. */
  POSTCOPY_RESUME: 1 << 19,
  /** `VIR_MIGRATE_ZEROCOPY`. */
  ZEROCOPY: 1 << 20,
} as const;

/** `virDomainMigrateMaxSpeedFlags` (libvirt-domain.h). */
export const MigrateMaxSpeedFlags = {
  /** `VIR_DOMAIN_MIGRATE_MAX_SPEED_POSTCOPY`: the post-copy phase's speed. */
  POSTCOPY: 1 << 0,
} as const;

/** `virTypedParameterType` (libvirt-common.h). */
export const TypedParamType = {
  /** `VIR_TYPED_PARAM_INT`. */
  int: 1,
  /** `VIR_TYPED_PARAM_UINT`. */
  uint: 2,
  /** `VIR_TYPED_PARAM_LLONG`. */
  llong: 3,
  /** `VIR_TYPED_PARAM_ULLONG`. */
  ullong: 4,
  /** `VIR_TYPED_PARAM_DOUBLE`. */
  double: 5,
  /** `VIR_TYPED_PARAM_BOOLEAN`. */
  boolean: 6,
  /** `VIR_TYPED_PARAM_STRING`. */
  string: 7,
} as const;

/** A {@link TypedParamType} name. */
export type TypedParamTypeName = keyof typeof TypedParamType;

/** The `virErrorNumber` codes (virterror.h) callers are likely to test for. */
export const ErrorCode = {
  /** `VIR_ERR_INTERNAL_ERROR`. */
  INTERNAL_ERROR: 1,
  /** `VIR_ERR_NO_SUPPORT`: the driver does not implement the call. */
  NO_SUPPORT: 3,
  /** `VIR_ERR_NO_CONNECT`: cannot connect to the hypervisor. */
  NO_CONNECT: 5,
  /** `VIR_ERR_INVALID_ARG`. */
  INVALID_ARG: 8,
  /** `VIR_ERR_OPERATION_FAILED`. */
  OPERATION_FAILED: 9,
  /** `VIR_ERR_SYSTEM_ERROR`: an OS call failed (e.g. a socket). */
  SYSTEM_ERROR: 38,
  /** `VIR_ERR_RPC`. */
  RPC: 39,
  /** `VIR_ERR_NO_DOMAIN`: no such domain. */
  NO_DOMAIN: 42,
  /** `VIR_ERR_OPERATION_INVALID`: not applicable in the domain's state. */
  OPERATION_INVALID: 55,
  /** `VIR_ERR_OPERATION_TIMEOUT`. */
  OPERATION_TIMEOUT: 68,
  /** `VIR_ERR_MIGRATE_PERSIST_FAILED`. */
  MIGRATE_PERSIST_FAILED: 69,
  /** `VIR_ERR_ARGUMENT_UNSUPPORTED`. */
  ARGUMENT_UNSUPPORTED: 74,
  /** `VIR_ERR_OPERATION_ABORTED`: e.g. a migration stopped by abort-job. */
  OPERATION_ABORTED: 78,
  /** `VIR_ERR_OPERATION_UNSUPPORTED`. */
  OPERATION_UNSUPPORTED: 84,
} as const;
