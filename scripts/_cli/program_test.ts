import assert from "node:assert/strict";
import { CommanderError, Option } from "@commander-js/extra-typings";
import { cliProgram, runCli, usageMessage } from "./program.ts";
import { integer } from "./options.ts";

Deno.test("usageMessage: the flag or argument first, then the reason; other errors in sentence case on one line", () => {
  const cases: [string, string][] = [
    [
      `error: option '--runs <n>' argument 'x' is invalid. expected a whole number ≥ 1, got "x"\n`,
      `--runs: expected a whole number ≥ 1, got "x"`,
    ],
    [
      `error: option '-c, --channels <n>' argument '0' is invalid. expected a whole number from 1 to 64, got "0"`,
      `--channels: expected a whole number from 1 to 64, got "0"`,
    ],
    [
      "error: option '--app <name>' argument 'mysql' is invalid. Allowed choices are memcached, postgres.",
      `--app: expected one of memcached, postgres, got "mysql"`,
    ],
    [
      `error: command-argument value 'x' is invalid for argument 'domid'. expected a whole number ≥ 0, got "x"`,
      `<domid>: expected a whole number ≥ 0, got "x"`,
    ],
    [
      "error: unknown option '--codec'\n(Did you mean --codecs?)",
      "Unknown option '--codec' (Did you mean --codecs?)",
    ],
    [
      "error: required option '--to <host:port>' not specified",
      "Required option '--to <host:port>' not specified",
    ],
    ["Missing mode: expected a or b", "Missing mode: expected a or b"],
  ];
  for (const [text, message] of cases) {
    assert.equal(usageMessage(text), message);
  }
});

/** A program with one checked flag, one choice and an action that reports its exit code. */
function demo(errors: string[], out: string[], usageExitCode?: number) {
  return (setExit: (code: number) => void) =>
    cliProgram("demo", {
      error: (m) => errors.push(m),
      out: (t) => out.push(t),
      usageExitCode,
    })
      .option("--runs <n>", "how many runs", integer({ min: 1 }), 3)
      .addOption(
        new Option("--app <name>", "the guest's app").choices(
          ["memcached", "postgres"] as const,
        ),
      )
      .action((o) => {
        if (o.runs === 13) throw new Error("Unlucky run count");
        setExit(o.runs);
      });
}

Deno.test("runCli: the action's exit code, 0 after help, the usage error's code, 1 when the action throws", async () => {
  const errors: string[] = [];
  const out: string[] = [];
  assert.equal(await runCli(demo(errors, out), []), 3);
  assert.equal(await runCli(demo(errors, out), ["--runs", "7"]), 7);
  assert.deepEqual(errors, []);

  assert.equal(await runCli(demo(errors, out), ["--help"]), 0);
  assert.match(out.join(""), /^Usage: demo \[options\]/);
  assert.match(
    out.join(""),
    /--app <name> +the guest's app \(choices: "memcached", "postgres"\)/,
  );

  assert.equal(await runCli(demo(errors, out), ["--runs", "0"]), 1);
  assert.equal(await runCli(demo(errors, out, 2), ["--app", "mysql"]), 2);
  assert.equal(await runCli(demo(errors, out, 2), ["--nope"]), 2);
  assert.deepEqual(errors, [
    `--runs: expected a whole number ≥ 1, got "0"`,
    `--app: expected one of memcached, postgres, got "mysql"`,
    "Unknown option '--nope'",
  ]);

  const logged: string[] = [];
  const error = console.error;
  console.error = (...a: unknown[]) => logged.push(a.join(" "));
  try {
    assert.equal(await runCli(demo(errors, out), ["--runs", "13"]), 1);
  } finally {
    console.error = error;
  }
  assert.deepEqual(logged, ["demo: Unlucky run count"]);
});

Deno.test("cliProgram: subcommands inherit the wording and the thrown errors", () => {
  const errors: string[] = [];
  const cli = cliProgram("demo", { error: (m) => errors.push(m) });
  cli.command("sub").option("--n <n>", "n", integer()).action(() => {});
  assert.throws(
    () => cli.parse(["sub", "--n", "x"], { from: "user" }),
    (e: unknown) => e instanceof CommanderError && e.exitCode === 1,
  );
  assert.deepEqual(errors, [`--n: expected a whole number ≥ 0, got "x"`]);
});
