/**
 * The simulated VM's workloads: one file each, and a registry by name
 * (`workloadByName`, `workloadNames`); each has a `summary` and a longer
 * `models` text saying what real behaviour it models.
 *
 * | name | models |
 * |---|---|
 * | `idle` | a booted guest doing nothing |
 * | `zero` | seed best case: pages filled with zeros |
 * | `unique` | seed worst case: every page different |
 * | `random` | random small writes over a large allocation |
 * | `partial` | small writes inside a hot window of an allocation |
 * | `memcached` | in-memory key-value cache, mostly zero memory, LRU churn |
 * | `postgres` | PostgreSQL under pgbench: heap blocks, WAL, double buffering |
 * | `lmbench` | bw_mem streaming writes |
 *
 * @module
 */

export { PAGE_SIZE, PAGE_WORDS } from "./workload.ts";
export type {
  MarkDirty,
  Region,
  Workload,
  WorkloadWriter,
} from "./workload.ts";
export { workloadByName, workloadNames } from "./registry.ts";
export { idle } from "./idle.ts";
export { zero } from "./zero.ts";
export { unique } from "./unique.ts";
export { random } from "./random.ts";
export { partial } from "./partial.ts";
export { memcached } from "./memcached.ts";
export {
  PG_BLOCK,
  PG_PAGESIZE_VERSION,
  PG_WAL_MAGIC,
  postgres,
} from "./postgres.ts";
export { lmbench, LMBENCH_OPS } from "./lmbench.ts";
