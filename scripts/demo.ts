/**
 * `deno task demo`: the main job on the embedded default. Starts a receiver
 * in a second process on loopback TCP, migrates a 1 GiB simulated memcached
 * VM to it with examples/policies/default.ts while the workload keeps
 * writing, prints the round table and totals, and writes
 * out/demo-report.json. Exits non-zero unless both sides verified the memory
 * digest.
 *
 *   deno task demo [--workload memcached] [--mem 1GiB] [--seed 1] [--policy FILE] [--report FILE]
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import { loadPolicy } from "../dsl/mod.ts";
import { workloadNames } from "../engine/sim/mod.ts";
import { migrateCommand } from "./_cli/migrate.ts";
import { integer, size } from "./_cli/options.ts";
import { cliProgram, parseOrExit } from "./_cli/program.ts";
import { DEFAULT_POLICY } from "./hakobu.ts";

const values = parseOrExit(
  cliProgram("demo")
    .description(
      "Migrates a simulated VM to a receiver in a second process and checks that both sides verified it.",
    )
    .addOption(
      new Option("--workload <name>", "sim workload").choices(workloadNames())
        .default("memcached"),
    )
    .addOption(
      new Option("--mem <size>", "memory of the sim VM").argParser(size)
        .default(2 ** 30, "1GiB"),
    )
    .option("--seed <n>", "seed of the sim workload", integer(), 1)
    .addOption(
      new Option("--policy <file>", "policy file").default(
        DEFAULT_POLICY,
        "examples/policies/default.ts",
      ),
    )
    .option("--report <file>", "JSON report", "out/demo-report.json"),
  Deno.args,
);

const receiver = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./hakobu.ts", import.meta.url).pathname,
    "receive",
    "--listen",
    "127.0.0.1:0",
    "--once",
    "--json",
  ],
  stdout: "piped",
  stderr: "inherit",
}).spawn();

// The receiver's first line is "listening on HOST:PORT".
const lines = receiver.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(
  splitLines(),
);
const reader = lines.getReader();
const first = await reader.read();
const m = /listening on (\S+):(\d+)/.exec(first.value ?? "");
if (!m) {
  console.error(
    `demo: the receiver did not start (it printed "${first.value ?? ""}")`,
  );
  Deno.exit(1);
}
const to = `${m[1]}:${m[2]}`;
console.error(`demo: receiver process ${receiver.pid} listening on ${to}`);

const plan = await loadPolicy(values.policy);
let code = 1;
try {
  const result = await migrateCommand({
    from: `sim:${values.workload}`,
    memoryBytes: values.mem,
    seed: values.seed,
    to,
    plan,
    report: values.report,
  });
  code = result.code;
} catch (error) {
  console.error(
    `demo: migration failed: ${error instanceof Error ? error.message : error}`,
  );
  try {
    receiver.kill();
  } catch { /* already gone */ }
}

// The receiver's own verdict must agree.
const verdict = await reader.read();
const status = await receiver.status;
let receiverVerified = false;
try {
  receiverVerified = JSON.parse(verdict.value ?? "{}").verified === true;
} catch { /* not JSON: counts as not verified */ }
if (!receiverVerified || !status.success) {
  console.error(
    `demo: the receiver did not verify the migration (exit ${status.code}): ${
      verdict.value ?? "no answer"
    }`,
  );
  code = 1;
} else {
  console.error(`demo: receiver process verified the memory digest too`);
}
Deno.exit(code);

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest) ctl.enqueue(rest);
    },
  });
}
