/**
 * Backends: where a VM lives, behind one interface. A source string
 * (`sim:WORKLOAD`, `qemu:QMP_SOCKET`, `xen:DOMAIN`) opens a {@link Backend}
 * (`registry.ts`); its `migrate(plan, target, options)` ends in the same
 * `MigrationReport` for every hypervisor, with the same progress and
 * per-round callbacks, and asks the plan through the steering helper
 * (`../steering.ts`).
 *
 * Read in this order: `backend.ts` (the interface), `registry.ts`, then one
 * backend: `sim.ts` (hakobu's own engine), `qemu.ts` (QMP and the stream
 * tunnel), `xen.ts` (libxenguest's save loop).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openBackend, policy, when } from "@hakobu/hakobu";
 *
 * const plan = policy("p").switchover(when.rounds(3)).compile();
 * const vm = openBackend("qemu:/run/vm1.qmp");
 * // Needs a running QEMU and a tunnel receiver: defined, not called here.
 * async function migrateVm1() {
 *   const report = await vm.migrate(plan, "10.0.0.2:4445", {
 *     security: { tlsDir: "/etc/pki/hakobu" },
 *     onRound: (r) => console.log(r.round, r.decision, r.reason),
 *   });
 *   return report.verified;
 * }
 * assert.equal(typeof migrateVm1, "function");
 * assert.equal(vm.scheme, "qemu");
 * ```
 *
 * @module
 */

export * from "./backend.ts";
export * from "./registry.ts";
export * from "./sim.ts";
export * from "./qemu.ts";
export * from "./xen.ts";
export * from "./libvirt.ts";
