/**
 * hakobu (運ぶ, "to carry"): scriptable live migration of big-memory VMs.
 *
 * Write a policy with the DSL, compile it to a plan, and migrate a VM with
 * the engine:
 *
 * @example
 * ```ts ignore
 * import { codec, GiB, Gbit, MiB, migrate, policy, receiveMigration, SimVm, when } from "./mod.ts";
 *
 * const plan = policy("demo")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.any(when.remainingBelow(MiB(64)), when.rounds(30)))
 *   .bandwidth(Gbit(1))
 *   .compile();
 * const vm = await SimVm.create({ memoryBytes: GiB(1), workload: "memcached" });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: 7700 });
 * const report = await migrate({ plan, source: vm, conn });
 * ```
 *
 * This entry is the DSL and the engine; `migrate()` returns its
 * {@link MigrationReport} as data. The package's other entries:
 *
 * - `@hakobu/hakobu/report` (`report/mod.ts`): the report for people:
 *   round table, summary, progress bar, charts, HTML page. Apart from this
 *   entry so that a program that only migrates loads no chart or table
 *   library;
 * - `@hakobu/hakobu/gpu` (`engine/gpu/mod.ts`): the WebGPU kernels and
 *   their WGSL sources, for benches and other pipelines (the batch encoder
 *   and decoder that a migration uses are exported from this entry too);
 * - `@hakobu/hakobu/dsl` and `@hakobu/hakobu/engine`: each half alone.
 *
 * @module
 */

export * from "./dsl/mod.ts";
export * from "./engine/mod.ts";
