/**
 * The workload registry: every workload by name.
 *
 * @module
 */

import { SimError } from "../errors.ts";
import { idle } from "./idle.ts";
import { lmbench } from "./lmbench.ts";
import { memcached } from "./memcached.ts";
import { partial } from "./partial.ts";
import { postgres } from "./postgres.ts";
import { random } from "./random.ts";
import { unique } from "./unique.ts";
import type { Workload } from "./workload.ts";
import { zero } from "./zero.ts";

const WORKLOADS: readonly Workload[] = [
  idle,
  zero,
  unique,
  random,
  partial,
  memcached,
  postgres,
  lmbench,
];

/**
 * Names of all workloads, in listing order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { workloadNames } from "@hakobu/hakobu";
 *
 * assert.deepEqual(workloadNames(), [
 *   "idle",
 *   "zero",
 *   "unique",
 *   "random",
 *   "partial",
 *   "memcached",
 *   "postgres",
 *   "lmbench",
 * ]);
 * ```
 */
export function workloadNames(): string[] {
  return WORKLOADS.map((w) => w.name);
}

/**
 * The workload called `name`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SimError, workloadByName } from "@hakobu/hakobu";
 *
 * // Page writes per second:
 * assert.equal(workloadByName("memcached").dirtyRate, 2000);
 * assert.throws(() => workloadByName("nginx"), SimError);
 * ```
 *
 * @throws {SimError} If there is no such workload.
 */
export function workloadByName(name: string): Workload {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) {
    const known = workloadNames().map((n) => `"${n}"`).join(", ");
    throw new SimError(
      `Unknown workload "${name}": known workloads are ${known}`,
      "workload",
    );
  }
  return w;
}
