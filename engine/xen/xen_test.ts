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
