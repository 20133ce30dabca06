import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plan } from "../engine/plan.ts";
import { Steering } from "../engine/steering.ts";
import { loadPolicy } from "./load.ts";
import { roundSeries, roundStats } from "./stats.ts";
import { Gbit, GiB, MBps, MiB, minutes } from "./units.ts";
import { assertDecides, assertRejectsPolicyError } from "./_testing.ts";

const DSL = pathToFileURL(join(import.meta.dirname!, "mod.ts")).href;
const ROOT = join(import.meta.dirname!, "..");

async function withFile(
  body: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hakobu_policy_" });
  try {
    const path = join(dir, "policy.ts");
    await Deno.writeTextFile(path, body);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadPolicy: examples/policies/default.ts", async () => {
  const plan = await loadPolicy(join(ROOT, "examples/policies/default.ts"));
  assert.equal(plan.name, "default");
  assert.equal(plan.bandwidth, Gbit(1));
  assert.equal(plan.batchPages, 256);
  assert.deepEqual(plan.codecsFor(roundStats()).map((c) => c.name), [
    "zero",
    "raw",
  ]);
  assertDecides(plan, [
    [{ round: 3, remainingBytes: MiB(63), sendRate: 1 }, "switchover"],
    [{
      round: 3,
      remainingBytes: MiB(640),
      sendRate: Gbit(1),
      dirtyRate: Gbit(0.1),
    }, "continue"],
    // 64 MiB at 1 Gbit/s is ~537 ms; 32 MiB is ~268 ms, under 300 ms.
    [{
      round: 3,
      remainingBytes: MiB(32) + 1,
      sendRate: Gbit(1),
      dirtyRate: 0,
    }, "switchover"],
    [{
      round: 3,
      remainingBytes: MiB(640),
      sendRate: 100,
      dirtyRate: 90,
    }, "switchover"],
    [{ round: 29, remainingBytes: MiB(640), sendRate: 1000 }, "switchover"],
    [{ round: 3, elapsedMs: 10 * 60_000 + 1 }, "abort"],
  ]);
});

Deno.test("loadPolicy: examples/policies/low_level.ts and unlimited.ts (relative to cwd)", async () => {
  const cwd = Deno.cwd();
  Deno.chdir(ROOT);
  try {
    const low = await loadPolicy("examples/policies/low_level.ts");
    assert.equal(low.name, "low-level");
    assert.equal(low.maxRounds, 50);
    assert.equal(
      low.decide(roundStats({ round: 0, remainingBytes: MiB(8) })),
      "switchover",
    );
    const unlimited = await loadPolicy("./examples/policies/unlimited.ts");
    assert.equal(unlimited.name, "unlimited");
    assert.equal(unlimited.bandwidth, null);
    assertDecides(unlimited, [
      [{ round: 2, remainingBytes: MiB(31) }, "switchover"],
      [{ round: 2, remainingBytes: MiB(33) }, "continue"],
      [{ round: 19, remainingBytes: MiB(33) }, "switchover"],
    ]);
  } finally {
    Deno.chdir(cwd);
  }
});

Deno.test("loadPolicy: a policy file written elsewhere", async () => {
  await withFile(
    `import { policy, when } from "${DSL}";\nexport default policy("tmp").switchover(when.rounds(2));\n`,
    async (path) => {
      const plan = await loadPolicy(path);
      assert.equal(plan.name, "tmp");
      assert.equal(plan.decide(roundStats({ round: 1 })), "switchover");
    },
  );
});

Deno.test("loadPolicy: a default export that is a plan", async () => {
  await withFile(
    `export default { name: "hand", codecsFor: () => [], decide: () => "switchover", bandwidth: null,
      batchPages: 256, maxRounds: 4, gpu: { batch: 8192, prefer: "auto", require: false } };\n`,
    async (path) => {
      const plan = await loadPolicy(path);
      assert.equal(plan.name, "hand");
      assert.deepEqual(plan.codecsFor(roundStats()), [{ name: "raw" }]);
    },
  );
});

Deno.test("loadPolicy: missing file", async () => {
  await assertRejectsPolicyError(
    loadPolicy("no/such/policy.ts"),
    "file",
    /^Cannot load policy "no\/such\/policy.ts": file not found$/,
  );
});

Deno.test("loadPolicy: no default export", async () => {
  await withFile(`export const p = 1;\n`, async (path) => {
    await assertRejectsPolicyError(
      loadPolicy(path),
      "default export",
      /has no default export: add export default policy\("name"\)/,
    );
  });
});

Deno.test("loadPolicy: a default export of the wrong type", async () => {
  await withFile(`export default 42;\n`, async (path) => {
    await assertRejectsPolicyError(
      loadPolicy(path),
      "default export",
      /must be a policy or a plan, got "number"/,
    );
  });
  await withFile(`export default { name: "half a plan" };\n`, async (path) => {
    await assertRejectsPolicyError(
      loadPolicy(path),
      "default export",
      /got "Object"/,
    );
  });
});

Deno.test("loadPolicy: a file that throws while importing keeps the cause", async () => {
  await withFile(
    `throw new Error("kaboom");\nexport default 1;\n`,
    async (path) => {
      const e = await assertRejectsPolicyError(
        loadPolicy(path),
        "file",
        /importing it failed: .*kaboom/,
      );
      assert.ok(e.cause instanceof Error);
    },
  );
});

Deno.test("loadPolicy: a syntax error", async () => {
  await withFile(`export default policy(;\n`, async (path) => {
    await assertRejectsPolicyError(
      loadPolicy(path),
      "file",
      /importing it failed/,
    );
  });
});

Deno.test("loadPolicy: an invalid policy fails with the compile error", async () => {
  await withFile(
    `import { policy, when } from "${DSL}";\nexport default policy("bad").switchover(when.rounds(0));\n`,
    async (path) => {
      await assertRejectsPolicyError(
        loadPolicy(path),
        "switchover",
        /when\.rounds/,
      );
    },
  );
});

Deno.test("loadPolicy: examples/policies/convergence_schedule.ts ramps with stalls, aborts on the sixth stall or past its budget per GiB", async () => {
  const plan = await loadPolicy(
    join(ROOT, "examples/policies/convergence_schedule.ts"),
  );
  assert.equal(plan.name, "convergence-schedule");
  assert.equal(plan.maxRounds, 30);
  const rate = { sendRate: MBps(100), memoryBytes: GiB(4) };
  // 35 MB at 100 MB/s is 350 ms: allowed from the third stall (400 ms).
  assert.deepEqual(
    roundSeries([400e6, 35e6, 35e6, 35e6, 35e6], rate).map((s) =>
      plan.decide(s)
    ),
    ["continue", "continue", "continue", "continue", "switchover"],
  );
  // 60 MB is 600 ms: never allowed; the sixth stall in a row aborts.
  assert.deepEqual(
    roundSeries([400e6, 60e6, 60e6, 59e6, 60e6, 58e6, 60e6, 60e6], rate).map(
      (s) => plan.decide(s),
    ),
    [
      "continue",
      "continue",
      "continue",
      "continue",
      "continue",
      "continue",
      "continue",
      "abort",
    ],
  );
  // Shrinking slowly but steadily past 150 s per GiB (10 min for 4 GiB).
  assertDecides(plan, [
    [{ ...rate, round: 3, elapsedMs: minutes(10) + 1, history: [] }, "abort"],
  ]);
});

/**
 * Runs migrations under one plan, each with its own Steering (as each
 * backend keeps one per migration), each until its first answer other than
 * continue; `remaining[m][r]` is migration m's MiB left after round r.
 * Interleaved: round r of every migration before round r + 1 of any.
 */
function steer(
  plan: Plan,
  remaining: readonly (readonly number[])[],
  interleaved: boolean,
): string[][] {
  const decisions: string[][] = remaining.map(() => []);
  const steerings = remaining.map(() => new Steering(plan, { now: () => 0 }));
  const step = (m: number, round: number): void => {
    const done = decisions[m].at(-1);
    if (round >= remaining[m].length || (done && done !== "continue")) return;
    decisions[m].push(
      steerings[m].decide({
        round,
        remainingBytes: MiB(remaining[m][round]),
        bytesSent: 0,
        rawBytesSent: 0,
        elapsedMs: (round + 1) * 1000,
      }).decision,
    );
  };
  const rounds = Math.max(...remaining.map((r) => r.length));
  if (interleaved) {
    for (let r = 0; r < rounds; r++) {
      for (let m = 0; m < remaining.length; m++) step(m, r);
    }
  } else {
    for (let m = 0; m < remaining.length; m++) {
      for (let r = 0; r < rounds; r++) step(m, r);
    }
  }
  return decisions;
}

for (
  const [file, remaining, alone] of [
    [
      "converge.ts",
      // a shrinks by more than 10% each round; b stops shrinking at round 1
      [[64, 40, 30, 20], [4, 3.9]],
      [
        ["continue", "continue", "continue", "continue"],
        ["continue", "switchover"],
      ],
    ],
    [
      "low_level.ts",
      // a still shrinks at round 5; b has stalled since round 0
      [[400, 300, 200, 150, 100, 90, 80], [80, 80, 80, 80, 80, 80]],
      [
        Array(7).fill("continue"),
        [...Array(5).fill("continue"), "switchover"],
      ],
    ],
  ] as const
) {
  Deno.test(`examples/policies/${file}: two migrations under one plan, their rounds interleaved, decide as each would alone`, async () => {
    const plan = await loadPolicy(join(ROOT, "examples/policies", file));
    assert.deepEqual(steer(plan, remaining, false), alone);
    assert.deepEqual(steer(plan, remaining, true), alone);
    // and again: nothing carried over from the migrations before
    assert.deepEqual(steer(plan, remaining, true), alone);
  });
}
