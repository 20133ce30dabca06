/**
 * Real migrations over loopback TCP through a proxy that injects one fault
 * at a random point of either direction: the link cut, blackholed, delayed,
 * or a byte corrupted. Whatever happens there is never a copy running at
 * each end, and nothing hangs: the migration ends verified on both sides
 * with the destination equal to the source (the source's copy paused); or
 * fails on the source with a named error while the VM runs on and the
 * receiver never commits; or — the fault hit after COMMIT, before
 * COMMITTED, and this policy has no resume to ask again — the source says
 * the outcome is unknown and keeps the VM paused.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { codec, compile, policy, when } from "../dsl/mod.ts";
import { MiB } from "../dsl/units.ts";
import { type Fault, faultProxy } from "./_fault_proxy.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import {
  CodecError,
  CommitUnknownError,
  MigrationError,
  WireError,
} from "./errors.ts";
import { migrate } from "./precopy.ts";
import { receiveMigration, type ReceiveResult } from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";

const DEADLINE_MS = 60_000;

/** About what one migration below carries upstream (8 MiB memcached, zero → lz4). */
const UP_BYTES = 1_200_000;
/** And downstream: WELCOME, READY, RESULT, COMMITTED. */
const DOWN_BYTES = 500;

const faultArb: fc.Arbitrary<Fault> = fc.oneof(
  fc.record({
    kind: fc.constantFrom(
      "cut" as const,
      "blackhole" as const,
      "corrupt" as const,
    ),
    direction: fc.constant("up" as const),
    afterBytes: fc.integer({ min: 0, max: UP_BYTES }),
  }),
  fc.record({
    kind: fc.constantFrom(
      "cut" as const,
      "blackhole" as const,
      "corrupt" as const,
    ),
    direction: fc.constant("down" as const),
    afterBytes: fc.integer({ min: 0, max: DOWN_BYTES }),
  }),
  fc.record({
    kind: fc.constant("delay" as const),
    direction: fc.constantFrom("up" as const, "down" as const),
    afterBytes: fc.integer({ min: 0, max: 2000 }),
    delayMs: fc.integer({ min: 10, max: 300 }),
  }),
);

Deno.test({
  name:
    "fault injection: a cut, blackholed, delayed or corrupted link at a random point ends verified, or fails cleanly (the VM runs on, the receiver never commits), or after COMMIT keeps the VM paused — never two copies, nothing hangs",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const tally: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(faultArb, async (fault) => {
        await using vm = await SimVm.create({
          memoryBytes: MiB(8),
          workload: "memcached",
          seed: 9,
        });
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const proxy = faultProxy(
          (listener.addr as Deno.NetAddr).port,
          fault,
        );
        let sink: SimMemorySink | null = null;
        const received = (async (): Promise<ReceiveResult | Error> => {
          const conn = await listener.accept();
          try {
            return await receiveMigration(conn, {
              // Generous: a source on a loaded machine is slow, not faulty.
              frameTimeoutMs: 20_000,
              createSink: (h) =>
                sink = new SimMemorySink({
                  pageSize: h.pageSize,
                  pageCount: h.memoryBytes / h.pageSize,
                }),
            });
          } catch (e) {
            return e as Error;
          } finally {
            try {
              conn.close();
            } catch { /* closed */ }
          }
        })();
        const plan = compile(
          policy("faulty").codec([codec.zero(), codec.lz4()])
            .switchover(when.rounds(2)).channels(2)
            .deadlines({ reply: 4_000, downtime: 8_000 }),
        );
        try {
          const conn = await Deno.connect({
            hostname: "127.0.0.1",
            port: proxy.port,
          });
          // What the destination must hold: memory as it was when paused
          // (a failed migration resumes the VM, which writes on).
          let paused: Uint8Array | null = null;
          const source = driverOf(vm, {
            pause: async () => {
              await vm.pause();
              paused = vm.memory.slice();
            },
          });
          const report = await withDeadline(
            migrate({ plan, source, conn }).catch((e: Error) => e),
            `the source, with fault ${JSON.stringify(fault)}`,
            DEADLINE_MS,
          );
          try {
            conn.close();
          } catch { /* closed */ }
          await proxy.close();
          const got = await withDeadline(
            received,
            `the receiver, with fault ${JSON.stringify(fault)}`,
            DEADLINE_MS,
          );
          const s = sink as SimMemorySink | null;
          const where = `fault ${JSON.stringify(fault)}`;
          if (report instanceof CommitUnknownError) {
            // COMMIT went, COMMITTED did not come back: the source cannot
            // know, and keeps its copy paused whatever the receiver did.
            tally["unknown after COMMIT"] =
              (tally["unknown after COMMIT"] ?? 0) + 1;
            assert.equal(vm.paused, true, `${where}: resumed after COMMIT`);
            if (s?.state === "committed") {
              const at = paused as Uint8Array | null;
              assert.ok(
                at && Buffer.from(s.memory).equals(Buffer.from(at)),
                `${where}: the receiver committed other memory`,
              );
            }
          } else if (report instanceof Error) {
            tally[`${fault.kind} failed`] = (tally[`${fault.kind} failed`] ??
              0) + 1;
            assert.ok(
              report instanceof MigrationError || report instanceof WireError ||
                report instanceof CodecError,
              `${where}: an unnamed failure: ${report}`,
            );
            assert.equal(vm.paused, false, `${where}: the VM was left paused`);
            // The VM runs here: the receiver must not run it too. (A lost
            // RESULT left a committed copy there before the commit
            // protocol.)
            assert.notEqual(s?.state, "committed", `${where}: two copies`);
            assert.ok(
              got instanceof Error || !got.verified,
              `${where}: the receiver verified`,
            );
          } else {
            tally[`${fault.kind} verified`] =
              (tally[`${fault.kind} verified`] ?? 0) + 1;
            assert.ok(report.verified, `${where}: ${report.outcome}`);
            assert.ok(
              !(got instanceof Error) && got.verified,
              `${where}: the source verified, the receiver did not: ${got}`,
            );
            assert.ok(
              s && Buffer.from(s.memory).equals(Buffer.from(vm.memory)),
              `${where}: destination differs`,
            );
          }
          if (fault.kind === "delay") {
            assert.ok(
              !(report instanceof Error),
              `a delay under the deadlines must not fail: ${report}`,
            );
          }
        } finally {
          await proxy.close();
          listener.close();
        }
      }),
      { numRuns: 16 },
    );
    // Both endings happened: the property was not vacuous.
    const failed = Object.entries(tally).filter(([k]) => k.endsWith("failed"))
      .reduce((a, [, n]) => a + n, 0);
    const verified = Object.entries(tally).filter(([k]) =>
      k.endsWith("verified")
    ).reduce((a, [, n]) => a + n, 0);
    assert.ok(failed > 0 && verified > 0, JSON.stringify(tally));
  },
});
