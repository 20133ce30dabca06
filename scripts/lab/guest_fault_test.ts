import assert from "node:assert/strict";
import {
  guestFailure,
  heartbeats,
  retryingTcgFaults,
  TcgGuestFault,
} from "./guest_fault.ts";

Deno.test("guest_fault: heartbeats reads the serial heartbeat uptimes", () => {
  const log =
    "hakobu: network up\nhakobu: alive uptime=3.10\nnoise\nhakobu: alive uptime=5.12\n";
  assert.deepEqual(heartbeats(log), [3.1, 5.12]);
  assert.deepEqual(heartbeats("nothing here\n"), []);
});

/**
 * A serial log file holding `log`, and guestFailure() over it with a QMP
 * stub answering `status` (watching 10 ms unless told); the file goes when
 * the scene is disposed.
 */
async function scene(status: string | Error, log: string) {
  const logPath = await Deno.makeTempFile({ suffix: ".log" });
  await Deno.writeTextFile(logPath, log);
  const qmp = {
    execute: (cmd: string) => {
      assert.equal(cmd, "query-status");
      return status instanceof Error
        ? Promise.reject(status)
        : Promise.resolve({ status, running: status === "running" });
    },
  } as Parameters<typeof guestFailure>[0]["qmp"];
  return {
    logPath,
    failure: (
      answer: string,
      more: { streamIntact: boolean; watchMs?: number; extra?: string },
    ) =>
      guestFailure({ answer, guest: { logPath }, qmp, watchMs: 10, ...more }),
    [Symbol.asyncDispose]: () => Deno.remove(logPath),
  };
}

Deno.test("guest_fault: an oops after an intact stream is a TcgGuestFault", async () => {
  await using s = await scene(
    "running",
    "hakobu: alive uptime=9.0\nBUG: kernel NULL pointer dereference, address: 0\n",
  );
  const e = await s.failure("no answer", { streamIntact: true });
  assert.ok(e instanceof TcgGuestFault);
  assert.match(e.message, /the guest kernel crashed/);
  assert.match(e.message, /BUG: kernel NULL pointer/);
});

Deno.test("guest_fault: a panicked guest whose QEMU quit (-no-reboot) after an intact stream is a TcgGuestFault", async () => {
  await using s = await scene(
    new Error("QMP connection closed"),
    "BUG: IRQ stack guard page was hit\nKernel panic - not syncing\n",
  );
  const e = await s.failure("no answer: fetch failed", { streamIntact: true });
  assert.ok(e instanceof TcgGuestFault);
  assert.match(e.message, /crashed; destination QEMU no answer/);
  // without the intact stream it is a plain failure
  const plain = await s.failure("no answer: fetch failed", {
    streamIntact: false,
  });
  assert.ok(!(plain instanceof TcgGuestFault));
});

Deno.test("guest_fault: a guest whose heartbeat advances is running but silent", async () => {
  await using s = await scene("running", "hakobu: alive uptime=9.0\n");
  const beat = setTimeout(
    () =>
      Deno.writeTextFileSync(s.logPath, "hakobu: alive uptime=11.0\n", {
        append: true,
      }),
    20,
  );
  const e = await s.failure("no answer: timeout", {
    streamIntact: true,
    watchMs: 200,
  });
  clearTimeout(beat);
  assert.ok(e instanceof TcgGuestFault);
  assert.match(e.message, /guest runs \(serial heartbeat at uptime 11 s\)/);
});

Deno.test("guest_fault: a hung guest, but the stream not known intact, is a plain failure", async () => {
  await using s = await scene(
    "running",
    "hakobu: alive uptime=9.5\nlast words\n",
  );
  const e = await s.failure("bad keys=3/1000", {
    streamIntact: false,
    extra: "receiver: null",
  });
  assert.ok(!(e instanceof TcgGuestFault));
  assert.match(e.message, /the guest hangs .*the last at uptime 9.5 s/);
  assert.match(e.message, /receiver: null/);
  // the heartbeat is filtered out of the log tail, the rest kept
  assert.match(e.message, /serial log:\nlast words/);
});

Deno.test("guest_fault: a destination QEMU that is not running, its guest not crashed, is a plain failure", async () => {
  for (const status of ["paused", new Error("QMP closed")]) {
    await using s = await scene(status, "");
    const e = await s.failure("no answer", { streamIntact: true });
    assert.ok(!(e instanceof TcgGuestFault), String(status));
    assert.match(
      e.message,
      status instanceof Error ? /QEMU no answer \(.*QMP closed/ : /QEMU paused/,
    );
  }
});

Deno.test("guest_fault: retryingTcgFaults retries only TcgGuestFault, up to LAB_ATTEMPTS", async () => {
  let calls = 0;
  const warn = console.warn;
  console.warn = () => {};
  try {
    assert.equal(
      await retryingTcgFaults(() => {
        calls++;
        if (calls < 2) throw new TcgGuestFault("crashed");
        return Promise.resolve("ok");
      }),
      "ok",
    );
    assert.equal(calls, 2);
    calls = 0;
    await assert.rejects(
      retryingTcgFaults(() => {
        calls++;
        throw new Error("tunnel broke");
      }),
      /tunnel broke/,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      retryingTcgFaults(() => {
        calls++;
        throw new TcgGuestFault("always");
      }),
      TcgGuestFault,
    );
    assert.equal(calls, 3); // LAB_ATTEMPTS' default
  } finally {
    console.warn = warn;
  }
});
