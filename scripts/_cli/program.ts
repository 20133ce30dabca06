/**
 * How every entry point runs its commander program: {@link cliProgram}
 * makes the root command (errors worded the same way everywhere, and
 * thrown instead of ending the process, so tests can read them), and
 * {@link runCli} parses `Deno.args` with it and returns the exit code.
 *
 * A usage error names the flag and says why: commander's
 * `error: option '--channels <n>' argument 'x' is invalid. expected ...`
 * becomes `--channels: expected a whole number from 1 to 64, got "x"`
 * ({@link usageMessage}).
 *
 * @module
 */

import {
  Command,
  CommanderError,
  type CommandUnknownOpts,
} from "@commander-js/extra-typings";

/** Where a program writes; the defaults are stdout and stderr. */
export interface CliOutput {
  /** Help text (default: stdout). */
  readonly out?: (text: string) => void;
  /**
   * One usage error, already worded by {@link usageMessage} (default:
   * `NAME: message` on stderr).
   */
  readonly error?: (message: string) => void;
  /** Exit code of a usage error (default 1). */
  readonly usageExitCode?: number;
}

/**
 * A usage error as people read it: the flag or argument first, then
 * commander's reason or the parser's (see `options.ts`); other errors in
 * sentence case on one line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   usageMessage(`error: option '-c, --channels <n>' argument 'x' is invalid. expected a whole number from 1 to 64, got "x"`),
 *   `--channels: expected a whole number from 1 to 64, got "x"`,
 * );
 * assert.equal(
 *   usageMessage("error: unknown option '--codec'\n(Did you mean --codecs?)"),
 *   "Unknown option '--codec' (Did you mean --codecs?)",
 * );
 * ```
 */
export function usageMessage(text: string): string {
  const s = text.trim().replace(/^error: /, "");
  const option =
    /^option '([^']*)' argument '([\s\S]*?)' is invalid\. ([\s\S]*)$/
      .exec(s);
  if (option) {
    const flag = option[1].split(/[\s,]+/).filter((w) => w.startsWith("-"))
      .at(-1) ?? option[1];
    return `${flag}: ${reason(option[3], option[2])}`;
  }
  const argument =
    /^command-argument value '([\s\S]*?)' is invalid for argument '([^']*)'\. ([\s\S]*)$/
      .exec(s);
  if (argument) {
    return `<${argument[2]}>: ${reason(argument[3], argument[1])}`;
  }
  return (s.charAt(0).toUpperCase() + s.slice(1)).replace(/\s*\n\s*/g, " ");
}

/** Commander's own reasons say the value too (its choices, for one). */
function reason(why: string, value: string): string {
  const choices = /^Allowed choices are (.*)\.$/.exec(why);
  return choices ? `expected one of ${choices[1]}, got "${value}"` : why;
}

/**
 * A root command named `name` that throws commander's errors instead of
 * ending the process (help and `--version` too, with exit code 0), and
 * reports each usage error through `output.error`. Subcommands made with
 * `.command()` inherit both; one added with `.addCommand()` keeps its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { integer } from "./options.ts";
 *
 * const errors: string[] = [];
 * const cli = cliProgram("demo", { error: (m) => errors.push(m) })
 *   .option("--runs <n>", "runs", integer({ min: 1 }), 3);
 * assert.throws(() => cli.parse(["--runs", "0"], { from: "user" }));
 * assert.deepEqual(errors, [`--runs: expected a whole number ≥ 1, got "0"`]);
 * ```
 */
export function cliProgram(name: string, output: CliOutput = {}): Command {
  const error = output.error ??
    ((message: string) => console.error(`${name}: ${message}`));
  const usageExitCode = output.usageExitCode ?? 1;
  return new Command(name)
    .exitOverride((e) => {
      // Help asked for ends with 0; every other way out is a usage error.
      throw e.exitCode === 0
        ? e
        : new CommanderError(usageExitCode, e.code, e.message);
    })
    .configureOutput({
      ...(output.out ? { writeOut: output.out } : {}),
      outputError: (text) => error(usageMessage(text)),
    });
}

/**
 * Parses `args` (as `Deno.args`: no program name) with the program `build`
 * makes, runs the chosen action and returns the exit code: what the action
 * passed to `setExit` (default 0), the usage error's code (already
 * reported), 0 after help, or 1 when the action threw (reported as
 * `NAME: message` on stderr).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const code = await runCli(
 *   (setExit) => cliProgram("demo").action(() => setExit(3)),
 *   [],
 * );
 * assert.equal(code, 3);
 * ```
 */
export async function runCli(
  build: (setExit: (code: number) => void) => CommandUnknownOpts,
  args: readonly string[],
): Promise<number> {
  let code = 0;
  const program = build((c) => (code = c));
  try {
    await program.parseAsync([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    console.error(
      `${program.name()}: ${e instanceof Error ? e.message : String(e)}`,
    );
    return 1;
  }
  return code;
}

/**
 * Parses `args` with a program that has no action (a script that runs
 * top to bottom) and returns its options; after help or a usage error
 * (already reported) the process exits with its code.
 *
 * @example
 * ```ts ignore
 * const o = parseOrExit(
 *   cliProgram("bench_gpu.ts").option("--batch <n>", "pages per batch", integer({ min: 1 }), 4096),
 *   Deno.args,
 * );
 * o.batch; // 4096
 * ```
 */
export function parseOrExit<C extends CommandUnknownOpts>(
  program: C,
  args: readonly string[],
): ReturnType<C["opts"]> {
  try {
    program.parse([...args], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) Deno.exit(e.exitCode);
    throw e;
  }
  return program.opts() as ReturnType<C["opts"]>;
}
