import assert from "node:assert/strict";
import type { Plan } from "../engine/plan.ts";
import { roundLimitReason, Steering } from "../engine/steering.ts";
import { codec } from "./codec_spec.ts";
import { compile, POLICY_DEFAULTS } from "./compile.ts";
import { when } from "./conditions.ts";
import { PolicyError } from "./errors.ts";
import { policy } from "./policy.ts";
import { roundSeries, roundStats } from "./stats.ts";
import { Gbit, GiB, MBps, MiB, minutes, seconds } from "./units.ts";
import { assertDecides, assertPolicyError } from "./_testing.ts";

const base = policy("p").switchover(when.rounds(30));

Deno.test("defaults fill every plan field", () => {
  const plan = compile(base);
  assert.equal(plan.name, "p");
  assert.equal(plan.bandwidth, null);
  assert.equal(plan.batchPages, 256);
  assert.equal(plan.maxRounds, 64);
  assert.deepEqual(plan.gpu, { batch: 8192, prefer: "auto", require: false });
  assert.deepEqual(plan.codecsFor(roundStats()), POLICY_DEFAULTS.codec);
  assert.equal(typeof plan.reason, "function");
});

Deno.test("every builder field reaches the plan", () => {
  const plan = policy("all")
    .codec([codec.zero(), codec.raw()])
    .switchover(when.rounds(10))
    .bandwidth(Gbit(1))
    .gpu({ batch: 4096 })
    .gpu({ prefer: "gpu", require: true })
    .batchPages(512)
    .maxRounds(100)
    .compile();
  assert.equal(plan.bandwidth, 125_000_000);
  assert.equal(plan.batchPages, 512);
  assert.equal(plan.maxRounds, 100);
  assert.deepEqual(plan.gpu, { batch: 4096, prefer: "gpu", require: true });
});

Deno.test("the builder is immutable", () => {
  const a = policy("a").switchover(when.rounds(3));
  const b = a.bandwidth(Gbit(1));
  assert.equal(compile(a).bandwidth, null);
  assert.equal(compile(b).bandwidth, Gbit(1));
});

Deno.test("bandwidth accepts null, 'unlimited' and rate strings", () => {
  assert.equal(compile(base.bandwidth(null)).bandwidth, null);
  assert.equal(compile(base.bandwidth("unlimited")).bandwidth, null);
  assert.equal(compile(base.bandwidth("100Mbit")).bandwidth, 12_500_000);
});

Deno.test("compile appends raw to chains that do not end with it", () => {
  const plan = compile(base.codec([codec.zero()]));
  assert.deepEqual(plan.codecsFor(roundStats()).map((c) => c.name), [
    "zero",
    "raw",
  ]);
  const single = compile(base.codec(codec.zero()));
  assert.deepEqual(single.codecsFor(roundStats()).map((c) => c.name), [
    "zero",
    "raw",
  ]);
  const ended = compile(base.codec([codec.zero(), codec.raw()]));
  assert.deepEqual(ended.codecsFor(roundStats()).map((c) => c.name), [
    "zero",
    "raw",
  ]);
  const empty = compile(base.codec([]));
  assert.deepEqual(empty.codecsFor(roundStats()).map((c) => c.name), ["raw"]);
});

Deno.test("a codec function is called per round and its chain checked and completed", () => {
  const plan = compile(
    base.codec((s) => (s.round === 0 ? [codec.zero()] : codec.raw())),
  );
  assert.deepEqual(
    plan.codecsFor(roundStats({ round: 0 })).map((c) => c.name),
    ["zero", "raw"],
  );
  assert.deepEqual(
    plan.codecsFor(roundStats({ round: 1 })).map((c) => c.name),
    ["raw"],
  );
});

Deno.test("an unknown codec name returned at run time is a PolicyError listing known codecs", () => {
  const plan = compile(
    base.codec((s) => (s.round < 3 ? [codec.zero()] : [codec.named("lz5")])),
  );
  assert.doesNotThrow(() => plan.codecsFor(roundStats({ round: 2 })));
  assertPolicyError(
    () => plan.codecsFor(roundStats({ round: 3 })),
    "codec",
    /^Invalid policy "p": codec chosen for round 3 must name registered codecs, got "lz5": use one of "raw", "zero"/,
  );
});

Deno.test("a codec function that throws is wrapped with its cause", () => {
  const boom = new Error("boom");
  const plan = compile(base.codec(() => {
    throw boom;
  }));
  const e = assertPolicyError(
    () => plan.codecsFor(roundStats({ round: 4 })),
    "codec",
    /threw in round 4: boom/,
  );
  assert.equal(e.cause, boom);
});

Deno.test("unknown codec names are rejected at compile time", () => {
  assertPolicyError(
    () => compile(base.codec([codec.named("zstdd"), codec.raw()])),
    "codec",
    /"zstdd"/,
    /use one of "raw", "zero"/,
  );
});

Deno.test("codecs after raw, duplicates and non-specs are rejected", () => {
  assertPolicyError(
    () => compile(base.codec([codec.raw(), codec.zero()])),
    "codec",
    /after "raw" never runs/,
    /put raw last/,
  );
  assertPolicyError(
    () => compile(base.codec([codec.zero(), codec.zero()])),
    "codec",
    /appears twice/,
  );
  assertPolicyError(
    () => compile(base.codec(["zero"] as unknown as [])),
    "codec",
    /must be codec specs, got "zero": use codec\.zero\(\)/,
  );
});

Deno.test("bandwidth must be positive", () => {
  for (const bad of [-5, 0, NaN, Infinity]) {
    assertPolicyError(
      () => compile(base.bandwidth(bad)),
      "bandwidth",
      new RegExp(
        `^Invalid policy "p": bandwidth must be positive, got "${bad} B/s": pass e\\.g\\. Gbit\\(1\\)`,
      ),
    );
  }
  assertPolicyError(
    () => compile(base.bandwidth("10 Gbps")),
    "bandwidth",
    /got "10 Gbps"/,
    /pass e\.g\. Gbit\(1\)/,
  );
});

Deno.test("batchPages must be a whole number from 1 to 7680", () => {
  for (const bad of [0, -1, 1.5, 7681, 65537, NaN]) {
    assertPolicyError(
      () => compile(base.batchPages(bad)),
      "batchPages",
      new RegExp(`got "${bad}"`),
      /\.batchPages\(256\)/,
    );
  }
  assert.equal(compile(base.batchPages(7680)).batchPages, 7680);
});

Deno.test("channels must be a whole number from 1 to 64; absent means one per core", () => {
  for (const bad of [0, -1, 1.5, 65, NaN]) {
    assertPolicyError(
      () => compile(base.channels(bad)),
      "channels",
      new RegExp(`got "${bad}"`),
      /\.channels\(4\)/,
    );
  }
  assert.equal(compile(base.channels(4)).channels, 4);
  assert.equal(compile(base).channels, undefined);
});

Deno.test("resume: off unless asked; grace in whole milliseconds up to a day, attempts 1 to 100 (default 3), known fields only; a hand-written plan is checked the same way", () => {
  assert.equal(compile(base).resume, undefined);
  assert.deepEqual(compile(base.resume({ grace: 30_000 })).resume, {
    graceMs: 30_000,
    attempts: 3,
  });
  assert.deepEqual(
    compile(base.resume({ grace: 500, attempts: 1 })).resume,
    { graceMs: 500, attempts: 1 },
  );
  for (const bad of [0, -5, 1.5, NaN, 86_400_001, undefined]) {
    assertPolicyError(
      () => compile(base.resume({ grace: bad as number })),
      "resume.grace",
      /whole number of milliseconds/,
      /\.resume\(\{ grace: seconds\(30\), attempts: 3 \}\)/,
    );
  }
  for (const bad of [0, 101, 2.5]) {
    assertPolicyError(
      () => compile(base.resume({ grace: 1000, attempts: bad })),
      "resume.attempts",
      new RegExp(`got "${bad}"`),
      /\.resume\(/,
    );
  }
  assertPolicyError(
    () => compile(base.resume({ grace: 1000, graceMs: 5 } as never)),
    "resume",
    /has no field "graceMs"/,
    /\.resume\(/,
  );
  const plan = compile(base);
  assertPolicyError(
    () => compile({ ...plan, resume: { graceMs: -1, attempts: 3 } }),
    "resume.grace",
    /whole number of milliseconds/,
    /\.resume\(/,
  );
  assert.deepEqual(
    compile({ ...plan, resume: { graceMs: 9, attempts: 2 } }).resume,
    { graceMs: 9, attempts: 2 },
  );
});

Deno.test("deadlines: whole milliseconds from 1 to a day, known fields only; unset ones keep the defaults", () => {
  assert.deepEqual(compile(base).deadlines, {
    replyMs: 60_000,
    downtimeMs: null,
  });
  assert.deepEqual(
    compile(base.deadlines({ downtime: 500 })).deadlines,
    { replyMs: 60_000, downtimeMs: 500 },
  );
  assert.deepEqual(
    compile(base.deadlines({ reply: 5_000, downtime: 250 })).deadlines,
    { replyMs: 5_000, downtimeMs: 250 },
  );
  for (const bad of [0, -5, 1.5, NaN, 86_400_001]) {
    assertPolicyError(
      () => compile(base.deadlines({ downtime: bad })),
      "deadlines.downtime",
      new RegExp(`got "${bad}"`),
      /\.deadlines\(\{ downtime: ms\(500\) \}\)/,
    );
    assertPolicyError(
      () => compile(base.deadlines({ reply: bad })),
      "deadlines.reply",
      new RegExp(`got "${bad}"`),
      /\.deadlines\(\{ reply: ms\(500\) \}\)/,
    );
  }
  assertPolicyError(
    () => compile(base.deadlines({ ready: 5 } as never)),
    "deadlines",
    /has no field "ready"/,
    /reply: seconds\(30\)/,
  );
  // A compiled plan's deadlines survive being checked again as a plan.
  const plan = compile(base.deadlines({ downtime: 400 }));
  assert.deepEqual(
    compile({ ...plan } as Plan).deadlines,
    { replyMs: 60_000, downtimeMs: 400 },
  );
});

Deno.test("a codec's options are checked by the codec itself at compile()", () => {
  for (
    const [spec, message] of [
      [codec.dedup({ chunkBytes: 3 }), /dedup option "chunkBytes" 3/],
      [codec.zstd({ level: 23 }), /zstd option level "23"/],
      [codec.lz4({ acceleration: 0 }), /lz4 option acceleration "0"/],
      [codec.delta({ cacheBytes: -4096 }), /delta cacheBytes "-4096"/],
      [codec.named("zero", { level: 1 }), /Unknown zero option "level"/],
    ] as const
  ) {
    assertPolicyError(
      () => compile(base.codec([spec])),
      "codec",
      message,
      /docs\/codecs\//,
    );
  }
});

Deno.test("maxRounds must be a whole number of at least 1", () => {
  for (const bad of [0, 2.5, -3]) {
    assertPolicyError(
      () => compile(base.maxRounds(bad)),
      "maxRounds",
      new RegExp(`got "${bad}"`),
    );
  }
});

Deno.test("gpu batch bounds, prefer values and require with prefer cpu", () => {
  assertPolicyError(
    () => compile(base.gpu({ batch: 0 })),
    "gpu.batch",
    /got "0"/,
    /\.gpu\(\{ batch: 8192 \}\)/,
  );
  assertPolicyError(
    () => compile(base.gpu({ batch: 1_048_577 })),
    "gpu.batch",
    /1 to 1048576/,
  );
  assertPolicyError(
    () => compile(base.gpu({ batch: 100.5 })),
    "gpu.batch",
    /got "100.5"/,
  );
  assert.equal(compile(base.gpu({ batch: 1_048_576 })).gpu.batch, 1_048_576);
  assertPolicyError(
    () => compile(base.gpu({ prefer: "tpu" as "gpu" })),
    "gpu.prefer",
    /got "tpu"/,
  );
  assertPolicyError(
    () => compile(base.gpu({ require: true, prefer: "cpu" })),
    "gpu.require",
    /require cannot be true when gpu\.prefer is "cpu"/,
  );
});

Deno.test("an empty name is rejected", () => {
  assertPolicyError(
    () => compile(policy("").switchover(when.rounds(3))),
    "name",
    /name must not be empty/,
    /policy\("fast"\)/,
  );
  assertPolicyError(
    () => compile(policy("  ").switchover(when.rounds(3))),
    "name",
  );
});

Deno.test("a policy without switchover or decide is rejected with the fix", () => {
  assertPolicyError(
    () => compile(policy("p")),
    "switchover",
    /add \.switchover\(when\.rounds\(30\)\)/,
  );
  assertPolicyError(
    () => compile(policy("p").abortIf(when.elapsedAbove(minutes(1)))),
    "switchover",
  );
});

Deno.test("decide cannot be combined with switchover or abortIf", () => {
  assertPolicyError(
    () => compile(base.decide(() => "continue")),
    "decide",
    /cannot be combined/,
  );
  assertPolicyError(
    () => compile(policy("p").abortIf(when.rounds(3)).decide(() => "continue")),
    "decide",
    /got "decide and abortIf"/,
  );
});

Deno.test("bad condition values are rejected, naming the field", () => {
  assertPolicyError(
    () => compile(policy("p").switchover(when.rounds(0))),
    "switchover",
    /when\.rounds/,
    /got "0"/,
    /when\.rounds\(30\)/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.rounds(2.5))),
    "switchover",
    /got "2.5"/,
  );
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          when.any(when.rounds(5), when.remainingBelow(-1)),
        ),
      ),
    "switchover",
    /when\.remainingBelow needs a positive size, got "-1 B"/,
    /MiB\(64\)/,
  );
  assertPolicyError(
    () => compile(base.abortIf(when.elapsedAbove(NaN))),
    "abortIf",
    /when\.elapsedAbove needs a positive duration, got "NaN ms"/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.dirtyRateAbove(0))),
    "switchover",
    /got "0 B\/s"/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.any())),
    "switchover",
    /at least one condition/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.custom("", () => true))),
    "switchover",
    /description/,
  );
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          { kind: "rounds" } as unknown as ReturnType<typeof when.rounds>,
        ),
      ),
    "switchover",
    /must be a condition/,
  );
});

Deno.test("contradictory bounds are rejected", () => {
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          when.all(when.remainingBelow(MiB(64)), when.remainingAbove(GiB(1))),
        ),
      ),
    "switchover",
    /can never fire: remaining would have to be above 1\.00 GiB and below 64\.00 MiB at once/,
  );
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          when.all(
            when.dirtyRateAbove(MBps(10)),
            when.dirtyRateBelow(MBps(10)),
          ),
        ),
      ),
    "switchover",
    /dirty rate would have to be above/,
  );
  // Satisfiable ranges pass.
  assert.doesNotThrow(() =>
    compile(
      policy("p").switchover(
        when.all(when.remainingBelow(GiB(1)), when.remainingAbove(MiB(64))),
      ),
    )
  );
  // One satisfiable member of an any() is enough.
  assert.doesNotThrow(() =>
    compile(
      policy("p").switchover(
        when.any(
          when.rounds(5),
          when.all(when.remainingBelow(MiB(1)), when.remainingAbove(MiB(2))),
        ),
      ),
    )
  );
});

Deno.test("a compiled plan applies maxRounds in Steering's words", () => {
  const plan = compile(
    policy("p").switchover(when.remainingBelow(MiB(1))).maxRounds(3),
  );
  const big = { remainingBytes: MiB(64) };
  assert.equal(plan.decide(roundStats({ ...big, round: 1 })), "continue");
  const last = roundStats({ ...big, round: 2 });
  assert.equal(plan.decide(last), "switchover");
  assert.equal(plan.reason?.(last), roundLimitReason(3, 3));
  // the same wording whether the plan or the steering applies the limit
  const steering = new Steering({
    ...plan,
    reason: undefined,
    decide: () => "continue",
  });
  const step = steering.decide({
    round: 2,
    ...big,
    bytesSent: 0,
    rawBytesSent: 0,
  });
  assert.equal(step.override, "maxRounds");
  assert.equal(step.reason, plan.reason?.(last));
});

Deno.test("maxRounds below the rounds a switchover needs is rejected", () => {
  assertPolicyError(
    () => compile(policy("p").switchover(when.rounds(100)).maxRounds(50)),
    "maxRounds",
    /got "50"/,
    /\.maxRounds\(100\)/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.rounds(65))),
    "maxRounds",
    /got "64"/,
  );
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          when.all(when.rounds(80), when.remainingBelow(MiB(1))),
        ),
      ),
    "maxRounds",
  );
  assert.doesNotThrow(() =>
    compile(
      policy("p").switchover(
        when.any(when.rounds(100), when.remainingBelow(MiB(1))),
      ),
    )
  );
  assert.doesNotThrow(() => compile(policy("p").switchover(when.rounds(64))));
});

Deno.test("decide: abort wins over switchover, which wins over continue; maxRounds switches over", () => {
  const plan = compile(
    policy("p")
      .switchover(when.remainingBelow(MiB(64)))
      .abortIf(when.elapsedAbove(minutes(10)))
      .maxRounds(20),
  );
  assertDecides(plan, [
    [{ round: 1, remainingBytes: GiB(1) }, "continue"],
    [{ round: 1, remainingBytes: MiB(1) }, "switchover"],
    [{ round: 1, remainingBytes: MiB(1), elapsedMs: minutes(11) }, "abort"],
    [{ round: 19, remainingBytes: GiB(1) }, "switchover"],
  ]);
});

Deno.test("reason says which condition fired", () => {
  const plan = compile(
    policy("p")
      .switchover(
        when.any(
          when.remainingBelow(MiB(64)),
          when.dirtyRateAbove((s) => 0.8 * s.sendRate),
          when.rounds(30),
        ),
      )
      .abortIf(when.elapsedAbove(minutes(10))),
  );
  const reason = (s: ReturnType<typeof roundStats>): string => {
    plan.decide(s);
    return plan.reason!(s);
  };
  assert.equal(
    reason(
      roundStats({ round: 2, remainingBytes: MiB(10), sendRate: MBps(100) }),
    ),
    "switchover: remaining 10.00 MiB is below 64.00 MiB",
  );
  assert.match(
    reason(
      roundStats({
        round: 2,
        remainingBytes: GiB(1),
        dirtyRate: MBps(90),
        sendRate: MBps(100),
      }),
    ),
    /^switchover: dirty rate 720\.0 Mbit\/s is above 640\.0 Mbit\/s/,
  );
  assert.equal(
    reason(
      roundStats({ round: 29, remainingBytes: GiB(1), sendRate: MBps(100) }),
    ),
    "switchover: 30 of 30 rounds done",
  );
  assert.match(
    reason(roundStats({ round: 2, elapsedMs: minutes(11) })),
    /^abort: elapsed time .* is above 10 min/,
  );
  assert.match(
    reason(
      roundStats({ round: 2, remainingBytes: GiB(1), sendRate: MBps(100) }),
    ),
    /^continue: none of/,
  );
  // Without a decide call first, reason evaluates on its own.
  assert.match(
    plan.reason!(roundStats({ round: 3, remainingBytes: MiB(1) })),
    /^switchover: remaining/,
  );
});

Deno.test("the low-level decide is passed through and its answers checked", () => {
  const seen: number[] = [];
  const plan = compile(
    policy("xen").decide((s) => {
      seen.push(s.round);
      return s.round >= 4
        ? "switchover"
        : s.elapsedMs > 1000
        ? "abort"
        : "continue";
    }),
  );
  assert.equal(plan.decide(roundStats({ round: 1 })), "continue");
  assert.equal(plan.decide(roundStats({ round: 1, elapsedMs: 2000 })), "abort");
  assert.equal(plan.decide(roundStats({ round: 4 })), "switchover");
  assert.deepEqual(seen, [1, 1, 4]);
  const s = roundStats({ round: 5 });
  plan.decide(s);
  assert.match(
    plan.reason!(s),
    /decide function answered "switchover" after round 5/,
  );

  const bad = compile(policy("bad").decide(() => "maybe" as "continue"));
  assertPolicyError(
    () => bad.decide(roundStats()),
    "decide",
    /got "maybe"/,
    /"continue", "switchover" or "abort"/,
  );
});

Deno.test("a hand-written plan is checked and wrapped; a compiled plan is returned as is", () => {
  const hand: Plan = {
    name: "hand",
    codecsFor: () => [{ name: "zero" }],
    decide: (s) => (s.round > 2 ? "switchover" : "continue"),
    bandwidth: null,
    batchPages: 128,
    maxRounds: 10,
    gpu: { batch: 1024, prefer: "cpu", require: false },
  };
  const plan = compile(hand);
  assert.deepEqual(plan.codecsFor(roundStats()).map((c) => c.name), [
    "zero",
    "raw",
  ]);
  assert.equal(plan.decide(roundStats({ round: 3 })), "switchover");
  assert.equal(compile(plan), plan);
  assertPolicyError(() => compile({ ...hand, batchPages: 0 }), "batchPages");
  assertPolicyError(
    () =>
      compile({ ...hand, codecsFor: () => [{ name: "nope" }] }).codecsFor(
        roundStats(),
      ),
    "codec",
    /"nope"/,
  );
});

/** A ramp's options with one field replaced. */
function ramp(
  patch: Record<string, unknown>,
): ReturnType<typeof when.downtimeRamp> {
  return when.downtimeRamp(
    {
      startMs: 50,
      stepMs: 50,
      maxMs: 500,
      every: { rounds: 2 },
      ...patch,
    } as Parameters<typeof when.downtimeRamp>[0],
  );
}

Deno.test("when.stalled is checked at compile(): rounds, forMs, minProgress and unknown options", () => {
  const at = (options: unknown) =>
    compile(
      policy("p").switchover(when.rounds(30)).abortIf(
        when.stalled(options as Parameters<typeof when.stalled>[0]),
      ),
    );
  for (const rounds of [0, -1, 1.5, NaN]) {
    assertPolicyError(
      () => at({ rounds }),
      "abortIf",
      new RegExp(
        `^Invalid policy "p": abortIf when\\.stalled rounds must be a whole number of at least 1, got "${rounds}": pass e\\.g\\. when\\.stalled\\(\\{ rounds: 3 \\}\\)`,
      ),
    );
  }
  for (const forMs of [0, -5, Infinity]) {
    assertPolicyError(
      () => at({ forMs }),
      "abortIf",
      /forMs must be a positive duration/,
      new RegExp(`got "${forMs} ms"`),
    );
  }
  assertPolicyError(
    () => at({}),
    "abortIf",
    /when\.stalled needs rounds, forMs or both/,
  );
  for (const minProgress of [-0.1, 1, 2, NaN]) {
    assertPolicyError(
      () => at({ rounds: 3, minProgress }),
      "abortIf",
      /minProgress must be a fraction from 0 to under 1/,
      new RegExp(`got "${minProgress}"`),
    );
  }
  assertPolicyError(
    () => at({ round: 3 }),
    "abortIf",
    /when\.stalled has no option "round": it takes rounds, forMs, minProgress/,
  );
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(
          when.any(when.rounds(5), when.stalled({ rounds: 0 })),
        ),
      ),
    "switchover",
    /rounds must be a whole number/,
  );
  assert.doesNotThrow(() => at({ rounds: 3, forMs: 1000, minProgress: 0 }));
});

Deno.test("when.downtimeRamp is checked at compile(): positive steps, max above start, one kind of step", () => {
  const at = (c: ReturnType<typeof ramp>) => compile(policy("p").switchover(c));
  for (const stepMs of [-50, 0, NaN]) {
    assertPolicyError(
      () => at(ramp({ stepMs })),
      "switchover",
      /when\.downtimeRamp stepMs must be a positive duration \(a ramp only rises\)/,
      new RegExp(`got "${stepMs} ms"`),
    );
  }
  for (const key of ["startMs", "maxMs"]) {
    assertPolicyError(
      () => at(ramp({ [key]: -1 })),
      "switchover",
      new RegExp(`${key} must be a positive duration, got "-1 ms"`),
    );
  }
  for (const maxMs of [40, 50]) {
    assertPolicyError(
      () => at(ramp({ maxMs })),
      "switchover",
      /maxMs must be above startMs, else the ramp never rises/,
      new RegExp(`got "startMs 50, maxMs ${maxMs}"`),
      /when\.downtimeBelow\(ms\(50\)\) for a fixed bound/,
    );
  }
  for (
    const [every, message] of [
      [{ rounds: 0 }, /every\.rounds must be a whole number of at least 1/],
      [{ stalls: 1.5 }, /every\.stalls must be a whole number of at least 1/],
      [{ ms: -10 }, /every\.ms must be a positive duration/],
      [{}, /every needs exactly one of rounds, stalls or ms/],
      [
        { rounds: 2, ms: 100 },
        /every needs exactly one of rounds, stalls or ms/,
      ],
      [{ round: 2 }, /every has no option "round"/],
      [
        { rounds: 2, minProgress: 0.1 },
        /minProgress only applies to every\.stalls/,
      ],
      [{ stalls: 1, minProgress: 1.5 }, /minProgress must be a fraction/],
      [undefined, /every needs an options object/],
    ] as const
  ) {
    assertPolicyError(() => at(ramp({ every })), "switchover", message);
  }
  assertPolicyError(
    () => at(ramp({ step: 50 })),
    "switchover",
    /has no option "step": it takes startMs, stepMs, maxMs, every/,
  );
  assert.doesNotThrow(() =>
    at(ramp({ every: { stalls: 2, minProgress: 0.1 } }))
  );
});

Deno.test("when.elapsedAbovePerGiB needs a positive duration", () => {
  for (const bad of [0, -1, NaN, Infinity]) {
    assertPolicyError(
      () =>
        compile(
          policy("p").switchover(when.rounds(3)).abortIf(
            when.elapsedAbovePerGiB(bad),
          ),
        ),
      "abortIf",
      new RegExp(
        `when\\.elapsedAbovePerGiB needs a positive duration per GiB, got "${bad} ms": pass e\\.g\\. when\\.elapsedAbovePerGiB\\(seconds\\(150\\)\\)`,
      ),
    );
  }
});

Deno.test("a stall that needs more rounds than maxRounds allows is rejected, in switchover and in abortIf", () => {
  assertPolicyError(
    () =>
      compile(
        policy("p").switchover(when.rounds(3)).abortIf(
          when.stalled({ rounds: 8 }),
        ).maxRounds(8),
      ),
    "maxRounds",
    /maxRounds 8 ends the migration before abortIf "remaining bytes have not shrunk for 8 rounds" can fire, got "8": raise it with \.maxRounds\(9\)/,
  );
  assertPolicyError(
    () => compile(policy("p").switchover(when.stalled({ rounds: 64 }))),
    "maxRounds",
    /before switchover/,
  );
  assert.doesNotThrow(() =>
    compile(
      policy("p").switchover(when.rounds(3)).abortIf(
        when.stalled({ rounds: 7 }),
      ).maxRounds(8),
    )
  );
  // A time limit can hold from round 1.
  assert.doesNotThrow(() =>
    compile(
      policy("p").switchover(when.stalled({ rounds: 100, forMs: 5000 }))
        .maxRounds(2),
    )
  );
});

Deno.test("a plan with a stall abort decides from the history: continue, then abort exactly at the nth stall", () => {
  const plan = compile(
    policy("p")
      .switchover(when.remainingBelow(MiB(1)))
      .abortIf(when.stalled({ rounds: 3 })),
  );
  const series = roundSeries([
    MiB(100),
    MiB(40),
    MiB(50),
    MiB(45),
    MiB(40),
    MiB(0.5),
  ]);
  assert.deepEqual(series.map((s) => plan.decide(s)), [
    "continue",
    "continue",
    "continue",
    "continue",
    "abort",
    "switchover",
  ]);
  assert.equal(
    plan.reason!(series[4]),
    "abort: remaining 40.00 MiB has not shrunk below 40.00 MiB since round 1 (for 3 rounds, 3.00 s): stalled",
  );
});

Deno.test("a ramp in switchover and a stall abort, as oVirt's schedules: the allowance grows with each stall until the stall abort", () => {
  const plan = compile(
    policy("p")
      .switchover(
        when.downtimeRamp({
          startMs: 100,
          stepMs: 100,
          maxMs: 300,
          every: { stalls: 1 },
        }),
      )
      .abortIf(when.stalled({ rounds: 4 })),
  );
  // 25 MB at 100 MB/s: 250 ms, allowed after two stalls.
  const fits = roundSeries([MiB(100), MiB(40), MiB(40), MiB(40)], {
    sendRate: MBps(100),
  });
  assert.deepEqual(fits.map((s) => plan.decide(s)), [
    "continue",
    "continue",
    "continue",
    "continue",
  ]);
  const fitsLater = roundSeries([100e6, 25e6, 25e6, 25e6], {
    sendRate: MBps(100),
  });
  assert.deepEqual(fitsLater.map((s) => plan.decide(s)), [
    "continue",
    "continue",
    "continue",
    "switchover",
  ]);
  assert.equal(
    plan.reason!(fitsLater[3]),
    "switchover: estimated downtime 250 ms is at most 300 ms, what the ramp allows after 2 stalled rounds",
  );
  // 50 MB: 500 ms never fits 300 ms; the fourth stall aborts.
  const never = roundSeries([100e6, 50e6, 50e6, 50e6, 50e6, 50e6], {
    sendRate: MBps(100),
  });
  assert.deepEqual(never.map((s) => plan.decide(s)), [
    "continue",
    "continue",
    "continue",
    "continue",
    "continue",
    "abort",
  ]);
});

Deno.test("a time budget per GiB forces completion in switchover and gives up in abortIf", () => {
  const budget = when.elapsedAbovePerGiB(seconds(150));
  const force = compile(
    policy("force").switchover(when.any(when.remainingBelow(MiB(1)), budget)),
  );
  const give = compile(
    policy("give").switchover(when.remainingBelow(MiB(1))).abortIf(budget),
  );
  const vm = { round: 3, memoryBytes: GiB(2), remainingBytes: MiB(500) };
  assertDecides(force, [
    [{ ...vm, elapsedMs: seconds(299) }, "continue"],
    [{ ...vm, elapsedMs: seconds(301) }, "switchover"],
  ]);
  assertDecides(give, [
    [{ ...vm, elapsedMs: seconds(299) }, "continue"],
    [{ ...vm, elapsedMs: seconds(301) }, "abort"],
    // Scaled with the VM: 8 GiB have 20 minutes.
    [{ ...vm, memoryBytes: GiB(8), elapsedMs: seconds(301) }, "continue"],
  ]);
});

Deno.test("a plan whose condition needs RoundStats.history fails clearly on a backend that gives none", () => {
  const plan = compile(
    policy("p").switchover(when.rounds(30)).abortIf(
      when.stalled({ rounds: 3 }),
    ),
  );
  const e = assertPolicyError(
    () => plan.decide(roundStats({ round: 4 })),
    "abortIf",
    /^Invalid policy "p": abortIf condition failed in round 4: Cannot test "remaining bytes have not shrunk for 3 rounds" in round 4: RoundStats\.history is missing/,
  );
  assert.ok(e.cause instanceof PolicyError && e.cause.field === "history");
  // The ramp's stall form too, and only it: the rounds form needs no history.
  const rampPlan = compile(
    policy("r").switchover(
      when.downtimeRamp({
        startMs: 50,
        stepMs: 50,
        maxMs: 500,
        every: { stalls: 1 },
      }),
    ),
  );
  assertPolicyError(
    () => rampPlan.decide(roundStats({ round: 1, sendRate: 1 })),
    "switchover",
    /RoundStats\.history is missing/,
  );
  assert.equal(
    compile(policy("q").switchover(ramp({}))).decide(roundStats({ round: 1 })),
    "continue",
  );
});
