import assert from "node:assert/strict";
import { Watchdog } from "./watchdog.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Watchdog: rejects with the armed error once the deadline passes", async () => {
  const dog = new Watchdog();
  try {
    dog.arm(20, () => new Error("no HELLO within 20 ms"));
    await assert.rejects(dog.expired, /no HELLO within 20 ms/);
  } finally {
    dog.close();
  }
});

Deno.test("Watchdog: re-arming moves the deadline; disarming keeps it quiet", async () => {
  const dog = new Watchdog();
  let fired = false;
  dog.expired.catch(() => fired = true);
  try {
    // Re-armed every 10 ms for 120 ms with a 40 ms deadline: never passes.
    for (let i = 0; i < 12; i++) {
      dog.arm(40, () => new Error("late"));
      await sleep(10);
    }
    assert.equal(fired, false, "re-armed in time");
    dog.disarm();
    await sleep(80);
    assert.equal(fired, false, "disarmed");
    dog.arm(15, () => new Error("late at last"));
    await assert.rejects(dog.expired, /late at last/);
  } finally {
    dog.close();
  }
});

Deno.test("Watchdog: closed, it never fires", async () => {
  const dog = new Watchdog();
  let fired = false;
  dog.expired.catch(() => fired = true);
  dog.arm(10, () => new Error("late"));
  dog.close();
  dog.arm(10, () => new Error("late"));
  await sleep(40);
  assert.equal(fired, false);
});

Deno.test("Watchdog: a shorter deadline armed after a longer one fires on time", async () => {
  const dog = new Watchdog();
  try {
    dog.arm(10_000, () => new Error("the long one"));
    dog.arm(20, () => new Error("the short one"));
    const t0 = performance.now();
    await assert.rejects(dog.expired, /the short one/);
    assert.ok(
      performance.now() - t0 < 5_000,
      "did not wait for the long timer",
    );
  } finally {
    dog.close();
  }
});
