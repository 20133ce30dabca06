import assert from "node:assert/strict";
import process from "node:process";
import {
  cpuBudget,
  isVcpuThread,
  machineBusyTicks,
  sampleCpu,
} from "./cpu_budget.ts";

Deno.test("machineBusyTicks: user, nice, system, irq, softirq and steal; not idle, iowait or guest", () => {
  // user nice system idle iowait irq softirq steal guest guest_nice
  const stat =
    "cpu  100 2 30 5000 40 1 7 3 90 0\ncpu0 50 1 15 2500 20 0 3 1 45 0\n";
  assert.equal(machineBusyTicks(stat), 100 + 2 + 30 + 1 + 7 + 3);
});

Deno.test("machineBusyTicks: a first line that is not the cpu total is refused, naming it", () => {
  assert.throws(
    () => machineBusyTicks("intr 12 3 4\n"),
    /first line is "intr 12 3 4"/,
  );
});

Deno.test("isVcpuThread: QEMU's vCPU threads, not its others", () => {
  assert.ok(isVcpuThread("CPU 0/TCG"));
  assert.ok(isVcpuThread("CPU 12/KVM"));
  assert.ok(!isVcpuThread("live_migration"));
  assert.ok(!isVcpuThread("qemu-system-x86"));
  assert.ok(!isVcpuThread("CPU x/TCG"));
});

Deno.test("sampleCpu: work done by a process shows in the machine's time and in that process's, not as a guest's; a pid that is gone counts 0", async () => {
  // This test process stands for a QEMU without vCPU threads.
  const before = await sampleCpu(Deno.pid, 2 ** 22 + 1);
  // Busy until this process has spent 0.2 CPU-s (however loaded the
  // machine is), by its own clock, not the counters under test.
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const c0 = cpuMs();
  const t0 = performance.now();
  let x = 0;
  while (cpuMs() - c0 < 200 && performance.now() - t0 < 20_000) {
    for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + 1);
  }
  const after = await sampleCpu(Deno.pid, 2 ** 22 + 1);
  assert.ok(x > 0);
  const b = cpuBudget(before, after);
  assert.ok(
    b.machineS >= 0.15,
    `0.2 CPU-s of busy loop shows: ${b.machineS} s`,
  );
  assert.ok(b.qemuS >= 0.15, `and is this process's: ${b.qemuS} s`);
  assert.equal(
    b.qemuSourceS,
    b.qemuS,
    "the source's, as it is the source here",
  );
  assert.equal(b.guestS, 0);
  // (each figure rounded to a tick on its own)
  assert.ok(b.otherS <= Math.max(0, b.machineS - b.qemuS) + 0.011);
  const gone = cpuBudget(
    await sampleCpu(null, 2 ** 22 + 1),
    await sampleCpu(null, 2 ** 22 + 1),
  );
  assert.equal(gone.qemuS, 0);
});
