/**
 * A link lost during the stop-and-copy round of a resumable migration with
 * per-channel connections, over real loopback connections through the fault
 * proxy. The source does not resume from it (its VM is paused): it resumes
 * the VM at once and gives the migration up. The receiver, which lost a
 * connection before FINAL, has parked the session and closed the session's
 * connection, so an ABORT written there is lost; the source tells it on a
 * new connection (RESUME, then ABORT), and the receiver discards within
 * seconds instead of at the end of its 30 s grace. Cut: one channel's
 * connection, or the session's own. When no new connection can be made the
 * source still fails within its short bound.
 */

import assert from "node:assert/strict";
import { codec, compile, MiB, policy, when } from "../dsl/mod.ts";
import { faultProxy } from "./_fault_proxy.ts";
import {
  channelProxies,
  closeQuietly,
  serveAll,
} from "./_channel_resume_testing.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import { MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate } from "./precopy.ts";
import type { ReceiverEvent } from "./receiver.ts";
import { SimVm } from "./sim/mod.ts";
import {
  type ChannelConn,
  connectChannel,
  INSECURE_PLAIN,
} from "./transport/secure/mod.ts";

/** Generous: the first Worker of a fresh cache type-checks its module graph first. */
const DEADLINE_MS = 180_000;
/** The session's grace, on both sides. */
const GRACE_MS = 30_000;
/** The receiver must have ended the session this soon after the cut: far below the grace. */
const ENDED_WITHIN_MS = 5_000;

function stopCopyPlan(name: string): Plan {
  return compile(
    policy(name).codec([codec.raw()]).channels(2)
      .switchover(when.rounds(2))
      .resume({ grace: GRACE_MS, attempts: 3 })
      // Generous reply deadline: a channel Worker's first start
      // type-checks its modules, which takes long on a loaded machine.
      .deadlines({ reply: 60_000, downtime: 20_000 }),
  );
}

/**
 * A 4 MiB migration on 2 channel connections whose link `cut` breaks as the
 * VM pauses (before any byte of the stop-and-copy round); `reachable`
 * false makes every reconnection come only after 6 s, as a connection that
 * is never used (`lateClosed` says whether it was closed). Resolves once the source failed and
 * the receiver ended, with the times from the cut.
 */
async function cutAtStopAndCopy(
  cut: "channel" | "session",
  options: { reachable?: boolean; maxGraceMs?: number } = {},
) {
  await using vm = await SimVm.create({
    memoryBytes: MiB(4),
    workload: "unique",
    seed: 9,
    dirtyRate: 200,
  });
  const events: ReceiverEvent[] = [];
  let parked!: () => void;
  const parkedThere = new Promise<void>((r) => parked = r);
  const receiver = await serveAll(INSECURE_PLAIN, {
    maxGraceMs: options.maxGraceMs,
    onEvent: (e) => {
      events.push(e);
      if (e.type === "parked") parked();
    },
  });
  const main = faultProxy(receiver.port, []);
  const channels = channelProxies(() => []);
  let cutAt = 0;
  let resumedAt = 0;
  /** Whether the VM was still paused when the source dialled again. */
  let pausedAtReconnect: boolean | null = null;
  let reconnects = 0;
  let lateClosed = false;
  const source = driverOf(vm, {
    pause: async () => {
      await vm.pause();
      cutAt = performance.now();
      if (cut === "session") main.cut();
      else channels.made.find((m) => m.channel === 1)!.proxy.cut();
      // The case at hand: the receiver parked (closing the session's
      // connection) before the source learns of the loss. Unwaited, a
      // channel cut may also reach the receiver after the source's ABORT on
      // the session's connection, or after FINAL (it then fails the session
      // itself): both end it at once too.
      await withDeadline(parkedThere, "the receiver's park", DEADLINE_MS);
    },
    resume: async () => {
      await vm.resume();
      resumedAt = performance.now();
    },
  });
  const to = { hostname: "127.0.0.1", port: main.port };
  const opened: ChannelConn[] = [];
  try {
    const conn = await connectChannel(to, INSECURE_PLAIN);
    opened.push(conn);
    const failed = await withDeadline(
      migrate({
        plan: stopCopyPlan(`stop-abort-${cut}`),
        source,
        conn,
        reconnect: async () => {
          reconnects++;
          pausedAtReconnect ??= vm.paused;
          if (options.reachable === false) {
            await new Promise((r) => setTimeout(r, 6_000));
            const idle = new TransformStream<Uint8Array, Uint8Array>();
            return {
              readable: idle.readable,
              writable: idle.writable,
              close: () => lateClosed = true,
            } as unknown as ChannelConn;
          }
          const c = await connectChannel(to, INSECURE_PLAIN);
          opened.push(c);
          return c;
        },
        channelConnections: {
          to,
          security: INSECURE_PLAIN,
          portOf: (c, port) => channels.portOf(c, port),
        },
      }).then(() => null, (e: Error) => e),
      "the source",
      DEADLINE_MS,
    );
    const failedAt = performance.now();
    const received = await withDeadline(
      receiver.session,
      "the receiver",
      DEADLINE_MS,
    );
    const endedAt = performance.now();
    assert.ok(cutAt > 0, "the VM never paused");
    assert.ok(
      failed instanceof MigrationError,
      `the source did not fail: ${failed}`,
    );
    assert.equal(vm.paused, false, "the VM was left paused");
    return {
      failed,
      received,
      events,
      reconnects,
      pausedAtReconnect,
      resumedMs: resumedAt - cutAt,
      failedMs: failedAt - cutAt,
      endedMs: endedAt - cutAt,
      sink: receiver.sink!,
      lateClosed: async () => {
        for (let i = 0; i < 100 && !lateClosed; i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        return lateClosed;
      },
      refused: receiver.refused,
    };
  } finally {
    for (const c of opened) closeQuietly(c);
    await main.close();
    await channels.close();
    await receiver.close();
  }
}

/** The checks of a cut at stop-and-copy whose receiver learns of the abort at once. */
function assertAbortedAtOnce(
  r: Awaited<ReturnType<typeof cutAtStopAndCopy>>,
): void {
  // The VM runs again before anything else is tried.
  assert.ok(
    r.resumedMs < ENDED_WITHIN_MS,
    `the VM resumed ${Math.round(r.resumedMs)} ms after the cut`,
  );
  assert.ok(r.reconnects <= 1, `${r.reconnects} reconnections`);
  assert.notEqual(r.pausedAtReconnect, true, "the VM was paused at reconnect");
  assert.ok(
    r.events.some((e) => e.type === "parked"),
    `the receiver never parked the session: ${
      r.events.map((e) => e.type).join(", ")
    }`,
  );
  assert.ok(
    !(r.received instanceof Error) && r.received.aborted,
    `the receiver did not end by the source's abort: ${
      r.received instanceof Error ? r.received.message : "no abort"
    }`,
  );
  assert.ok(
    r.endedMs < ENDED_WITHIN_MS,
    `the receiver ended ${
      Math.round(r.endedMs)
    } ms after the cut (grace ${GRACE_MS} ms)`,
  );
  assert.equal(r.sink.state, "discarded", "the receiver did not discard");
}

Deno.test({
  name:
    "stop-and-copy abort: a channel's connection cut as the VM pauses: the source resumes its VM at once and tells the parked receiver on a new connection, which discards within 5 s (grace 30 s)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await cutAtStopAndCopy("channel");
    assertAbortedAtOnce(r);
  },
});

Deno.test({
  name:
    "stop-and-copy abort: the session's connection cut as the VM pauses: the source resumes its VM at once and tells the parked receiver on a new connection, which discards within 5 s (grace 30 s)",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await cutAtStopAndCopy("session");
    assertAbortedAtOnce(r);
  },
});

Deno.test({
  name:
    "stop-and-copy abort: no new connection can be made: the source resumes its VM at once and still fails within its 5 s bound; the receiver discards at its grace",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await cutAtStopAndCopy("session", {
      reachable: false,
      maxGraceMs: 1000,
    });
    assert.ok(
      r.resumedMs < 2_000,
      `the VM resumed ${Math.round(r.resumedMs)} ms after the cut`,
    );
    assert.equal(r.pausedAtReconnect, false, "the VM was paused at reconnect");
    // 5 s of trying, and the time to notice the cut, on a loaded machine.
    assert.ok(
      r.failedMs < 5_000 + 3_000,
      `the source failed ${Math.round(r.failedMs)} ms after the cut`,
    );
    assert.ok(r.received instanceof Error, "the receiver did not fail");
    assert.match(
      r.received.message,
      /no RESUME came within the session's grace/,
    );
    assert.equal(r.sink.state, "discarded", "the receiver did not discard");
    assert.ok(
      await r.lateClosed(),
      "the connection that came after the bound was not closed",
    );
  },
});
