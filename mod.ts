/**
 * hakobu (運ぶ, "to carry"): scriptable live migration of big-memory VMs.
 *
 * Write a policy with the DSL, compile it to a plan, and migrate a VM with
 * the engine:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import {
 *   codec,
 *   Gbit,
 *   MiB,
 *   migrate,
 *   policy,
 *   receiveMigration,
 *   SimMemorySink,
 *   SimVm,
 *   when,
 * } from "@hakobu/hakobu";
 *
 * const plan = policy("demo")
 *   .codec([codec.zero(), codec.raw()])
 *   .switchover(when.any(when.remainingBelow(MiB(64)), when.rounds(30)))
 *   .bandwidth(Gbit(1))
 *   .channels(2)
 *   .compile();
 *
 * // The destination: a receiver on a free loopback port, memory in a sink.
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const received = listener.accept().then((conn) =>
 *   receiveMigration(conn, {
 *     createSink: (h) =>
 *       new SimMemorySink({
 *         pageSize: h.pageSize,
 *         pageCount: h.memoryBytes / h.pageSize,
 *       }),
 *   })
 * );
 *
 * // The source: a simulated VM running memcached, migrated live.
 * await using vm = await SimVm.create({
 *   memoryBytes: MiB(16),
 *   workload: "memcached",
 * });
 * using conn = await Deno.connect({ port: listener.addr.port });
 * const report = await migrate({ plan, source: vm, conn });
 * assert.equal(report.verified, true); // both sides' memory digests matched
 * assert.equal((await received).verified, true);
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
