/**
 * A source that never hangs: the policy's deadlines bound every wait for the
 * receiver, and its downtime bound resumes the VM when stop-and-copy does
 * not end in time — here with a link that goes silent the moment the VM is
 * paused, and with a receiver that never answers.
 */

import assert from "node:assert/strict";
import { codec, compile, ms, policy, when } from "../dsl/mod.ts";
import { MiB } from "../dsl/units.ts";
import { MigrationError } from "./errors.ts";
import { migrate } from "./precopy.ts";
import { driverOf, withDeadline } from "./_precopy_testing.ts";
import { receiveMigration } from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import { FrameReader, memoryDuplex, type WireConn } from "./wire/mod.ts";

const DEADLINE_MS = 60_000;

/**
 * Relays bytes both ways between `a` and `b` until {@link Relay.blackhole}:
 * from then on nothing more goes either way and nothing is closed, as a
 * link whose far end vanished; {@link Relay.cut} then breaks both ends.
 */
interface Relay {
  blackhole(): void;
  cut(): Promise<void>;
}

function relay(a: WireConn, b: WireConn): Relay {
  let dark = false;
  const never = new Promise<never>(() => {});
  const ends: (() => Promise<void>)[] = [];
  const pump = async (
    from: ReadableStream<Uint8Array>,
    to: WritableStream<Uint8Array>,
  ) => {
    const reader = from.getReader();
    const writer = to.getWriter();
    ends.push(
      () => reader.cancel().catch(() => {}),
      () => writer.abort(new Error("link cut")).catch(() => {}),
    );
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || dark) break;
        await writer.write(value);
      }
    } catch { /* one side ended */ }
    if (dark) await never; // hold both ends open, forwarding nothing
  };
  pump(a.readable, b.writable);
  pump(b.readable, a.writable);
  return {
    blackhole: () => dark = true,
    cut: async () => {
      for (const end of ends) await end();
    },
  };
}

/**
 * A receiver behind a {@link relay}: the source's end of the link, the
 * relay, the receiver's outcome and its destination memory once created.
 */
function relayedReceiver() {
  const [source, relayIn] = memoryDuplex(4);
  const [relayOut, destination] = memoryDuplex(4);
  const link = relay(relayIn, relayOut);
  let sink: SimMemorySink | null = null;
  const received = receiveMigration(destination, {
    createSink: (h) =>
      sink = new SimMemorySink({
        pageSize: h.pageSize,
        pageCount: h.memoryBytes / h.pageSize,
      }),
  }).catch((e: Error) => e);
  return { source, link, received, sink: () => sink as SimMemorySink | null };
}

/** The error `migration` fails with (failing the test if it succeeds or hangs). */
function failureOf(migration: Promise<unknown>): Promise<unknown> {
  return withDeadline(
    migration.then(
      () => assert.fail("the migration should have failed"),
      (e) => e,
    ),
    "the source's failure",
    DEADLINE_MS,
  );
}

/** `vm` as a SourceDriver whose pause and resume are timed and hooked. */
function observed(vm: SimVm, onPause: () => void) {
  const times = { pausedAt: NaN, resumedAt: NaN };
  const driver = driverOf(vm, {
    pause: async () => {
      await vm.pause();
      times.pausedAt = performance.now();
      onPause();
    },
    resume: async () => {
      await vm.resume();
      times.resumedAt = performance.now();
    },
  });
  return { driver, times };
}

Deno.test("a link that goes silent at stop-and-copy: the policy's downtime bound fails the migration and resumes the VM on the source; the receiver discards", async () => {
  await using vm = await SimVm.create({
    memoryBytes: MiB(16),
    workload: "memcached",
  });
  const { source, link, received, sink } = relayedReceiver();
  const { driver, times } = observed(vm, () => link.blackhole());
  const plan = compile(
    policy("bounded")
      .codec([codec.zero(), codec.raw()])
      .switchover(when.rounds(2))
      .channels(1)
      .deadlines({ downtime: ms(300) }),
  );
  const error = await failureOf(
    migrate({ plan, source: driver, conn: source }),
  );
  assert.ok(error instanceof MigrationError, String(error));
  assert.match(
    error.message,
    /Stop-and-copy did not end within the policy's downtime bound of 300 ms \(no READY from the receiver yet\): the VM resumes on the source/,
  );
  assert.equal(vm.paused, false, "the source VM runs again");
  const pausedFor = times.resumedAt - times.pausedAt;
  assert.ok(
    pausedFor >= 300 && pausedFor < 5000,
    `resumed ${
      pausedFor.toFixed(0)
    } ms after the pause: at the bound, before any best-effort ABORT`,
  );
  // The receiver still waits on the silent link (its own frame timeout is
  // minutes); cutting the link ends it.
  await link.cut();
  const outcome = await withDeadline(received, "the receiver", DEADLINE_MS);
  assert.ok(outcome instanceof Error, "the receiver did not verify");
  assert.equal(sink()?.state, "discarded");
});

Deno.test("a receiver that never answers HELLO: the reply deadline fails the migration, naming the wait; the VM was never paused", async () => {
  await using vm = await SimVm.create({
    memoryBytes: MiB(4),
    workload: "idle",
  });
  const [source, mute] = memoryDuplex();
  // Reads everything, answers nothing.
  const draining = (async () => {
    const reader = new FrameReader(mute.readable);
    while (await reader.next().catch(() => null)) { /* swallow */ }
  })();
  let paused = false;
  const driver = driverOf(vm, {
    pause: () => (paused = true, vm.pause()),
  });
  const plan = compile(
    policy("impatient").switchover(when.rounds(2)).deadlines({ reply: 200 }),
  );
  const t0 = performance.now();
  const error = await failureOf(
    migrate({ plan, source: driver, conn: source }),
  );
  assert.match(
    String(error),
    /The receiver did not answer HELLO within 200 ms \(the reply deadline\): it is stuck, or the link is/,
  );
  assert.ok(performance.now() - t0 >= 190, "not before the deadline");
  assert.equal(paused, false);
  assert.equal(vm.paused, false);
  await mute.writable.close().catch(() => {});
  await source.writable.close().catch(() => {});
  await draining;
});

Deno.test("without a downtime bound, the reply deadline still ends a stop-and-copy on a silent link, and the VM resumes", async () => {
  await using vm = await SimVm.create({
    memoryBytes: MiB(16),
    workload: "memcached",
  });
  const { source, link, received } = relayedReceiver();
  const { driver, times } = observed(vm, () => link.blackhole());
  const plan = compile(
    policy("patient").codec([codec.zero(), codec.raw()])
      .switchover(when.rounds(2)).channels(1).deadlines({ reply: 400 }),
  );
  const error = await failureOf(
    migrate({ plan, source: driver, conn: source }),
  );
  // Whichever wait met the silence first — a final-round write the link no
  // longer takes, or READY — it is the reply deadline that ended it.
  assert.match(String(error), /within 400 ms \(the reply deadline\)/);
  assert.equal(vm.paused, false, "the source VM runs again");
  assert.ok(times.resumedAt - times.pausedAt >= 400);
  await link.cut();
  assert.ok(
    await withDeadline(received, "the receiver", DEADLINE_MS) instanceof Error,
  );
});
