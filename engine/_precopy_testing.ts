/**
 * Helpers shared by the pre-copy engine tests (not part of the public API):
 * one migration of a simulated VM over real loopback TCP, and the checks
 * that the tests make of its outcome.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate } from "./precopy.ts";
import { receiveMigration, type ReceiveResult } from "./receiver.ts";
import type { MigrationReport } from "./report.ts";
import { SimMemorySink, SimVm, type SimVmOptions } from "./sim/mod.ts";

/** Options of {@link migrateSimVm}. */
export interface LoopbackOptions {
  /** Aborts the migration (passed to `migrate`). */
  readonly signal?: AbortSignal;
  /** `null` runs the source as if the runtime had no WebGPU adapter. */
  readonly gpu?: null;
  /** The receiver refuses a VM larger than this (passed to `receiveMigration`). */
  readonly maxMemoryBytes?: number;
}

/** Both sides' outcomes of one loopback migration, and the destination memory. */
export interface LoopbackResult {
  /** The source's report, or the error `migrate` rejected with. */
  readonly report: MigrationReport | Error;
  /** The receiver's result, or the error `receiveMigration` rejected with. */
  readonly received: ReceiveResult | Error;
  /** The destination memory, or `null` when the receiver never created one. */
  readonly sink: SimMemorySink | null;
}

/**
 * What {@link migrateSimVm} returns: the migration's outcome and its source
 * VM, still open; disposing it (`await using`) closes the VM.
 */
export interface SimMigration extends LoopbackResult, AsyncDisposable {
  /** The source VM: paused after a verified migration, running after a failed one. */
  readonly vm: SimVm;
}

/** A migration that both sides completed, from {@link assertBitExact}. */
export interface BitExactMigration {
  /** The source's report, verified. */
  readonly report: MigrationReport;
  /** The receiver's result. */
  readonly received: ReceiveResult;
  /** The destination memory, equal to the source's. */
  readonly sink: SimMemorySink;
}

/**
 * Creates a {@link SimVm} and migrates it with `plan` over real loopback TCP,
 * with a {@link SimMemorySink} as the destination. Neither side's failure
 * throws: it comes back as the `Error` in its place. The VM stays open for
 * the caller's checks until the result is disposed.
 *
 * @example
 * ```ts ignore
 * await using run = await migrateSimVm(
 *   { memoryBytes: MiB(8), workload: "idle" },
 *   compile(policy("p")),
 * );
 * const report = verifiedReport(run);
 * ```
 */
export async function migrateSimVm(
  vmOptions: SimVmOptions,
  plan: Plan,
  options: LoopbackOptions = {},
): Promise<SimMigration> {
  const vm = await SimVm.create(vmOptions);
  try {
    const result = await loopbackMigration(vm, plan, options);
    return { ...result, vm, [Symbol.asyncDispose]: () => vm.close() };
  } catch (e) {
    await vm.close();
    throw e;
  }
}

/**
 * Migrates an open `vm` with `plan` over real loopback TCP, as
 * {@link migrateSimVm} does, for a test that must act between creating the
 * VM and migrating it; the caller closes the VM.
 *
 * @example
 * ```ts ignore
 * await using vm = await SimVm.create({ memoryBytes: MiB(8), workload: "idle" });
 * const { report, received, sink } = await loopbackMigration(vm, plan);
 * ```
 */
export async function loopbackMigration(
  vm: SimVm,
  plan: Plan,
  options: LoopbackOptions = {},
): Promise<LoopbackResult> {
  const { maxMemoryBytes, ...migrateOptions } = options;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    let sink: SimMemorySink | null = null;
    const receiving = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          maxMemoryBytes,
          createSink: (hello) => (sink = new SimMemorySink({
            pageSize: hello.pageSize,
            pageCount: hello.memoryBytes / hello.pageSize,
          })),
        });
      } finally {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    })().catch((e: Error) => e);
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: (listener.addr as Deno.NetAddr).port,
    });
    const report = await migrate({ plan, source: vm, conn, ...migrateOptions })
      .catch((e: Error) => e);
    try {
      conn.close();
    } catch { /* closed */ }
    const received = await receiving;
    return { report, received, sink };
  } finally {
    listener.close();
  }
}

/**
 * Asserts that the source finished and verified the migration, and returns
 * its report; the error of a failed migration is rethrown as it is.
 *
 * @example
 * ```ts ignore
 * const report = verifiedReport(run);
 * ```
 */
export function verifiedReport(result: LoopbackResult): MigrationReport {
  const { report } = result;
  if (report instanceof Error) throw report;
  assert.equal(report.verified, true, report.outcome);
  return report;
}

/**
 * Asserts that both sides finished, the source verified the migration, and
 * the destination memory equals the (paused) source memory byte for byte.
 * Either side's error is rethrown as it is.
 *
 * @example
 * ```ts ignore
 * const { report } = assertBitExact(run);
 * ```
 */
export function assertBitExact(run: SimMigration): BitExactMigration {
  const report = verifiedReport(run);
  const { received, sink, vm } = run;
  if (received instanceof Error) throw received;
  assert.ok(sink, "the receiver created no destination memory");
  assert.ok(
    Buffer.from(vm.memory).equals(Buffer.from(sink.memory)),
    "destination memory differs from source",
  );
  return { report, received, sink };
}

/**
 * Asserts that a migration failed with a {@link MigrationError} whose
 * message matches `pattern`, and returns that error.
 *
 * @example
 * ```ts ignore
 * assertMigrationError(run.report, /aborted by policy "abort"/);
 * ```
 */
export function assertMigrationError(
  report: MigrationReport | Error,
  pattern: RegExp,
): MigrationError {
  assert.ok(
    report instanceof MigrationError,
    `expected a MigrationError, got ${report}`,
  );
  assert.match(report.message, pattern);
  return report;
}
