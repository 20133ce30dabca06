import assert from "node:assert/strict";
import { XenError } from "../../ffi/xen/errors.ts";
import { XgsPolicy } from "../../ffi/xen/xenguest.ts";
import type { Decision, RoundStats } from "../plan.ts";
import {
  countDirty,
  type LogDirtyOps,
  measureDirtyRate,
} from "./dirty_rate.ts";
import { XenSaveWorker } from "./save.ts";
import { probeDowntime } from "./downtime_probe.ts";
import { type DomainInfo, DomInfoFlag } from "../../ffi/xen/xenctrl.ts";
import { loadPolicy } from "../../dsl/mod.ts";

/** libxc 4.17's call sequence of precopy_policy for `dirty` pages found after each round. */
function libxcCalls(p2m: number, dirty: number[]) {
  const calls = [{ iteration: 0, totalWritten: 0, dirtyCount: p2m }];
  let written = 0;
  let last = p2m;
  for (let i = 0; i < dirty.length; i++) {
    written += last;
    calls.push({ iteration: i + 1, totalWritten: written, dirtyCount: -1 });
    calls.push({
      iteration: i + 1,
      totalWritten: written,
      dirtyCount: dirty[i],
    });
    last = dirty[i];
  }
  return calls;
}

const onDom0 = (() => {
  try {
    Deno.statSync("/dev/xen/privcmd");
    return true;
  } catch {
    return false;
  }
})();
const haveXen = (() => {
  try {
    Deno.dlopen("libxenctrl.so.4.17", {}).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test("the save worker's precopy_policy answers from a TS plan through a fake C caller", async () => {
  const seen: RoundStats[] = [];
  const plan = {
    name: "test",
    maxRounds: 3,
    decide: (s: RoundStats): Decision => {
      seen.push(s);
      return s.dirtyPages < 50
        ? "switchover"
        : s.round > 5
        ? "abort"
        : "continue";
    },
  };
  const w = new XenSaveWorker({ plan, memoryBytes: 1 << 30 });
  const answers = await w.simulate([
    { iteration: 0, totalWritten: 0, dirtyCount: 262144 },
    { iteration: 1, totalWritten: 262144, dirtyCount: -1 },
    { iteration: 1, totalWritten: 262144, dirtyCount: 5000 },
    { iteration: 2, totalWritten: 267144, dirtyCount: -1 },
    { iteration: 2, totalWritten: 267144, dirtyCount: 20 },
    { iteration: 3, totalWritten: 267164, dirtyCount: -1 },
    { iteration: 9, totalWritten: 267164, dirtyCount: 999 },
  ]);
  w.terminate();
  assert.deepEqual(answers, [
    XgsPolicy.CONTINUE_PRECOPY,
    XgsPolicy.CONTINUE_PRECOPY,
    XgsPolicy.CONTINUE_PRECOPY,
    XgsPolicy.CONTINUE_PRECOPY,
    XgsPolicy.STOP_AND_COPY,
    XgsPolicy.STOP_AND_COPY, // iteration 3 >= maxRounds
    XgsPolicy.ABORT,
  ]);
  assert.deepEqual(seen.map((s) => [s.round, s.dirtyPages]), [
    [0, 262144],
    [1, 5000],
    [2, 20],
    [9, 999],
  ]);
  assert.equal(seen[1].bytesSent, 262144 * 4096);
  assert.equal(seen[1].memoryBytes, 1 << 30);
  assert.equal(w.calls.length, 7);
});

Deno.test("example policies as libxc's precopy_policy: three-rounds stops after round 2, converge while the dirty set shrinks", async () => {
  const three = await loadPolicy(
    new URL("../../examples/policies/three_rounds.ts", import.meta.url)
      .pathname,
  );
  const w = new XenSaveWorker({ plan: three, memoryBytes: 128 << 20 });
  const a = await w.simulate(libxcCalls(32768, [900, 800, 700]));
  w.terminate();
  const { CONTINUE_PRECOPY: C, STOP_AND_COPY: S } = XgsPolicy;
  // decisions at iterations 0 and 1 continue; round 2 is sent live, then stop
  assert.deepEqual(a.slice(0, 5), [C, C, C, C, S]);

  const conv = await loadPolicy(
    new URL("../../examples/policies/converge.ts", import.meta.url).pathname,
  );
  const w2 = new XenSaveWorker({ plan: conv, memoryBytes: 128 << 20 });
  const b = await w2.simulate(libxcCalls(32768, [4000, 1000, 950]));
  w2.terminate();
  // 4000 and 1000 pages shrink by > 10%, 950 does not: switch over there
  assert.deepEqual(b, [C, C, C, C, C, C, S]);
  const w3 = new XenSaveWorker({ plan: conv, memoryBytes: 128 << 20 });
  const c = await w3.simulate(libxcCalls(32768, [4000, 200]));
  w3.terminate();
  assert.deepEqual(c, [C, C, C, C, S]); // 200 pages < 1 MiB
});

Deno.test({
  name: "XenSaveWorker.save off a dom0 fails with the dom0 error",
  ignore: onDom0 || !haveXen,
  async fn() {
    const w = new XenSaveWorker({
      plan: { name: "p", maxRounds: 5, decide: () => "continue" },
    });
    await assert.rejects(
      w.save({ domid: 1, ioFd: 1 }),
      (e: unknown) =>
        e instanceof XenError &&
        /^Not a Xen dom0: cannot open \/dev\/xen\/privcmd/.test(e.message),
    );
    w.terminate();
  },
});

Deno.test("countDirty counts bits", () => {
  const b = new Uint8Array(13);
  b[0] = 0b1011;
  b[5] = 0xff;
  b[12] = 0x80;
  assert.equal(countDirty(b), 12);
});

Deno.test("measureDirtyRate: CLEAN, wait, CLEAN, count; log-dirty turned off again", async () => {
  const calls: string[] = [];
  const bits = new Uint8Array(16);
  let cleans = 0;
  const ops: LogDirtyOps = {
    maximumGpfn: () => 127,
    shadowControl: (_d, op) => void calls.push(`shadow ${op}`),
    allocDirtyBitmap: (pfns) => {
      calls.push(`alloc ${pfns}`);
      return { bits, free: () => void calls.push("free") };
    },
    logDirty: (_d, op) => {
      calls.push(`logdirty ${op}`);
      bits.fill(0);
      if (++cleans === 2) bits.set([0xff, 0x0f]);
      return { dirtyCount: 0, faultCount: 0 };
    },
  };
  const r = await measureDirtyRate(3, { intervalMs: 20, ops });
  assert.equal(r.dirtyPages, 12);
  assert.equal(r.pfns, 128);
  assert.ok(r.bytesPerSecond > 0);
  assert.deepEqual(calls, [
    "shadow 2",
    "alloc 128",
    "logdirty 11",
    "logdirty 11",
    "free",
    "shadow 0",
  ]);
});

Deno.test({
  name: "measureDirtyRate off a dom0 fails with the dom0 error",
  ignore: onDom0 || !haveXen,
  async fn() {
    await assert.rejects(
      measureDirtyRate(1, { intervalMs: 1 }),
      /^XenError|Not a Xen dom0/,
    );
  },
});

function dom(
  domid: number,
  state: "running" | "paused" | "suspended",
): DomainInfo {
  const flags = state === "paused"
    ? DomInfoFlag.paused
    : state === "suspended"
    ? DomInfoFlag.shutdown | (2 << 16)
    : DomInfoFlag.running;
  return {
    domid,
    flags,
    hvm: true,
    paused: state === "paused",
    dying: false,
    shutdown: state === "suspended",
    shutdownReason: state === "suspended" ? 2 : 0,
    totPages: 0,
    maxPages: 0,
    cpuTimeNs: 0n,
    onlineVcpus: 1,
  };
}

Deno.test("probeDowntime: from the source's suspend to the incoming domain running unpaused", async () => {
  // each poll advances the clock 10 ms
  const script: DomainInfo[][] = [
    [dom(0, "running"), dom(7, "running")],
    [dom(0, "running"), dom(7, "running"), dom(8, "paused")], // restore under way
    [dom(0, "running"), dom(7, "suspended"), dom(8, "paused")], // t=20: suspended
    [dom(0, "running"), dom(7, "suspended"), dom(8, "paused")],
    [dom(0, "running"), dom(7, "suspended"), dom(8, "paused")],
    [dom(0, "running"), dom(7, "suspended"), dom(8, "running")], // t=50: runs
  ];
  let i = 0;
  let t = 0;
  const r = await probeDowntime(7, {
    list: () => script[Math.min(i++, script.length - 1)],
    now: () => (t += 10) - 10,
    sleep: () => Promise.resolve(),
  });
  assert.deepEqual(
    {
      newDomid: r.newDomid,
      downtimeMs: r.downtimeMs,
      outcome: r.outcome,
      polls: r.polls,
    },
    { newDomid: 8, downtimeMs: 30, outcome: "resumed", polls: 6 },
  );

  // a cancelled migration: the source runs again
  const back: DomainInfo[][] = [
    [dom(7, "suspended")],
    [dom(7, "running")],
  ];
  let j = 0;
  const r2 = await probeDowntime(7, {
    list: () => back[Math.min(j++, back.length - 1)],
    sleep: () => Promise.resolve(),
  });
  assert.equal(r2.outcome, "source-resumed");
  assert.equal(r2.newDomid, null);

  // nothing happens: timeout
  let t3 = 0;
  const r3 = await probeDowntime(7, {
    list: () => [dom(7, "running")],
    now: () => (t3 += 100),
    timeoutMs: 1000,
    sleep: () => Promise.resolve(),
  });
  assert.equal(r3.outcome, "timeout");
  assert.equal(r3.downtimeMs, null);
});
