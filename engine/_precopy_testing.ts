/**
 * Helpers shared by the pre-copy engine tests (not part of the public API):
 * one migration of a simulated VM over real loopback TCP, the checks that
 * the tests make of its outcome, and {@link withDeadline}, which the
 * receiver tests use too, so that a wait that never ends fails its test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { SourceDriver } from "./driver.ts";
import { MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate, type MigrateOptions } from "./precopy.ts";
import {
  receiveMigration,
  type ReceiveResult,
  type ReceiverOptions,
} from "./receiver.ts";
import type { MigrationReport } from "./report.ts";
import { SimMemorySink, SimVm, type SimVmOptions } from "./sim/mod.ts";

/** How long a whole loopback migration of these tests may take; each takes a second or less. */
const MIGRATION_DEADLINE_MS = 60_000;

/**
 * Settles as `promise` does, or rejects once `ms` have passed with an error
 * that names `what` the test waited for, so that a peer that stops
 * answering fails a test in seconds instead of hanging it.
 *
 * @example
 * ```ts ignore
 * const frame = await withDeadline(reader.next(), "WELCOME from the receiver", 5_000);
 * // or rejects: "Timed out waiting for WELCOME from the receiver: nothing after 5000 ms"
 * ```
 */
export function withDeadline<T>(
  promise: Promise<T>,
  what: string,
  ms: number,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`Timed out waiting for ${what}: nothing after ${ms} ms`),
        ),
      ms,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** Options of {@link migrateSimVm}. */
export interface LoopbackOptions {
  /** Aborts the migration (passed to `migrate`). */
  readonly signal?: AbortSignal;
  /** `null` runs the source as if the runtime had no WebGPU adapter. */
  readonly gpu?: null;
  /** The receiver refuses a VM larger than this (passed to `receiveMigration`). */
  readonly maxMemoryBytes?: number;
  /** Round progress (passed to `migrate`). */
  readonly onProgress?: MigrateOptions["onProgress"];
  /** The channels' handle once they started (passed to `migrate`). */
  readonly onChannels?: MigrateOptions["onChannels"];
  /** How the receiver decodes (passed to `receiveMigration` as `gpu`). */
  readonly receiverGpu?: ReceiverOptions["gpu"];
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
 * VM and migrating it; the caller closes the VM. Rejects, naming the wait,
 * when the connection, the migration or the receiver takes over a minute.
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
  const { maxMemoryBytes, receiverGpu, ...migrateOptions } = options;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    let sink: SimMemorySink | null = null;
    const receiving = (async () => {
      const conn = await listener.accept();
      try {
        return await receiveMigration(conn, {
          maxMemoryBytes,
          gpu: receiverGpu,
          createSink: (hello) => (sink = new SimMemorySink({
            pageSize: hello.pageSize,
            pageCount: hello.memoryBytes / hello.pageSize,
          })),
        });
      } finally {
        closeQuietly(conn);
      }
    })().catch((e: Error) => e);
    const conn = await withDeadline(
      Deno.connect({
        hostname: "127.0.0.1",
        port: (listener.addr as Deno.NetAddr).port,
      }),
      "a loopback TCP connection",
      MIGRATION_DEADLINE_MS,
    );
    try {
      const report = await withDeadline(
        migrate({ plan, source: vm, conn, ...migrateOptions })
          .catch((e: Error) => e),
        "the source's migration report",
        MIGRATION_DEADLINE_MS,
      );
      closeQuietly(conn);
      const received = await withDeadline(
        receiving,
        "the receiver's result",
        MIGRATION_DEADLINE_MS,
      );
      return { report, received, sink };
    } finally {
      closeQuietly(conn);
    }
  } finally {
    listener.close();
  }
}

/** Closes `conn` unless something closed it already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed */ }
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
 * The rounds in which a codec of a tested chain must claim pages: none
 * before round `from`, none after round `to` (when given), and at least one
 * in between.
 */
export interface ClaimWindow {
  /** First round in which the codec can claim a page. */
  readonly from: number;
  /** Last round in which it can (it leaves the chain after it); default: the last round. */
  readonly to?: number;
}

/**
 * Asserts which codecs claimed pages in which rounds of a migration:
 * every codec named in `claims` claimed at least one page inside its
 * {@link ClaimWindow} and none outside it; no other codec but `raw` (which
 * ends every chain) claimed any page; and every round's pages were claimed
 * by codecs of that round's chain, adding up to the pages it sent. The
 * failure message shows the codec mix of every round.
 *
 * @example
 * ```ts ignore
 * // delta joins in round 0, so it can first claim a page on its third send.
 * assertClaims(report, { zero: { from: 0 }, delta: { from: 2 } });
 * ```
 */
export function assertClaims(
  report: MigrationReport,
  claims: Readonly<Record<string, ClaimWindow>>,
): void {
  const mixes = report.rounds.map((r) => r.codecMix);
  const seen = `codec mix per round: ${JSON.stringify(mixes)}`;
  for (const r of report.rounds) {
    let total = 0;
    for (const [name, pages] of Object.entries(r.codecMix)) {
      assert.ok(
        r.codecs.includes(name),
        `round ${r.round}: codec "${name}" claimed ${pages} pages but is not in its chain [${r.codecs}]; ${seen}`,
      );
      assert.ok(
        name === "raw" || name in claims,
        `round ${r.round}: codec "${name}" claimed ${pages} pages, expected none; ${seen}`,
      );
      total += pages;
    }
    assert.equal(
      total,
      r.pagesSent,
      `round ${r.round}: the codec mix adds up to ${total} pages, ${r.pagesSent} were sent; ${seen}`,
    );
  }
  for (const [name, { from, to = Infinity }] of Object.entries(claims)) {
    let inside = 0;
    for (const r of report.rounds) {
      const pages = r.codecMix[name] ?? 0;
      if (r.round >= from && r.round <= to) inside += pages;
      else {
        assert.equal(
          pages,
          0,
          `round ${r.round}: codec "${name}" claimed ${pages} pages outside rounds ${from} to ${to}; ${seen}`,
        );
      }
    }
    assert.ok(
      inside > 0,
      `codec "${name}" claimed no page in rounds ${from} to ${to}; ${seen}`,
    );
  }
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

/**
 * `vm` as a {@link SourceDriver} with some members replaced (a test that
 * times or hooks pause and resume).
 *
 * @example
 * ```ts ignore
 * const driver = driverOf(vm, { pause: async () => { await vm.pause(); hook(); } });
 * ```
 */
export function driverOf(
  vm: SimVm,
  over: Partial<SourceDriver>,
): SourceDriver {
  return {
    description: vm.description,
    pageSize: vm.pageSize,
    pageCount: vm.pageCount,
    shared: vm.shared,
    startDirtyLog: () => vm.startDirtyLog(),
    syncDirty: (out) => vm.syncDirty(out),
    page: (pfn) => vm.page(pfn),
    pause: () => vm.pause(),
    resume: () => vm.resume(),
    digest: () => vm.digest(),
    close: () => vm.close(),
    ...over,
  };
}
