/**
 * `deno task demo`: the main job on the embedded default. Starts a receiver
 * in a second process on loopback TCP, migrates a 1 GiB simulated memcached
 * VM to it with examples/policies/default.ts while the workload keeps
 * writing, over TLS with throwaway credentials (a fresh CA, the receiver's
 * certificate, the source's client certificate: what `hakobu tls init`
 * makes), prints the round table and totals, and writes
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
import { generateCredentials } from "../engine/transport/secure/generate.ts";
import { migrateCommand } from "./_cli/migrate.ts";
import { integer, size } from "./_cli/options.ts";
import { cliProgram, parseOrExit } from "./_cli/program.ts";
import { DEFAULT_POLICY } from "./hakobu.ts";
import { ReceiverProcess } from "./_receiver_process.ts";

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

const credentials = await Deno.makeTempDir({ prefix: "hakobu-demo-tls-" });
await generateCredentials(credentials, { sourceIdentity: "demo-source" });
console.error(`demo: throwaway TLS credentials in ${credentials}`);

let receiver: ReceiverProcess;
try {
  receiver = await ReceiverProcess.start([
    "--once",
    "--tls-dir",
    credentials,
    "--tls-authz",
    "demo-source",
  ]);
} catch (e) {
  console.error(`demo: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
const to = `${receiver.hostname}:${receiver.port}`;
console.error(`demo: receiver process ${receiver.pid} listening on ${to}`);

const plan = await loadPolicy(values.policy);
let code = 1;
try {
  const result = await migrateCommand({
    from: `sim:${values.workload}`,
    memoryBytes: values.mem,
    seed: values.seed,
    to,
    security: { tlsDir: credentials },
    plan,
    report: values.report,
  });
  code = result.code;
} catch (error) {
  console.error(
    `demo: migration failed: ${error instanceof Error ? error.message : error}`,
  );
  receiver.kill();
}

// The receiver's own verdict must agree.
const verdict = await receiver.verdict();
const status = await receiver.status;
if (!verdict.verified || !status.success) {
  console.error(
    `demo: the receiver did not verify the migration (exit ${status.code}): ${
      verdict.line || "no answer"
    }`,
  );
  code = 1;
} else {
  console.error(`demo: receiver process verified the memory digest too`);
}
await Deno.remove(credentials, { recursive: true });
Deno.exit(code);
