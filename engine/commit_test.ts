/**
 * The commit protocol over real loopback connections through the fault
 * proxy, aimed at the frames of the verdict phase: whatever is lost, there
 * is never a copy running at each end. A lost RESULT or COMMIT is
 * recovered through RESUME and committed once; a lost COMMITTED is told by
 * the receiver's memory of the session; a receiver that cannot be reached
 * after COMMIT leaves the VM paused at the source with an "outcome
 * unknown" error; a cut before END or a lost verdict without a resume
 * policy resumes the VM while the receiver discards; peers without the
 * protocol work as before.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { codec, compile, policy, when } from "../dsl/mod.ts";
import { MiB } from "../dsl/units.ts";
import { type Fault, faultProxy } from "./_fault_proxy.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import { CommitUnknownError, MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate, type MigrateOptions } from "./precopy.ts";
import {
  receiveMigration,
  type ReceiveResult,
  type ReceiverEvent,
  ResumeRegistry,
} from "./receiver.ts";
import type { MigrationReport } from "./report.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import { memoryDuplex } from "./wire/duplex.ts";
import { FrameType } from "./wire/frame.ts";

const DEADLINE_MS = 90_000;

function commitPlan(
  name: string,
  options: { resume?: boolean; grace?: number; attempts?: number } = {},
): Plan {
  const p = policy(name).codec([codec.zero(), codec.raw()]).channels(2)
    .switchover(when.rounds(2))
    .deadlines({ reply: 2_000, downtime: 30_000 });
  return compile(
    options.resume === false ? p : p.resume({
      grace: options.grace ?? 10_000,
      attempts: options.attempts ?? 3,
    }),
  );
}

/** What one migration through the proxy ended with, on both sides. */
interface Run {
  readonly report: MigrationReport | Error;
  readonly received: ReceiveResult | Error;
  readonly sink: SimMemorySink | null;
  /** The source's memory at the pause (what the destination must hold). */
  readonly paused: Uint8Array | null;
  /** Whether the source VM is paused at the end. */
  readonly vmPaused: boolean;
  /** Receiver events: parked (and what for), committed. */
  readonly events: readonly ReceiverEvent[];
  /** Connections that carried the session on (RESUME), beside the first. */
  readonly joined: number;
  /** Whether the proxy injected its fault. */
  readonly fired: boolean;
}

/**
 * Migrates a sim VM through a fault proxy to a receiver that serves every
 * connection with one resume registry; returns both sides' outcomes.
 */
async function run(
  fault: Fault,
  plan: Plan,
  options: {
    maxGraceMs?: number;
    reconnect?: MigrateOptions["reconnect"] | "proxy" | "none";
  } = {},
): Promise<Run> {
  await using vm = await SimVm.create({
    memoryBytes: MiB(4),
    workload: "unique",
    seed: 11,
    dirtyRate: 200,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const proxy = faultProxy((listener.addr as Deno.NetAddr).port, fault);
  const registry = new ResumeRegistry({ maxGraceMs: options.maxGraceMs });
  const events: ReceiverEvent[] = [];
  let sink: SimMemorySink | null = null;
  let settle!: (r: ReceiveResult | Error) => void;
  const session = new Promise<ReceiveResult | Error>((r) => settle = r);
  let joined = 0;
  let first = true;
  const loop = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return;
      }
      const original = first;
      first = false;
      receiveMigration(conn, {
        frameTimeoutMs: 30_000,
        resume: { registry, identity: null },
        onEvent: (e) => events.push(e),
        createSink: (h) =>
          sink = new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
      }).then(
        (r) => {
          if (r.joined) joined++;
          else settle(r);
        },
        (e: Error) => {
          if (original) settle(e);
        },
      ).finally(() => closeQuietly(conn));
    }
  })();
  let paused: Uint8Array | null = null;
  const source = driverOf(vm, {
    pause: async () => {
      await vm.pause();
      paused = vm.memory.slice();
    },
  });
  const reconnect = options.reconnect ?? "proxy";
  try {
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: proxy.port,
    });
    const report = await withDeadline(
      migrate({
        plan,
        source,
        conn,
        ...(reconnect === "none" ? {} : {
          reconnect: reconnect === "proxy"
            ? () => Deno.connect({ hostname: "127.0.0.1", port: proxy.port })
            : reconnect,
        }),
      }).catch((e: Error) => e),
      `the source, with fault ${JSON.stringify(fault)}`,
      DEADLINE_MS,
    );
    closeQuietly(conn);
    const received = await withDeadline(
      session,
      `the receiver, with fault ${JSON.stringify(fault)}`,
      DEADLINE_MS,
    );
    return {
      report,
      received,
      sink,
      paused,
      vmPaused: vm.paused,
      events,
      joined,
      fired: proxy.fired,
    };
  } finally {
    await proxy.close();
    listener.close();
    await loop;
  }
}

/** One copy, at the destination: the source verified and committed, its VM paused, the receiver committed what it paused with. */
function assertCommittedOnce(r: Run, where: string): MigrationReport {
  assert.ok(r.fired, `${where}: the fault never fired`);
  assert.ok(!(r.report instanceof Error), `${where}: ${r.report}`);
  const report = r.report as MigrationReport;
  assert.ok(report.verified, report.outcome);
  assert.equal(report.commit?.committed, true);
  assert.equal(r.vmPaused, true, `${where}: the source VM was resumed`);
  assert.ok(!(r.received instanceof Error), `${where}: ${r.received}`);
  const received = r.received as ReceiveResult;
  assert.equal(received.verified, true);
  assert.equal(received.commit, true);
  assert.equal(r.sink?.state, "committed");
  assert.ok(
    Buffer.from(r.sink!.memory).equals(Buffer.from(r.paused!)),
    `${where}: the destination differs from the source at the pause`,
  );
  assert.equal(
    r.events.filter((e) => e.type === "committed").length,
    1,
    `${where}: committed more than once`,
  );
  return report;
}

/** The copy at the source: the migration failed, the VM runs on, the receiver did not commit. */
function assertSourceRunsOn(r: Run, where: string): Error {
  assert.ok(r.report instanceof Error, `${where}: the migration did not fail`);
  assert.ok(
    r.report instanceof MigrationError &&
      !(r.report instanceof CommitUnknownError),
    `${where}: ${r.report}`,
  );
  assert.equal(r.vmPaused, false, `${where}: the VM was left paused`);
  assert.ok(r.received instanceof Error, `${where}: the receiver did not fail`);
  assert.notEqual(r.sink?.state, "committed", `${where}: two copies`);
  assert.equal(r.events.some((e) => e.type === "committed"), false);
  return r.report;
}

Deno.test({
  name:
    "commit: RESULT lost on its way back — the source resumes the session, learns verified, commits; one copy (receiver committed, source VM still paused)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      {
        kind: "cut",
        direction: "down",
        afterBytes: 0,
        frameType: FrameType.RESULT,
      },
      commitPlan("commit-result-lost"),
    );
    const report = assertCommittedOnce(r, "RESULT lost");
    assert.equal(report.commit?.reconnects, 1);
    assert.equal(r.joined, 1, "one RESUME carried the session to its end");
    const parked = r.events.find((e) => e.type === "parked");
    assert.ok(parked && parked.type === "parked");
    assert.equal(parked.waiting, "COMMIT");
  },
});

Deno.test({
  name:
    "commit: COMMIT lost — the source asks again through RESUME, sends COMMIT again and the receiver commits once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      {
        kind: "cut",
        direction: "up",
        afterBytes: 0,
        frameType: FrameType.COMMIT,
      },
      commitPlan("commit-commit-lost"),
    );
    const report = assertCommittedOnce(r, "COMMIT lost");
    assert.equal(report.commit?.reconnects, 1);
    assert.equal(r.joined, 1);
  },
});

Deno.test({
  name:
    "commit: COMMITTED lost — the RESUME is answered from the ended session: COMMITTED, and the source reports verified",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      {
        kind: "cut",
        direction: "down",
        afterBytes: 0,
        frameType: FrameType.COMMITTED,
      },
      commitPlan("commit-committed-lost"),
    );
    const report = assertCommittedOnce(r, "COMMITTED lost");
    assert.equal(report.commit?.reconnects, 1);
  },
});

Deno.test({
  name:
    "commit: the receiver cannot be reached after COMMIT — the source VM stays paused, the error says the outcome is unknown and what to check; the receiver, which never got COMMIT, discards after its grace",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    let tries = 0;
    const r = await run(
      {
        kind: "cut",
        direction: "up",
        afterBytes: 0,
        frameType: FrameType.COMMIT,
      },
      commitPlan("commit-unreachable", { grace: 3_000, attempts: 2 }),
      {
        maxGraceMs: 500,
        reconnect: () => {
          tries++;
          return Promise.reject(new Error("Connection refused (os error 111)"));
        },
      },
    );
    assert.ok(r.fired);
    assert.ok(r.report instanceof CommitUnknownError, String(r.report));
    assert.equal(r.vmPaused, true, "the VM was resumed after COMMIT");
    assert.equal(tries, 2);
    assert.match(
      r.report.message,
      /^Outcome unknown: COMMIT was sent to .* 2 reconnections within the policy's resume grace of 3000 ms did not tell\)\. The VM stays PAUSED at the source and was not resumed.*Check the receiver for session [0-9a-f]{32}: if it committed/,
    );
    // The receiver never got COMMIT: it waited its grace, then discarded.
    assert.ok(r.received instanceof Error, String(r.received));
    assert.match(
      r.received.message,
      /Connection closed before COMMIT: the memory verified, but its source never committed it; no RESUME came within the session's grace of 500 ms/,
    );
    assert.equal(r.sink?.state, "discarded");
  },
});

Deno.test({
  name:
    "commit: a partition after the receiver committed (COMMITTED blackholed, reconnections go dark) — the source cannot know: the VM stays paused, never a second copy",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      {
        kind: "blackhole",
        direction: "down",
        afterBytes: 0,
        frameType: FrameType.COMMITTED,
      },
      commitPlan("commit-partition", { grace: 5_000, attempts: 2 }),
    );
    assert.ok(r.report instanceof CommitUnknownError, String(r.report));
    assert.equal(r.vmPaused, true, "the VM was resumed: two copies");
    assert.ok(!(r.received instanceof Error), String(r.received));
    assert.equal(r.received.verified, true);
    assert.equal(r.sink?.state, "committed");
  },
});

Deno.test({
  name:
    "commit: a cut before END is as before — the VM resumes at the source, the receiver discards and never commits",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      { kind: "cut", direction: "up", afterBytes: 0, frameType: FrameType.END },
      commitPlan("commit-before-end"),
    );
    assert.ok(r.fired);
    const error = assertSourceRunsOn(r, "cut before END");
    assert.match(error.message, /the VM resumes at the source/);
  },
});

Deno.test({
  name:
    "commit: RESULT lost without a resume policy — the verdict cannot be asked for again: the VM resumes at the source, and the receiver, which gets no COMMIT, discards",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await run(
      {
        kind: "cut",
        direction: "down",
        afterBytes: 0,
        frameType: FrameType.RESULT,
      },
      commitPlan("commit-no-resume", { resume: false }),
      { reconnect: "none" },
    );
    assert.ok(r.fired);
    const error = assertSourceRunsOn(r, "RESULT lost, no resume");
    assert.match(
      error.message,
      /the verdict was lost before COMMIT \(no resume policy .*\): the receiver never commits without COMMIT and discards its copy, so the VM resumes at the source/,
    );
    assert.match(
      (r.received as Error).message,
      /Connection closed before COMMIT/,
    );
    assert.equal(r.sink?.state, "discarded");
  },
});

Deno.test("commit: a source without the protocol and a receiver without it work as before (the receiver commits at RESULT)", async () => {
  for (const side of ["old source", "old receiver"] as const) {
    await using vm = await SimVm.create({
      memoryBytes: MiB(2),
      workload: "idle",
    });
    const [conn, destination] = memoryDuplex();
    let sink: SimMemorySink | null = null;
    const events: ReceiverEvent[] = [];
    const received = receiveMigration(destination, {
      commit: side !== "old receiver",
      onEvent: (e) => events.push(e),
      createSink: (h) =>
        sink = new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
    });
    const report = await withDeadline(
      migrate({
        plan: commitPlan("old-peer", { resume: false }),
        source: vm,
        conn,
        channels: 1,
        commit: side !== "old source",
      }),
      side,
      DEADLINE_MS,
    );
    const result = await received;
    assert.ok(report.verified, `${side}: ${report.outcome}`);
    assert.equal(report.commit, undefined, `${side}: COMMIT was negotiated`);
    assert.equal(result.verified, true);
    assert.equal(result.commit, false);
    assert.equal(events.some((e) => e.type === "committed"), false);
    assert.equal((sink as SimMemorySink | null)?.state, "committed");
    assert.equal(vm.paused, true);
  }
});

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* closed */ }
}
