/**
 * Drives the real `deno repl` with the prelude, unattended.
 *
 * How: `deno repl` evaluates piped stdin line by line when stdin is not a
 * terminal (Deno 2.9.6): it prints each result (or `undefined`) and what the
 * code logs, with no prompt and no echo of the input, and exits at `close()`
 * or EOF. So the test spawns `deno repl -A --eval-file=scripts/repl_prelude.ts`
 * from the repository root (relative imports in an eval-file resolve against
 * the current directory) with NO_COLOR=1, writes the walkthrough in
 * examples/repl_session.txt to stdin, closes it, and reads stdout and stderr.
 * No pty (script, tmux) is needed.
 */

import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** Runs the REPL in `cwd` with `input` on stdin; resolves with its exit code and all output. */
async function runRepl(
  input: string,
  { cwd = ROOT, evalFile = "scripts/repl_prelude.ts" } = {},
): Promise<{ code: number; out: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["repl", "-A", `--eval-file=${evalFile}`],
    cwd,
    env: { NO_COLOR: "1", DENO_REPL_HISTORY: "" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}

Deno.test("the REPL walkthrough runs in the real deno repl", async () => {
  const session = await Deno.readTextFile(
    `${ROOT}/examples/repl_session.txt`,
  );
  // The walkthrough is small and unpaced: a few seconds end to end.
  assert.match(session, /mem: "64MiB"/);
  assert.match(session, /bandwidth\(null\)/);
  // A stall condition tried on made-up rounds: it needs their history.
  const stall =
    `roundSeries([MiB(64), MiB(64), MiB(64), MiB(64)]).map((s) => compile(policy("s").switchover(when.remainingBelow(MiB(1))).abortIf(when.stalled({ rounds: 2 }))).decide(s)).join("+")\n`;
  const { code, out } = await runRepl(
    session.replace(/^close\(\)\s*$/m, stall + "close()\n"),
  );
  const context = `REPL output:\n${out}`;
  assert.equal(code, 0, context);
  assert.doesNotMatch(out, /Uncaught|Error in --eval-file/, context);
  // Banner, printed by the prelude before Deno's own.
  assert.match(out, /^hakobu REPL — help\(\) lists what is here$/m, context);
  // help(): a line per name with an example.
  for (
    const name of [
      "policy(name)",
      "codec.*",
      "when.*",
      "convergence",
      "faults",
      "roundSeries(remaining)",
      "loadPolicy(path)",
      "KiB MiB GiB",
      "simVm(workload, opts)",
      "tryPolicy(p, opts)",
      "roundTable(report)",
      "roundChart(report, field)",
      "compare(a, b, opts)",
      "xenDirtyRate(domid, interval)",
      "xenMigrate(domain, policy, opts)",
    ]
  ) {
    assert.ok(
      out.includes(`\n  ${name} `),
      `help() lacks "${name}"\n${context}`,
    );
  }
  assert.match(out, /"memcached"/, context); // workloadNames()
  assert.match(out, /"continue\+continue\+abort\+abort"/, context); // roundSeries + when.stalled
  assert.match(out, /^Policy "plain"$/m, context); // explain()
  // tryPolicy + roundTable: the rounds, then a verified result.
  assert.match(out, /^true$/m, context); // r.verified
  assert.match(out, /^│ 0 +│ 16384 │ 64\.00 MiB/m, context);
  assert.match(out, /^│ \d+ \(stop\) /m, context);
  assert.match(out, /^result +VERIFIED \(memory digests match\)$/m, context);
  // roundChart: a titled asciichart with the rounds below.
  assert.match(out, /^wireBytes per round \(plain, \d+ rounds\)$/m, context);
  assert.match(out, /MiB [┼┤]─/, context);
  assert.match(out, /^ +0 .*S +\(round; S = stop-and-copy\)$/m, context);
  // compare: both policies side by side, both verified.
  assert.match(out, /^│ +│ plain +│ delta +│$/m, context);
  assert.match(out, /^│ downtime /m, context);
  assert.match(out, /^│ verified +│ VERIFIED +│ VERIFIED +│$/m, context);
});

Deno.test("the prelude finds the repository from a subdirectory", async () => {
  const { code, out } = await runRepl(
    `[typeof tryPolicy, typeof when.rounds, MiB(1)].join(" ")\n`,
    { cwd: `${ROOT}/scripts`, evalFile: "repl_prelude.ts" },
  );
  assert.equal(code, 0, out);
  assert.match(out, /^hakobu REPL — help\(\) lists what is here$/m, out);
  assert.match(out, /^"function function 1048576"$/m, out);
});
