/**
 * The REPL prelude: `deno task repl` runs
 * `deno repl -A --eval-file=scripts/repl_prelude.ts`, which evaluates this
 * file before the first prompt. It puts the DSL, the units, the sim VM
 * factory, the lab helpers and the Xen helpers (`repl_xen.ts`) on
 * `globalThis` and prints a banner.
 *
 * An eval-file is evaluated as REPL input, not as a module: `import.meta` is
 * not available, and a relative `import` resolves against the current
 * directory, not against this file. So the prelude finds the repository from
 * the current directory (or `$HAKOBU_ROOT`) and imports by absolute URL; the
 * `typeof import(...)` annotations keep `deno check` on the real types.
 * Elsewhere: `HAKOBU_ROOT=/path deno repl -A --config /path/deno.json
 * --eval-file=/path/scripts/repl_prelude.ts` (the import map comes from the
 * config, which Deno looks for from the current directory).
 *
 * @example
 * ```sh
 * deno task repl
 * # > const r = await tryPolicy(policy("p").switchover(when.rounds(3)), { mem: "64MiB" })
 * # > console.log(roundTable(r))
 * ```
 *
 * @module
 */

/** The repository root: `$HAKOBU_ROOT`, else the nearest directory up from the CWD holding mod.ts and scripts/lab.ts. */
function hakobuRoot(): string {
  const fromEnv = Deno.env.get("HAKOBU_ROOT");
  if (fromEnv) return fromEnv.replace(/\/+$/, "");
  let dir = Deno.cwd();
  for (;;) {
    try {
      Deno.statSync(`${dir}/mod.ts`);
      Deno.statSync(`${dir}/scripts/lab.ts`);
      return dir;
    } catch { /* not here */ }
    const up = dir.replace(/\/[^/]+$/, "");
    if (up === dir || up === "") break;
    dir = up;
  }
  throw new Error(
    `Cannot find hakobu from "${Deno.cwd()}": run the REPL in the repository (deno task repl), or set HAKOBU_ROOT and pass --config with its deno.json`,
  );
}

const hakobuDir: string = hakobuRoot();
const hakobu: typeof import("../mod.ts") = await import(
  `file://${hakobuDir}/mod.ts`
);
const lab: typeof import("./lab.ts") = await import(
  `file://${hakobuDir}/scripts/lab.ts`
);
const xen: typeof import("./repl_xen.ts") = await import(
  `file://${hakobuDir}/scripts/repl_xen.ts`
);

/** Name, signature and a one-line example of each thing the prelude provides. */
const HELP: readonly (readonly [string, string])[] = [
  [
    "policy(name)",
    `const p = policy("p").codec([codec.zero(), codec.raw()]).switchover(when.rounds(5))`,
  ],
  [
    "codec.*",
    `codec.zero(), codec.rle(), codec.delta(), codec.dedup(), codec.lz4(), codec.zstd(), codec.raw()`,
  ],
  [
    "when.*",
    `when.any(when.remainingBelow(MiB(64)), when.rounds(30)); when.elapsedAbove(minutes(10))`,
  ],
  [
    "convergence",
    `when.stalled({ rounds: 3 }); when.downtimeRamp({ startMs: 50, stepMs: 50, maxMs: 500, every: { rounds: 2 } }); when.elapsedAbovePerGiB(seconds(150))`,
  ],
  [
    "faults",
    `p.deadlines({ reply: seconds(30), downtime: ms(500) }).resume({ grace: seconds(30), attempts: 3 })  // a lost link during pre-copy resumes`,
  ],
  [
    "roundSeries(remaining)",
    `roundSeries([MiB(64), MiB(64), MiB(64)]).map((s) => compile(p).decide(s))  // made-up rounds, with history`,
  ],
  [
    "compile(p)",
    `compile(p).bandwidth  // checks a policy, gives the engine's plan`,
  ],
  ["explain(p)", `console.log(explain(p))  // the policy in words`],
  [
    "loadPolicy(path)",
    `const plan = await loadPolicy("examples/policies/default.ts")`,
  ],
  ["KiB MiB GiB", `MiB(64) === 67108864`],
  ["Gbit Mbit", `Gbit(1) === 125000000  // bytes per second`],
  ["ms seconds minutes", `seconds(2) === 2000  // milliseconds`],
  [
    "workloadNames()",
    `workloadNames()  // ["idle", "zero", ..., "memcached", ...]`,
  ],
  [
    "simVm(workload, opts)",
    `const vm = await simVm("postgres", { mem: "256MiB", seed: 7 }); await vm.close()`,
  ],
  [
    "tryPolicy(p, opts)",
    `const r = await tryPolicy(p, { workload: "memcached", mem: "64MiB", bandwidth: "1Gbit" })`,
  ],
  [
    "roundTable(report)",
    `console.log(roundTable(r))  // rounds, then totals (VERIFIED, downtime, bytes)`,
  ],
  [
    "roundChart(report, field)",
    `console.log(roundChart(r, "wireBytes"))  // dirtyPages, pagesSent, durationMs, sendRate, ...`,
  ],
  [
    "compare(a, b, opts)",
    `const c = await compare(p, p2, { workload: "memcached", mem: "64MiB", seed: 3 }); console.log(c.table)`,
  ],
  [
    "xenDirtyRate(domid, interval)",
    `await xenDirtyRate(7, "2s")  // on a Xen dom0: pages dirtied, bytes/s`,
  ],
  [
    "xenMigrate(domain, policy, opts)",
    `await xenMigrate("vm1", p, { receiver: "ssh host2 xl migrate-receive" })  // on a dom0`,
  ],
  [
    "hakobu.*  lab.*",
    `hakobu.migrate, hakobu.receiveMigration, hakobu.SimVm, ...: the whole public API`,
  ],
];

/** Prints what the prelude provides, one line of example each. */
function help(): void {
  const w = Math.max(...HELP.map(([name]) => name.length));
  console.log("hakobu REPL: the policy DSL, units, sim VMs and the lab");
  for (const [name, example] of HELP) {
    console.log(`  ${name.padEnd(w)}  ${example}`);
  }
  console.log(
    "Results of await print at the prompt; wrap tables and charts in console.log(). close() or ctrl+d leaves.",
  );
}

Object.assign(globalThis, {
  hakobu,
  lab,
  policy: hakobu.policy,
  codec: hakobu.codec,
  when: hakobu.when,
  compile: hakobu.compile,
  explain: hakobu.explain,
  roundSeries: hakobu.roundSeries,
  loadPolicy: hakobu.loadPolicy,
  KiB: hakobu.KiB,
  MiB: hakobu.MiB,
  GiB: hakobu.GiB,
  Gbit: hakobu.Gbit,
  Mbit: hakobu.Mbit,
  ms: hakobu.ms,
  seconds: hakobu.seconds,
  minutes: hakobu.minutes,
  workloadNames: hakobu.workloadNames,
  simVm: lab.simVm,
  tryPolicy: lab.tryPolicy,
  compare: lab.compare,
  roundChart: lab.roundChart,
  roundTable: lab.roundTable,
  xenDirtyRate: xen.xenDirtyRate,
  xenMigrate: xen.xenMigrate,
  help,
});

console.log("hakobu REPL — help() lists what is here");
