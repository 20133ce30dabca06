/**
 * Resumable migrations over real loopback connections through the fault
 * proxy: a link cut during pre-copy resumes on a new connection to the same
 * receiver session and ends verified, sending no more than what the
 * receiver lacked plus what the guest dirtied meanwhile; a resume after the
 * grace is refused and the source fails with the VM running; a RESUME with
 * a wrong session id or from another source identity is refused and leaves
 * the session alone; a cut during stop-and-copy still aborts, and the
 * receiver ends at once.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { codec, compile, policy, when } from "../dsl/mod.ts";
import { MiB } from "../dsl/units.ts";
import { faultProxy } from "./_fault_proxy.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import { MigrationError } from "./errors.ts";
import type { Plan } from "./plan.ts";
import { migrate } from "./precopy.ts";
import {
  receiveMigration,
  type ReceiveResult,
  type ReceiverEvent,
  ResumeRegistry,
} from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import {
  connectChannel,
  connectSecurityFromDir,
  listenChannel,
  listenSecurityFromDir,
} from "./transport/secure/mod.ts";
import { credentialsDir } from "./transport/secure/_testing.ts";
import { FrameReader } from "./wire/frame_reader.ts";
import { FrameType } from "./wire/frame.ts";
import { FrameWriter } from "./wire/frame_writer.ts";
import { decodeError, encodeResume } from "./wire/messages.ts";
import type { WireConn } from "./wire/duplex.ts";

const DEADLINE_MS = 90_000;
const PAGE = 4096;

/** A receiver that serves every connection with one resume registry. */
function serveAll(
  accept: () => Promise<WireConn & { close(): void; identity?: string | null }>,
  options: { maxGraceMs?: number; onEvent?: (e: ReceiverEvent) => void } = {},
) {
  const registry = new ResumeRegistry({ maxGraceMs: options.maxGraceMs });
  let sink: SimMemorySink | null = null;
  let settle!: (r: ReceiveResult | Error) => void;
  /** The session's own outcome (not a joined connection's). */
  const session = new Promise<ReceiveResult | Error>((r) => settle = r);
  const joined: ReceiveResult[] = [];
  const refused: Error[] = [];
  let first = true;
  const loop = (async () => {
    for (;;) {
      let conn;
      try {
        conn = await accept();
      } catch {
        return; // listener closed
      }
      const original = first;
      first = false;
      receiveMigration(conn, {
        frameTimeoutMs: 30_000,
        resume: { registry, identity: conn.identity ?? null },
        onEvent: options.onEvent,
        createSink: (h) =>
          sink = new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
      }).then(
        (r) => {
          if (r.joined) joined.push(r);
          else settle(r);
        },
        (e: Error) => {
          if (original) settle(e);
          else refused.push(e);
        },
      ).finally(() => {
        try {
          closeQuietly(conn);
        } catch { /* closed */ }
      });
    }
  })();
  return {
    registry,
    session,
    joined,
    refused,
    loop,
    get sink() {
      return sink;
    },
  };
}

function resumingPlan(name: string, grace = 20_000): Plan {
  return compile(
    policy(name).codec([codec.raw()]).channels(2)
      .switchover(when.rounds(3))
      .resume({ grace, attempts: 3 })
      .deadlines({ reply: 10_000, downtime: 30_000 }),
  );
}

Deno.test({
  name:
    "resume: a link cut mid-round resumes on the same session and ends verified; the bytes after the cut are at most what the receiver lacked plus what was dirtied meanwhile",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const memoryBytes = MiB(16);
    const pages = memoryBytes / PAGE;
    // Every page differs and nothing compresses: a resend of what the
    // receiver already holds would show in the bytes.
    await using vm = await SimVm.create({
      memoryBytes,
      workload: "unique",
      seed: 5,
      dirtyRate: 200,
    });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    // The cut: 40% into round 0, which sends every page once.
    const cutAt = Math.floor(0.4 * memoryBytes);
    const proxy = faultProxy((listener.addr as Deno.NetAddr).port, {
      kind: "cut",
      direction: "up",
      afterBytes: cutAt,
    });
    let parked: Extract<ReceiverEvent, { type: "parked" }> | null = null;
    let pausedWhileParked: boolean | null = null;
    const receiver = serveAll(() => listener.accept(), {
      onEvent: (e) => {
        if (e.type === "parked") {
          parked = e;
          pausedWhileParked = vm.paused;
        }
      },
    });
    // Pages the guest dirtied from the cut on, as the source's dirty log
    // reports them (every sync after the cut, the pause's included).
    let dirtiedAfter = 0;
    let paused: Uint8Array | null = null;
    const source = driverOf(vm, {
      syncDirty: (out: Uint32Array) => {
        const n = vm.syncDirty(out);
        if (proxy.fired) dirtiedAfter += n;
        return n;
      },
      pause: async () => {
        await vm.pause();
        paused = vm.memory.slice();
      },
    });
    let reconnects = 0;
    try {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
      });
      const report = await withDeadline(
        migrate({
          plan: resumingPlan("resume-cut"),
          source,
          conn,
          reconnect: () => {
            reconnects++;
            return Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
          },
        }),
        "the resumed migration",
        DEADLINE_MS,
      );
      closeQuietly(conn);
      const received = await withDeadline(
        receiver.session,
        "the receiver",
        DEADLINE_MS,
      );
      assert.ok(proxy.fired, "the link was never cut");
      assert.ok(report.verified, report.outcome);
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(received.verified, true);
      assert.equal(received.resumes, 1);
      assert.equal(receiver.joined.length, 1, "one connection resumed it");
      assert.ok(
        Buffer.from(receiver.sink!.memory).equals(Buffer.from(paused!)),
        "the destination differs from the source at the pause",
      );
      assert.equal(receiver.sink!.state, "committed");
      // The VM ran on while the link was down.
      assert.equal(pausedWhileParked, false);
      assert.equal(reconnects, 1);
      assert.equal(report.resumes?.length, 1);
      assert.equal(report.resumes![0].round, 0);

      // What the receiver lacked at the cut: round 0 sends every page once,
      // and it held the pages it said it applied.
      const p = parked as Extract<ReceiverEvent, { type: "parked" }> | null;
      assert.ok(p, "the receiver never parked the session");
      const held = p.channelPages.reduce((a, b) => a + b, 0);
      assert.ok(held > 0 && held < pages, `held ${held} of ${pages} pages`);
      const left = pages - held;
      assert.equal(report.resumes![0].pagesMissing, left);
      // Pages, exactly: those applied after the resume.
      const pagesAfter = received.pagesApplied - held;
      assert.ok(
        pagesAfter <= left + dirtiedAfter,
        `${pagesAfter} pages sent after the cut, more than the ${left} left plus ${dirtiedAfter} dirtied`,
      );
      // Bytes, counted by the proxy on the resumed connection: each page
      // costs its 4096 bytes plus at most 16 of BATCH framing (a pfn run and
      // a claim); 64 KiB covers the frames that carry no page (RESUME,
      // CODEC, ROUND_END, FINAL, END) and the batch headers.
      const [before, after] = proxy.connections;
      assert.equal(proxy.connections.length, 2);
      assert.equal(before.up, cutAt);
      const bound = (left + dirtiedAfter) * (PAGE + 16) + 65_536;
      assert.ok(
        after.up <= bound,
        `${after.up} bytes after the cut, over ${bound} (${left} pages left, ${dirtiedAfter} dirtied)`,
      );
      // And not a fresh start: the round after the resume leaves out the
      // pages the receiver held (how many the guest dirtied meanwhile
      // depends on the machine's speed, so the bytes are bounded above).
      assert.ok(
        report.resumes![0].pagesToSend < pages,
        `${report.resumes![0].pagesToSend} pages resent of ${pages}`,
      );
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
    }
  },
});

Deno.test({
  name:
    "resume: a blackholed link (nothing forwarded, nothing closed) is given up at the source's reply deadline; the RESUME takes the session over from the connection the receiver still holds (half-open), and the migration ends verified within the bytes bound",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using vm = await SimVm.create({
      // Larger than the socket buffers on both sides of the proxy can
      // hold, so the source's writes stall while it still sends round 0.
      memoryBytes: MiB(48),
      workload: "unique",
      seed: 9,
      dirtyRate: 200,
    });
    const pages = MiB(48) / PAGE;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    // The proxy stops forwarding both ways on the first connection and
    // closes nothing: the receiver still holds it when the RESUME comes, on
    // the second, which is relayed as it is (and counted).
    const proxy = faultProxy(port, [{
      kind: "blackhole",
      direction: "up",
      afterBytes: MiB(4),
    }, null]);
    const parked: Extract<ReceiverEvent, { type: "parked" }>[] = [];
    const receiver = serveAll(() => listener.accept(), {
      onEvent: (e) => {
        if (e.type === "parked") parked.push(e);
      },
    });
    let paused: Uint8Array | null = null;
    let dirtiedAfter = 0;
    const source = driverOf(vm, {
      syncDirty: (out: Uint32Array) => {
        const n = vm.syncDirty(out);
        if (proxy.fired) dirtiedAfter += n;
        return n;
      },
      pause: async () => {
        await vm.pause();
        paused = vm.memory.slice();
      },
    });
    try {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
      });
      const report = await withDeadline(
        migrate({
          plan: compile(
            policy("resume-blackhole").codec([codec.raw()]).channels(2)
              .switchover(when.rounds(2))
              .resume({ grace: 20_000, attempts: 3 })
              // A stalled write is given up after 1.5 s.
              .deadlines({ reply: 1500, downtime: 30_000 }),
          ),
          source,
          conn,
          reconnect: () =>
            Deno.connect({ hostname: "127.0.0.1", port: proxy.port }),
        }),
        "the migration over a blackholed link",
        DEADLINE_MS,
      );
      closeQuietly(conn);
      const received = await withDeadline(
        receiver.session,
        "the receiver",
        DEADLINE_MS,
      );
      assert.ok(proxy.fired, "the link never went dark");
      assert.ok(report.verified, report.outcome);
      assert.equal(report.resumes?.length, 1);
      assert.match(
        report.resumes![0].reason,
        /did not complete within 1500 ms/,
      );
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(received.verified, true);
      assert.equal(received.resumes, 1);
      assert.equal(receiver.joined.length, 1, "one RESUME carried it on");
      // The receiver never saw the first connection fail: the RESUME took
      // the session from it.
      assert.equal(receiver.registry.takeovers, 1);
      assert.equal(parked.length, 1, parked.map((p) => p.reason).join("; "));
      assert.match(parked[0].reason, /half-open/);
      assert.equal(receiver.sink!.state, "committed");
      // Bytes on the resumed connection: what the receiver lacked (round 0
      // sends every page once) plus what was dirtied from the fault on.
      const held = parked[0].channelPages.reduce((a, b) => a + b, 0);
      assert.ok(held > 0 && held < pages, `held ${held} of ${pages} pages`);
      const left = pages - held;
      assert.equal(report.resumes![0].pagesMissing, left);
      const [, after] = proxy.connections;
      assert.equal(proxy.connections.length, 2);
      const bound = (left + dirtiedAfter) * (PAGE + 16) + 65_536;
      assert.ok(
        after.up <= bound,
        `${after.up} bytes after the fault, over ${bound} (${left} pages left, ${dirtiedAfter} dirtied)`,
      );
      assert.ok(
        Buffer.from(receiver.sink!.memory).equals(Buffer.from(paused!)),
        "the destination differs from the source at the pause",
      );
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
    }
  },
});

Deno.test({
  name:
    "resume: a second cut, during the round that resends what the first cut lost, resumes again and ends verified; the bytes after it are at most what the receiver lacked then plus what was dirtied meanwhile",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const memoryBytes = MiB(16);
    const pages = memoryBytes / PAGE;
    await using vm = await SimVm.create({
      memoryBytes,
      workload: "unique",
      seed: 11,
      dirtyRate: 200,
    });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    // The first connection is cut 40% into round 0; the second, which
    // carries the RESUME and then the resend round (about 60% of memory),
    // 3 MiB into it; the third is left alone.
    const proxy = faultProxy((listener.addr as Deno.NetAddr).port, [
      {
        kind: "cut",
        direction: "up",
        afterBytes: Math.floor(0.4 * memoryBytes),
      },
      { kind: "cut", direction: "up", afterBytes: MiB(3) },
      null,
    ]);
    const parked: Extract<ReceiverEvent, { type: "parked" }>[] = [];
    const receiver = serveAll(() => listener.accept(), {
      onEvent: (e) => {
        if (e.type === "parked") parked.push(e);
      },
    });
    // Pages dirtied since the last sync before the second cut (the second
    // reconnection follows it, and the resume syncs after reconnecting).
    let dirtiedAfterSecond = 0;
    let secondCut = false;
    let paused: Uint8Array | null = null;
    const source = driverOf(vm, {
      syncDirty: (out: Uint32Array) => {
        const n = vm.syncDirty(out);
        if (secondCut) dirtiedAfterSecond += n;
        return n;
      },
      pause: async () => {
        await vm.pause();
        paused = vm.memory.slice();
      },
    });
    let reconnects = 0;
    try {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
      });
      const report = await withDeadline(
        migrate({
          plan: resumingPlan("resume-twice"),
          source,
          conn,
          reconnect: () => {
            // The second reconnection follows the second cut: from here on
            // (the resume's own sync included) dirtied pages count.
            if (++reconnects === 2) secondCut = true;
            return Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
          },
        }),
        "the twice resumed migration",
        DEADLINE_MS,
      );
      closeQuietly(conn);
      const received = await withDeadline(
        receiver.session,
        "the receiver",
        DEADLINE_MS,
      );
      assert.ok(report.verified, report.outcome);
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(received.verified, true);
      assert.equal(received.resumes, 2);
      assert.equal(receiver.joined.length, 2, "two connections resumed it");
      assert.equal(reconnects, 2);
      assert.equal(proxy.connections.length, 3);
      assert.equal(receiver.sink!.state, "committed");
      assert.ok(
        Buffer.from(receiver.sink!.memory).equals(Buffer.from(paused!)),
        "the destination differs from the source at the pause",
      );
      // The second cut came in the resend round: the round right after the
      // first resume, before that round ended.
      const [first, second] = report.resumes!;
      assert.equal(report.resumes!.length, 2);
      assert.equal(first.round, 0);
      assert.equal(second.round, 1);
      assert.equal(parked.length, 2);
      const held1 = parked[0].channelPages.reduce((a, b) => a + b, 0);
      const held2 = parked[1].channelPages.reduce((a, b) => a + b, 0);
      assert.equal(first.pagesMissing, pages - held1);
      // What the receiver lacked at the second cut, as the source worked it
      // out, is what it told the receiver to expect in the resend round
      // minus what the receiver says it got of it.
      assert.ok(held2 > held1, `no page of the resend round arrived`);
      assert.ok(
        held2 - held1 < first.pagesToSend,
        `the resend round (${first.pagesToSend} pages) was not cut: ${
          held2 - held1
        } arrived`,
      );
      assert.equal(second.pagesMissing, first.pagesToSend - (held2 - held1));
      // Bytes on the third connection: pages the receiver lacked at the
      // second cut plus those dirtied since, each 4096 bytes plus at most
      // 16 of framing, and 64 KiB for the frames that carry no page.
      const third = proxy.connections[2];
      const bound = (second.pagesMissing + dirtiedAfterSecond) * (PAGE + 16) +
        65_536;
      assert.ok(
        third.up <= bound,
        `${third.up} bytes after the second cut, over ${bound} (${second.pagesMissing} pages lacked, ${dirtiedAfterSecond} dirtied)`,
      );
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
    }
  },
});

Deno.test({
  name:
    "resume: after the grace the receiver has dropped the session: the RESUME is refused, the source fails naming why and the VM runs on",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using vm = await SimVm.create({
      memoryBytes: MiB(8),
      workload: "unique",
      seed: 6,
      dirtyRate: 200,
    });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = faultProxy((listener.addr as Deno.NetAddr).port, {
      kind: "cut",
      direction: "up",
      afterBytes: MiB(3),
    });
    // The receiver keeps a lost session 200 ms, whatever the policy asks.
    const receiver = serveAll(() => listener.accept(), { maxGraceMs: 200 });
    try {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
      });
      const report = await withDeadline(
        migrate({
          plan: resumingPlan("resume-late"),
          source: vm,
          conn,
          // The link stays down until the receiver gave the session up.
          reconnect: async () => {
            await receiver.session;
            return await Deno.connect({
              hostname: "127.0.0.1",
              port: proxy.port,
            });
          },
        }).catch((e: Error) => e),
        "the source",
        DEADLINE_MS,
      );
      closeQuietly(conn);
      assert.ok(report instanceof MigrationError, String(report));
      assert.match(
        report.message,
        /Cannot resume the migration after the link was lost in round 0 .*it has ended: .*no RESUME came within the session's grace of 200 ms.*the VM runs on at the source/,
      );
      assert.equal(vm.paused, false);
      const received = await receiver.session;
      assert.ok(received instanceof MigrationError, String(received));
      assert.match(
        received.message,
        /no RESUME came within the session's grace/,
      );
      assert.equal(receiver.sink!.state, "discarded");
      assert.equal(receiver.refused.length, 1);
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
    }
  },
});

Deno.test({
  name:
    "resume: a RESUME with a wrong session id, or from another authenticated source, is refused and leaves the parked session to its own source, which resumes it over TLS",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await credentialsDir("src-a", ["127.0.0.1"]);
    // Another source the receiver admits too: src-b, by pre-shared key.
    const keyB = crypto.getRandomValues(new Uint8Array(32));
    await using vm = await SimVm.create({
      memoryBytes: MiB(8),
      workload: "unique",
      seed: 7,
      dirtyRate: 200,
    });
    const served = await listenSecurityFromDir(dir, ["src-a", "src-b"]);
    assert.equal(served.kind, "tls");
    const listener = await listenChannel(
      { hostname: "127.0.0.1", port: 0 },
      served.kind === "tls"
        ? { ...served, psk: new Map([...(served.psk ?? []), ["src-b", keyB]]) }
        : served,
    );
    const proxy = faultProxy(listener.addr.port, {
      kind: "cut",
      direction: "up",
      afterBytes: MiB(3),
    });
    let parkedId = "";
    let onParked!: () => void;
    const parked = new Promise<void>((r) => onParked = r);
    const receiver = serveAll(() => listener.accept(), {
      onEvent: (e) => {
        if (e.type === "parked") {
          parkedId = e.session;
          onParked();
        }
      },
    });
    const at = { hostname: "127.0.0.1", port: proxy.port };
    const asA = await connectSecurityFromDir(dir);
    assert.equal(asA.kind, "tls");
    const asB: typeof asA = asA.kind === "tls"
      ? { kind: "tls", ca: asA.ca, psk: { identity: "src-b", key: keyB } }
      : asA;
    /** A RESUME by hand; returns the receiver's ERROR message. */
    const hostileResume = async (
      security: typeof asA,
      session: string,
    ): Promise<string> => {
      const conn = await connectChannel(at, security);
      try {
        await new FrameWriter(conn.writable).write(
          FrameType.RESUME,
          0,
          encodeResume({ session }),
        );
        const frame = await new FrameReader(conn.readable).next();
        assert.equal(frame?.type, FrameType.ERROR);
        return decodeError(frame!.payload).message;
      } finally {
        closeQuietly(conn);
      }
    };
    const refusals: string[] = [];
    try {
      const conn = await connectChannel(at, asA);
      const report = await withDeadline(
        migrate({
          plan: resumingPlan("resume-tls"),
          source: vm,
          conn,
          reconnect: async () => {
            await parked;
            // Another identity with the right id, the right identity with a
            // wrong one:
            refusals.push(await hostileResume(asB, parkedId));
            refusals.push(
              await hostileResume(
                asA,
                parkedId.replace(/^./, (c) => c === "0" ? "1" : "0"),
              ),
            );
            return await connectChannel(at, asA);
          },
        }),
        "the resumed migration",
        DEADLINE_MS,
      );
      closeQuietly(conn);
      assert.ok(report.verified, report.outcome);
      assert.equal(report.resumes?.length, 1);
      assert.equal(refusals.length, 2);
      assert.match(
        refusals[0],
        /^No resumable session [0-9a-f]{32} for source "src-b" on this receiver$/,
      );
      assert.match(
        refusals[1],
        /^No resumable session [0-9a-f]{32} for source "src-a" on this receiver$/,
      );
      const received = await receiver.session;
      assert.ok(!(received instanceof Error), String(received));
      assert.equal(received.verified, true);
      assert.equal(received.resumes, 1);
      assert.equal(receiver.refused.length, 2);
      assert.ok(
        Buffer.from(receiver.sink!.memory).equals(Buffer.from(vm.memory)),
      );
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "resume: a link cut during stop-and-copy, after FINAL, is not resumed: the source aborts with the VM resumed, the receiver discards at once",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await using vm = await SimVm.create({
      memoryBytes: MiB(4),
      workload: "unique",
      seed: 8,
      dirtyRate: 200,
    });
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    // Cut the link at READY's first byte: FINAL came, the VM is paused.
    const plan = resumingPlan("resume-final");
    const proxy = faultProxy((listener.addr as Deno.NetAddr).port, {
      kind: "cut",
      direction: "down",
      afterBytes: 0,
      frameType: FrameType.READY,
    });
    const receiver = serveAll(() => listener.accept());
    let reconnects = 0;
    try {
      const conn = await Deno.connect({
        hostname: "127.0.0.1",
        port: proxy.port,
      });
      const report = await withDeadline(
        migrate({
          plan,
          source: vm,
          conn,
          reconnect: () => {
            reconnects++;
            return Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
          },
        }).catch((e: Error) => e),
        "the source",
        DEADLINE_MS,
      );
      const failedAt = performance.now();
      closeQuietly(conn);
      assert.ok(proxy.fired, "the link was never cut");
      assert.ok(report instanceof MigrationError, String(report));
      assert.match(report.message, /during stop-and-copy \(round \d+\)/);
      // At most the connection that tells the receiver of the abort (past
      // FINAL it has failed the session already: that RESUME is refused).
      assert.ok(reconnects <= 1, `${reconnects} reconnections`);
      assert.equal(receiver.joined.length, 0, "a RESUME was taken");
      assert.equal(vm.paused, false, "the VM was left paused");
      const received = await withDeadline(
        receiver.session,
        "the receiver",
        DEADLINE_MS,
      );
      assert.ok(received instanceof Error, "the receiver did not fail");
      assert.match(received.message, /Connection closed before END/);
      assert.ok(
        performance.now() - failedAt < 5_000,
        "the receiver held the session on (grace 20 s)",
      );
      assert.notEqual(receiver.sink!.state, "committed");
    } finally {
      await proxy.close();
      listener.close();
      await receiver.loop;
    }
  },
});

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* closed with the migration's link */ }
}
