/**
 * Per-channel connections in a migration that resumes, over real loopback
 * connections through the fault proxy: a cut of the session's connection,
 * or of one channel's own connection, during pre-copy parks the receiver's
 * session; the source reconnects, RESUMEs, and every channel joins again
 * on fresh ports with a fresh token; only what the receiver lacked (plus
 * what the guest dirtied) goes again, and the migration ends verified. Over
 * TLS the channels' read buffers are reserved once per session. A resume
 * after the receiver's grace is refused, and the source fails with its VM
 * running.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { codec, compile, MBps, MiB, policy, when } from "../dsl/mod.ts";
import { type FaultProxy, faultProxy } from "./_fault_proxy.ts";
import {
  channelProxies,
  closeQuietly,
  serveAll,
} from "./_channel_resume_testing.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import { MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate } from "./precopy.ts";
import {
  ReceiveBudget,
  type ReceiveResult,
  type ReceiverEvent,
} from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import {
  type ChannelConn,
  connectChannel,
  type ConnectSecurity,
  connectSecurityFromDir,
  INSECURE_PLAIN,
  type ListenSecurity,
  listenSecurityFromDir,
} from "./transport/secure/mod.ts";
import { credentialsDir } from "./transport/secure/_testing.ts";
import type { MigrationReport } from "./report.ts";

/** Generous: the first Worker of a fresh cache type-checks its module graph first. */
const DEADLINE_MS = 180_000;
const PAGE = 4096;
/** Bytes on top of the pages' own that the frames carrying no page may take after a cut. */
const FRAMING_SLACK = 65_536;

function resumingPlan(
  name: string,
  bandwidth?: number,
  replyMs = 60_000,
): Plan {
  const p = policy(name).codec([codec.raw()]).channels(2);
  return compile(
    (bandwidth ? p.bandwidth(bandwidth) : p)
      .switchover(when.rounds(3))
      .resume({ grace: 20_000, attempts: 3 })
      // Generous: a channel Worker's first start type-checks its modules,
      // which takes long on a loaded machine (HELLO waits for it).
      .deadlines({ reply: replyMs, downtime: 60_000 }),
  );
}

/** Up bytes of every proxied connection. */
function upBytes(proxy: FaultProxy): number {
  return proxy.connections.reduce((a, c) => a + c.up, 0);
}

/** What a resumed run's checks need. */
interface Resumed {
  report: MigrationReport;
  received: ReceiveResult;
  parked: Extract<ReceiverEvent, { type: "parked" }>;
  events: ReceiverEvent[];
  pausedWhileParked: boolean | null;
  /** The guest's memory when the VM paused. */
  paused: Uint8Array;
  /** Pages the source's dirty log reported from the cut on. */
  dirtiedAfter: number;
}

/** The checks every resumed run passes: verified, once, the VM running meanwhile, the same memory. */
function assertResumedOnce(r: Resumed, sink: SimMemorySink | null): void {
  assert.ok(
    r.report.verified,
    `the migration did not verify: ${r.report.outcome}`,
  );
  assert.equal(
    r.report.channelConnections,
    true,
    "channels had no connections of their own",
  );
  assert.equal(r.received.verified, true, "the receiver did not verify");
  assert.equal(
    r.received.resumes,
    1,
    "the receiver's session was not resumed exactly once",
  );
  assert.equal(
    r.report.resumes?.length,
    1,
    "the source did not resume exactly once",
  );
  assert.equal(r.report.resumes![0].round, 0, "the resume was not in round 0");
  assert.equal(
    r.pausedWhileParked,
    false,
    "the VM was paused while the link was down",
  );
  assert.ok(
    Buffer.from(sink!.memory).equals(Buffer.from(r.paused)),
    "the destination's memory differs from the source's at the pause",
  );
  assert.equal(sink!.state, "committed", "the destination did not commit");
  const joined = r.events.filter((e) => e.type === "channelJoined")
    .map((e) => e.type === "channelJoined" && e.channel).sort();
  assert.deepEqual(
    joined,
    [0, 0, 1, 1],
    "each channel did not join once before and once after the resume",
  );
}

/**
 * A 16 MiB migration on 2 channel connections, with `cut` deciding where
 * the link breaks (it returns whether it fired); resolves once both sides
 * ended.
 */
async function runCut(options: {
  listen: ListenSecurity;
  connect: ConnectSecurity;
  budget?: ReceiveBudget;
  /** Main connection's proxy, and whether the cut fired. */
  mainFault?: Parameters<typeof faultProxy>[1];
  channelFault: (
    channel: number,
    nth: number,
  ) => Parameters<typeof faultProxy>[1];
  /** Cut the main proxy by hand at this fraction of round 0's pages (the source's progress). */
  cutMainAt?: number;
  /** The plan's bandwidth (default: unpaced). */
  bandwidth?: number;
  /** The plan's reply deadline (default 60 s). */
  replyMs?: number;
  /** The VM's memory (default 16 MiB). */
  memoryBytes?: number;
}) {
  const memoryBytes = options.memoryBytes ?? MiB(16);
  // Every page differs and nothing compresses: a resend of what the
  // receiver already holds would show in the bytes.
  await using vm = await SimVm.create({
    memoryBytes,
    workload: "unique",
    seed: 5,
    dirtyRate: 200,
  });
  const events: ReceiverEvent[] = [];
  let parked: Extract<ReceiverEvent, { type: "parked" }> | null = null;
  let pausedWhileParked: boolean | null = null;
  const receiver = await serveAll(options.listen, {
    budget: options.budget,
    onEvent: (e) => {
      events.push(e);
      if (e.type === "parked") {
        parked = e;
        pausedWhileParked = vm.paused;
      }
    },
  });
  const main = faultProxy(receiver.port, options.mainFault ?? []);
  const channels = channelProxies(options.channelFault);
  const fired = () => main.fired || channels.made.some((m) => m.proxy.fired);
  let dirtiedAfter = 0;
  let paused: Uint8Array | null = null;
  const source = driverOf(vm, {
    syncDirty: (out: Uint32Array) => {
      const n = vm.syncDirty(out);
      if (fired()) dirtiedAfter += n;
      return n;
    },
    pause: async () => {
      await vm.pause();
      paused = vm.memory.slice();
    },
  });
  const to = { hostname: "127.0.0.1", port: main.port };
  const opened: ChannelConn[] = [];
  try {
    const conn = await connectChannel(to, options.connect);
    opened.push(conn);
    const report = await withDeadline(
      migrate({
        plan: resumingPlan("chan-resume", options.bandwidth, options.replyMs),
        source,
        conn,
        reconnect: async () => {
          const c = await connectChannel(to, options.connect);
          opened.push(c);
          return c;
        },
        channelConnections: {
          to,
          security: options.connect,
          portOf: (c, port) => channels.portOf(c, port),
        },
        onProgress: (p) => {
          if (
            options.cutMainAt !== undefined && !main.fired && p.round === 0 &&
            p.pagesDone >= options.cutMainAt * p.pagesTotal
          ) {
            main.cut();
          }
        },
      }),
      "the resumed migration",
      DEADLINE_MS,
    );
    const received = await withDeadline(
      receiver.session,
      "the receiver",
      DEADLINE_MS,
    );
    assert.ok(fired(), "the link was never cut");
    assert.ok(!(received instanceof Error), `the receiver failed: ${received}`);
    assert.ok(parked, "the receiver never parked the session");
    const result: Resumed = {
      report,
      received,
      parked,
      events,
      pausedWhileParked,
      paused: paused!,
      dirtiedAfter,
    };
    return {
      ...result,
      pages: memoryBytes / PAGE,
      main,
      channels,
      sink: receiver.sink,
    };
  } finally {
    for (const c of opened) closeQuietly(c);
    await main.close();
    await channels.close();
    await receiver.close();
  }
}

Deno.test({
  name:
    "channel resume: the session's connection cut mid-round parks the session; the source resumes, each channel joins again on a fresh port, and the migration ends verified",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const r = await runCut({
      listen: INSECURE_PLAIN,
      connect: INSECURE_PLAIN,
      channelFault: () => [],
      cutMainAt: 0.4,
      // Round 0 takes about 0.5 s, so the cut (at a progress report, at
      // most every 50 ms) comes well inside it.
      bandwidth: MBps(32),
    });
    assertResumedOnce(r, r.sink);
    // The session's connection (the source's, closing its channels once it
    // noticed, may come second).
    assert.match(
      r.parked.reason,
      /^Connection (closed before FINAL|to the source lost)/,
      "the park does not say the session's connection went",
    );
    // Fresh Workers: the channels joined on other ports after the resume.
    const ports = r.channels.made.map((m) => `${m.channel}:${m.port}`);
    assert.equal(
      new Set(ports).size,
      4,
      `channel ports not fresh after the resume: ${ports}`,
    );
    const held = r.parked.channelPages.reduce((a, b) => a + b, 0);
    assert.ok(
      held > 0 && held < r.pages,
      `held ${held} of ${r.pages} pages at the cut`,
    );
    assert.equal(
      r.report.resumes![0].pagesMissing,
      r.pages - held,
      "the source's missing pages are not what the receiver lacked",
    );
  },
});

/**
 * Channel 1's first connection is cut after `cutAt` bytes up; the checks
 * of a channel cut: verified, and the bytes after the cut (counted by the
 * proxies on every connection made after it, and by the source's report)
 * at most what was left plus what was dirtied.
 */
async function channelCut(kind: "plain" | "tls") {
  const memoryBytes = MiB(16);
  // 40% into channel 1's half of round 0.
  const cutAt = Math.floor(0.4 * memoryBytes / 2);
  const dir = kind === "tls"
    ? await credentialsDir("src-a", ["127.0.0.1"])
    : null;
  try {
    const listen = dir
      ? await listenSecurityFromDir(dir, ["src-a"])
      : INSECURE_PLAIN;
    const connect = dir ? await connectSecurityFromDir(dir) : INSECURE_PLAIN;
    // Over TLS: room for the memory, the two channels' read buffers
    // (4 MiB each) once, and 2 MiB more; a second reservation of the
    // buffers at the resume would not fit and fail the session.
    const budget = dir ? new ReceiveBudget(memoryBytes + MiB(10)) : undefined;
    const r = await runCut({
      listen,
      connect,
      budget,
      // Paced (round 0 about 0.5 s), so that the proxy relays as the
      // source writes: unpaced, the rest of channel 1's share of round 0
      // (4.8 MiB) may all fit in the socket buffers between the source and
      // the proxy before the cut fires, so that no write of round 0 fails
      // and the source learns of the cut only in round 1 or 2 (still
      // resumed, but then the pages it resends are no longer exactly those
      // the receiver lacked at the cut).
      bandwidth: MBps(32),
      channelFault: (channel, nth) =>
        channel === 1 && nth === 0
          ? { kind: "cut", direction: "up", afterBytes: cutAt }
          : [],
    });
    assertResumedOnce(r, r.sink);
    assert.match(
      r.parked.reason,
      /Channel 1's connection (was lost|closed before its last round)/,
      "the park does not name channel 1's connection",
    );
    if (budget) {
      assert.equal(
        budget.heldBytes,
        0,
        "the budget was not given back after the session",
      );
    }
    const held = r.parked.channelPages.reduce((a, b) => a + b, 0);
    assert.ok(
      held > 0 && held < r.pages,
      `held ${held} of ${r.pages} pages at the cut`,
    );
    const left = r.pages - held;
    assert.equal(
      r.report.resumes![0].pagesMissing,
      left,
      "the source's missing pages are not what the receiver lacked",
    );
    // Each page costs its 4096 bytes plus at most 16 of BATCH framing;
    // the slack covers RESUME, JOIN, CODEC, ROUND_END, FINAL, END.
    const bound = (left + r.dirtiedAfter) * (PAGE + 16) + FRAMING_SLACK;
    // The source's own count: wire bytes are counted once across the
    // resume (the channels' bytes before it are not counted again).
    const reported = r.report.wireBytes - r.report.resumes![0].wireBytesBefore;
    assert.ok(
      reported <= bound,
      `the report counts ${reported} wire bytes after the cut, over ${bound} (${left} pages left, ${r.dirtiedAfter} dirtied)`,
    );
    assert.ok(
      reported > left * PAGE,
      `the report counts only ${reported} wire bytes after the cut, for ${left} pages left`,
    );
    if (kind === "plain") {
      // The proxies' count, on every connection made after the cut: the
      // resumed session connection and the channels' new ones.
      const after = r.main.connections.slice(1).reduce((a, c) => a + c.up, 0) +
        r.channels.made.slice(2).reduce((a, m) => a + upBytes(m.proxy), 0);
      assert.equal(
        r.main.connections.length,
        2,
        "not one session connection after the cut",
      );
      assert.equal(
        r.channels.made.length,
        4,
        "not one new connection per channel after the cut",
      );
      assert.ok(
        after <= bound,
        `${after} bytes carried after the cut, over ${bound} (${left} pages left, ${r.dirtiedAfter} dirtied)`,
      );
    }
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "channel resume: one channel's connection cut mid-round resumes; the migration ends verified, and the wire bytes after the cut are at most what was left to send plus what was dirtied",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => channelCut("plain"),
});

Deno.test({
  name:
    "channel resume: over TLS, a channel's connection cut mid-round resumes and verifies, its channels' TLS read buffers reserved once in the receiver's budget",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => channelCut("tls"),
});

Deno.test({
  name:
    "channel resume: a channel's connection cut, and no reconnection until the receiver's grace passed: the RESUME is refused, the source fails naming why, the VM runs on and the receiver discards",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using vm = await SimVm.create({
      memoryBytes: MiB(8),
      workload: "unique",
      seed: 6,
      dirtyRate: 200,
    });
    // The receiver keeps a lost session 200 ms, whatever the policy asks.
    const receiver = await serveAll(INSECURE_PLAIN, { maxGraceMs: 200 });
    const channels = channelProxies((channel, nth) =>
      channel === 0 && nth === 0
        ? { kind: "cut", direction: "up", afterBytes: MiB(1) }
        : []
    );
    const to = { hostname: "127.0.0.1", port: receiver.port };
    const opened: ChannelConn[] = [];
    try {
      const conn = await connectChannel(to, INSECURE_PLAIN);
      opened.push(conn);
      const failed = await withDeadline(
        migrate({
          plan: resumingPlan("chan-resume-late"),
          source: vm,
          conn,
          // The link stays down until the receiver gave the session up.
          reconnect: async () => {
            await receiver.session;
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
      assert.ok(
        channels.made[0].proxy.fired,
        "channel 0's connection was never cut",
      );
      assert.ok(
        failed instanceof MigrationError,
        `the source did not fail: ${failed}`,
      );
      assert.match(
        failed.message,
        // (Unpaced, the source may learn of the cut in a later round.)
        /Cannot resume the migration after the link was lost in round [0-2] .*it has ended: .*no RESUME came within the session's grace of 200 ms.*the VM runs on at the source/,
      );
      assert.equal(vm.paused, false, "the VM was left paused");
      const received = await receiver.session;
      assert.ok(
        received instanceof MigrationError,
        `the receiver did not fail: ${received}`,
      );
      assert.match(
        received.message,
        /Channel 0's connection .*no RESUME came within the session's grace/,
      );
      assert.equal(
        receiver.sink!.state,
        "discarded",
        "the receiver did not discard",
      );
      assert.equal(
        receiver.refused.length,
        1,
        "the late RESUME was not refused once",
      );
    } finally {
      for (const c of opened) closeQuietly(c);
      await channels.close();
      await receiver.close();
    }
  },
});

Deno.test({
  name:
    "channel resume: a blackholed channel connection (nothing forwarded, nothing closed) is given up at the source's reply deadline and resumed; the migration ends verified",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // A cold module cache (the first Workers type-check for seconds) does
    // not count against the short reply deadline: the receiver says it is
    // starting (STARTING), and the source's Workers load before the JOIN
    // deadline starts.
    const r = await runCut({
      listen: INSECURE_PLAIN,
      connect: INSECURE_PLAIN,
      // Channel 1's share of round 0 (24 MiB) is more than the socket
      // buffers between the source and the proxy hold: its writes stall.
      memoryBytes: MiB(48),
      replyMs: 3000,
      channelFault: (channel, nth) =>
        channel === 1 && nth === 0
          ? { kind: "blackhole", direction: "up", afterBytes: MiB(2) }
          : [],
    });
    assertResumedOnce(r, r.sink);
    assert.match(
      r.report.resumes![0].reason,
      /Channel 1's connection took no bytes for 3000 ms \(the reply deadline\)/,
      "the resume does not say channel 1's connection stalled",
    );
  },
});
