/**
 * The `sim` backend: an in-process simulated VM running one of the
 * workloads (`engine/sim/`), migrated by hakobu's own pre-copy engine
 * (`../precopy.ts`) to a hakobu receiver.
 *
 * @module
 */

import { MigrationError } from "../errors.ts";
import type { Plan } from "../plan.ts";
import { migrate } from "../precopy.ts";
import type { MigrationReport } from "../report.ts";
import { SimVm, workloadByName } from "../sim/mod.ts";
import {
  connectChannel,
  connectSecurityFromFlags,
} from "../transport/secure/mod.ts";
import { hostPort, requireSecurity } from "./_common.ts";
import {
  type Backend,
  BackendError,
  type BackendFactory,
  type BackendMigrateOptions,
  type BackendOpenOptions,
} from "./backend.ts";

const TARGET_FORM = "HOST:PORT, a hakobu receiver (hakobu receive)";

class SimBackend implements Backend {
  readonly scheme = "sim";
  readonly targetForm = TARGET_FORM;
  readonly source: string;
  readonly #workload: string;
  readonly #options: BackendOpenOptions;

  constructor(workload: string, options: BackendOpenOptions) {
    this.source = `sim:${workload}`;
    this.#workload = workload;
    this.#options = options;
  }

  async migrate(
    plan: Plan,
    target: string,
    options: BackendMigrateOptions = {},
  ): Promise<MigrationReport> {
    const to = hostPort(target, "sim", TARGET_FORM);
    const log = options.log ?? (() => {});
    // Credentials are read before the VM is made: a bad --tls-dir fails at once.
    const security = await connectSecurityFromFlags(
      requireSecurity(options, this.source, target),
    );
    const memoryBytes = this.#options.memoryBytes ?? 2 ** 30;
    const seed = this.#options.seed ?? 1;
    log(
      `creating sim VM: ${this.#workload}, ${memoryBytes} bytes, seed ${seed}`,
    );
    await using vm = await SimVm.create({
      memoryBytes,
      workload: this.#workload,
      seed,
      ...(this.#options.dirtyRate === undefined
        ? {}
        : { dirtyRate: this.#options.dirtyRate }),
    });
    log(`${vm.description}: connecting to ${to.hostname}:${to.port}`);
    const conn = await connectChannel(to, security).catch((e) => {
      throw new MigrationError(
        `Cannot connect to receiver "${target}": ${
          e instanceof Error ? e.message : e
        }`,
      );
    });
    if (conn.identity !== null) {
      log(`authenticated receiver "${conn.identity}" over TLS`);
    } else log(`connected to receiver ${conn.remote} over plain TCP`);
    try {
      const report = await migrate({
        plan,
        source: vm,
        conn,
        // A plan that resumes reconnects with the same credentials: the
        // receiver lets only the same source identity take its session on.
        reconnect: () => connectChannel(to, security),
        ...(this.#options.channelConnections
          ? { channelConnections: { to, security } }
          : {}),
        signal: options.signal,
        onProgress: options.onProgress,
        onRound: options.onRound,
      });
      return { ...report, backend: "sim" };
    } finally {
      conn.close();
    }
  }
}

/**
 * Opens `sim:WORKLOAD` sources: a simulated VM (its size, seed and dirty
 * rate from the open options) migrated by hakobu's pre-copy engine to a
 * hakobu receiver at `HOST:PORT`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { simBackend } from "@hakobu/hakobu";
 *
 * const vm = simBackend.open("memcached", { memoryBytes: 64 * 2 ** 20 });
 * assert.equal(vm.source, "sim:memcached");
 * assert.throws(() => simBackend.open("nope"), /Unknown workload "nope"/);
 * ```
 */
export const simBackend: BackendFactory = Object.freeze({
  scheme: "sim",
  sourceForm: "sim:WORKLOAD",
  targetForm: TARGET_FORM,
  description:
    "a simulated VM running a workload (see 'hakobu workloads'), moved by hakobu's own pre-copy engine",
  open(rest: string, options: BackendOpenOptions = {}): Backend {
    if (!/^[a-z0-9_-]+$/.test(rest)) {
      throw new BackendError(
        `Cannot parse source "sim:${rest}": expected sim:WORKLOAD, e.g. sim:memcached (see "hakobu workloads")`,
        { field: "source" },
      );
    }
    workloadByName(rest); // an unknown workload fails here, naming the known ones
    return new SimBackend(rest, options);
  },
});
