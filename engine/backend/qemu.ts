/**
 * The `qemu` backend: a running QEMU reached through its QMP socket. QEMU
 * runs the rounds and writes its own migration stream into `exec:` hakobu's
 * stream tunnel (the plan's round-0 codec chain on its channels, paced),
 * which a `hakobu tunnel qemu receive` at the target rebuilds for the
 * destination QEMU; the plan steers QEMU's rounds through QMP
 * (`../qemu/policy_driver.ts`).
 *
 * @module
 */

import type { Plan } from "../plan.ts";
import {
  migrateQemu,
  type QemuMigrationReport,
} from "../qemu/policy_driver.ts";
import { QmpClient } from "../qemu/qmp.ts";
import type { StreamStats } from "../stream/send.ts";
import {
  hostPort,
  requireSecurity,
  streamTunnel,
  tunnelNote,
} from "./_common.ts";
import {
  type Backend,
  BackendError,
  type BackendFactory,
  type BackendMigrateOptions,
} from "./backend.ts";

const TARGET_FORM =
  "HOST:PORT, a hakobu tunnel receiver feeding the destination QEMU (hakobu tunnel qemu receive)";

/** What the `qemu` backend reports: QEMU's report, and what its tunnel counted. */
export interface QemuBackendReport extends QemuMigrationReport {
  /** The tunnel sender's statistics (null when it did not finish). */
  readonly tunnel: StreamStats | null;
}

class QemuBackend implements Backend {
  readonly scheme = "qemu";
  readonly targetForm = TARGET_FORM;
  readonly source: string;
  readonly #socket: string;

  constructor(socket: string) {
    this.source = `qemu:${socket}`;
    this.#socket = socket;
  }

  async migrate(
    plan: Plan,
    target: string,
    options: BackendMigrateOptions = {},
  ): Promise<QemuBackendReport> {
    const to = hostPort(target, "qemu", TARGET_FORM);
    const security = requireSecurity(options, this.source, target);
    const qmp = await QmpClient.connect(this.#socket, { timeoutMs: 5000 });
    try {
      const tunnel = await streamTunnel("qemu", plan, to, security);
      options.log?.(
        `${this.source}: migrating through the hakobu tunnel to ${target}`,
      );
      // QEMU waits for its exec: child after it reports completion; the
      // verdict is the tunnel sender's own comparison of both digests.
      const report = await migrateQemu({
        plan,
        source: qmp,
        uri: tunnel.uri,
        vm: this.source,
        verify: () => tunnel.verdict(),
        signal: options.signal,
        onRound: options.onRound,
        onProgress: options.onProgress,
      });
      await Deno.remove(tunnel.statsFile).catch(() => {});
      const stats = tunnel.stats;
      return {
        ...report,
        backend: "qemu",
        notes: { ...report.notes, tunnel: tunnelNote(stats, "QEMU") },
        tunnel: stats,
      };
    } finally {
      qmp.close();
    }
  }
}

/**
 * Opens `qemu:QMP_SOCKET` sources: a running QEMU, migrated through
 * hakobu's stream tunnel to a tunnel receiver at `HOST:PORT`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qemuBackend } from "@hakobu/hakobu";
 *
 * const vm = qemuBackend.open("/run/vm1.qmp"); // parses only: nothing connects yet
 * assert.equal(vm.source, "qemu:/run/vm1.qmp");
 * assert.throws(() => qemuBackend.open(""), /expected qemu:QMP_SOCKET/);
 * ```
 */
export const qemuBackend: BackendFactory = Object.freeze({
  scheme: "qemu",
  sourceForm: "qemu:QMP_SOCKET",
  targetForm: TARGET_FORM,
  description:
    "a running QEMU reached through its QMP socket; QEMU's own stream goes through hakobu's tunnel, the plan steers it over QMP",
  open(rest: string): Backend {
    if (rest.trim() === "") {
      throw new BackendError(
        `Cannot parse source "qemu:${rest}": expected qemu:QMP_SOCKET, the path of the source QEMU's QMP socket`,
        { field: "source" },
      );
    }
    return new QemuBackend(rest);
  },
});
