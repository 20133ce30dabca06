import assert from "node:assert/strict";
import { hex } from "../digest.ts";
import { sleep } from "./_testing.ts";
import { SimError } from "./errors.ts";
import { SimVm } from "./sim_vm.ts";
import { workloadNames } from "./workloads/registry.ts";

function assertSimError(
  field: string,
  pattern: RegExp,
): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof SimError, `not a SimError: ${e}`);
    assert.equal(e.field, field);
    assert.match(e.message, pattern);
    return true;
  };
}

Deno.test("SimVm: bad options are rejected with clear errors", async () => {
  await assert.rejects(
    SimVm.create({ memoryBytes: 1 << 20, workload: "foo" }),
    assertSimError(
      "workload",
      /^Unknown workload "foo": known workloads are "idle"/,
    ),
  );
  for (const memoryBytes of [0, -4096, 1000, 4097, 1.5 * 4096, NaN]) {
    await assert.rejects(
      SimVm.create({ memoryBytes, workload: "idle" }),
      assertSimError(
        "memoryBytes",
        /^Invalid memory size ".*": expected a positive multiple of 4096 bytes$/,
      ),
    );
  }
  await assert.rejects(
    SimVm.create({ memoryBytes: 1 << 20, workload: "idle", dirtyRate: -1 }),
    assertSimError("dirtyRate", /^Invalid dirty rate "-1"/),
  );
  await assert.rejects(
    SimVm.create({ memoryBytes: 1 << 20, workload: "idle", seed: 0.5 }),
    assertSimError("seed", /^Invalid seed "0.5"/),
  );
});

Deno.test("SimVm: describes itself, checks pfns and the sync buffer", async () => {
  await using vm = await SimVm.create({
    memoryBytes: 1 << 20,
    workload: "memcached",
    seed: 3,
  });
  assert.equal(vm.description, "sim:memcached 1.00 MiB seed 3");
  assert.equal(vm.pageSize, 4096);
  assert.equal(vm.pageCount, 256);
  assert.equal(vm.dirtyRate, 2000);
  assert.equal(vm.page(255).length, 4096);
  assert.equal(
    vm.page(1).byteOffset,
    4096,
    "page() must be a view, not a copy",
  );
  assert.throws(
    () => vm.page(256),
    assertSimError("pfn", /^Page "256" out of range: the VM has 256 pages$/),
  );
  assert.throws(() => vm.page(-1), assertSimError("pfn", /out of range/));
  assert.throws(
    () => vm.syncDirty(new Uint32Array(256)),
    assertSimError("startDirtyLog", /not started/),
  );
  await vm.startDirtyLog();
  assert.throws(
    () => vm.syncDirty(new Uint32Array(10)),
    assertSimError("out", /too small "10"/),
  );
  assert.throws(() => vm.setDirtyRate(-5), assertSimError("dirtyRate", /"-5"/));
});

Deno.test("SimVm: initial memory is deterministic from the seed", async () => {
  for (const workload of workloadNames()) {
    const digests: string[] = [];
    for (const seed of [1, 1, 2]) {
      const vm = await SimVm.create({
        memoryBytes: 4 << 20,
        workload,
        seed,
        dirtyRate: 0,
      });
      digests.push(hex((await vm.digest()).ranges));
      await vm.close();
    }
    assert.equal(
      digests[0],
      digests[1],
      `${workload}: same seed, different memory`,
    );
    assert.notEqual(
      digests[0],
      digests[2],
      `${workload}: different seeds, same memory`,
    );
  }
});

Deno.test("SimVm: 8 GiB of memory fits one SharedArrayBuffer", async () => {
  await using vm = await SimVm.create({
    memoryBytes: 8 * 2 ** 30,
    workload: "zero",
    dirtyRate: 0,
  });
  assert.equal(vm.pageCount, 2 ** 21);
  assert.equal(vm.memory.length, 8 * 2 ** 30);
  assert.equal(vm.description, "sim:zero 8.00 GiB seed 1");
  assert.equal(vm.page(2 ** 21 - 1).byteOffset, 8 * 2 ** 30 - 4096);
  await vm.startDirtyLog();
  assert.equal(vm.syncDirty(new Uint32Array(vm.pageCount)), 0);
});

Deno.test("SimVm: pause stops every write, resume restarts them", async () => {
  await using vm = await SimVm.create({
    memoryBytes: 16 << 20,
    workload: "random",
    dirtyRate: 20000,
  });
  await sleep(50);
  const t0 = performance.now();
  await vm.pause();
  const pauseMs = performance.now() - t0;
  assert.ok(pauseMs < 250, `pause took ${pauseMs} ms`); // usually well under 1 ms
  assert.ok(vm.paused);
  const written = vm.pagesWritten;
  assert.ok(written > 0, "nothing written before pause");
  const digest = hex((await vm.digest()).ranges);
  await vm.startDirtyLog();
  await sleep(100);
  assert.equal(vm.pagesWritten, written, "pages written while paused");
  assert.equal(
    hex((await vm.digest()).ranges),
    digest,
    "memory changed while paused",
  );
  assert.equal(
    vm.syncDirty(new Uint32Array(vm.pageCount)),
    0,
    "pages dirtied while paused",
  );
  await vm.resume();
  assert.ok(!vm.paused);
  await sleep(100);
  assert.ok(vm.pagesWritten > written, "no writes after resume");
  assert.ok(
    vm.syncDirty(new Uint32Array(vm.pageCount)) > 0,
    "no dirty pages after resume",
  );
  // Pausing twice and resuming twice are harmless.
  await vm.pause();
  await vm.pause();
  await vm.resume();
  await vm.resume();
});

Deno.test("SimVm: the dirty rate is roughly honoured and can change while running", async () => {
  await using vm = await SimVm.create({
    memoryBytes: 16 << 20,
    workload: "lmbench",
    dirtyRate: 4000,
  });
  let w0 = vm.pagesWritten;
  let t0 = performance.now();
  await sleep(500);
  let rate = (vm.pagesWritten - w0) / ((performance.now() - t0) / 1000);
  assert.ok(rate > 2000 && rate < 8000, `measured ${rate} pages/s for 4000`);
  vm.setDirtyRate(0);
  await sleep(20);
  w0 = vm.pagesWritten;
  await sleep(200);
  assert.equal(vm.pagesWritten, w0, "writes at rate 0");
  vm.setDirtyRate(1000);
  w0 = vm.pagesWritten;
  t0 = performance.now();
  await sleep(500);
  rate = (vm.pagesWritten - w0) / ((performance.now() - t0) / 1000);
  assert.ok(rate > 500 && rate < 2000, `measured ${rate} pages/s for 1000`);
});

/**
 * The property the migration engine relies on: copying what each sync
 * reports, while the guest runs, then once more after pause, reproduces the
 * memory exactly.
 */
for (
  const workload of ["random", "memcached", "postgres", "lmbench", "unique"]
) {
  Deno.test(`SimVm: dirty log is race-safe under ${workload}`, async () => {
    // A rate far above what one core can write: the worker never sleeps, so
    // every race window (write vs. sync, write vs. copy, write vs. pause) is open.
    await using vm = await SimVm.create({
      memoryBytes: 8 << 20,
      workload,
      dirtyRate: 1e7,
    });
    await vm.startDirtyLog();
    const shadow = vm.memory.slice(); // round 1: everything
    const out = new Uint32Array(vm.pageCount);
    let copied = 0;
    const copy = (): void => {
      const n = vm.syncDirty(out);
      for (let i = 0; i < n; i++) shadow.set(vm.page(out[i]), out[i] * 4096);
      copied += n;
    };
    for (let round = 0; round < 15; round++) {
      copy();
      await sleep(10);
    }
    await vm.pause();
    copy();
    assert.ok(copied > 100, `only ${copied} pages copied`);
    assert.equal(
      hex((await vm.digest()).ranges),
      hex((await (await import("../digest.ts")).memoryDigest(shadow)).ranges),
    );
    assert.ok(
      Buffer.compare(shadow, vm.memory) === 0,
      "shadow differs from memory",
    );
  });
}

Deno.test("SimVm: close terminates the worker and is idempotent", async () => {
  const vm = await SimVm.create({ memoryBytes: 1 << 20, workload: "zero" });
  await vm.close();
  const written = vm.pagesWritten;
  await sleep(50);
  assert.equal(vm.pagesWritten, written);
  await vm.close();
  await vm.pause(); // nothing to pause
  assert.ok(vm.paused);
});
