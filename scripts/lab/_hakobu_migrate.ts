/**
 * `hakobu migrate ... --json` as a lab test runs it: a policy written to a
 * file, the CLI in a process of its own, the report read back.
 *
 * @module
 */

const MOD = new URL("../../mod.ts", import.meta.url).href;
const HAKOBU = new URL("../hakobu.ts", import.meta.url).pathname;

/** What {@link hakobuMigrate} saw: the exit code, stderr and the JSON report (null when none came). */
export interface CliMigration {
  readonly code: number;
  readonly stderr: string;
  // deno-lint-ignore no-explicit-any
  readonly report: any;
}

/**
 * Writes `policy` (an expression over `codec`, `MiB`, `policy`, `when`,
 * e.g. `policy("p").switchover(when.rounds(3))`) to `dir/p.ts` as its
 * default export and runs `hakobu migrate --policy dir/p.ts --json ARGS`.
 */
export async function hakobuMigrate(
  dir: string,
  policy: string,
  args: readonly string[],
): Promise<CliMigration> {
  const file = `${dir}/p.ts`;
  await Deno.writeTextFile(
    file,
    `import { codec, MiB, policy, when } from "${MOD}";\n` +
      `export default ${policy};\n`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", HAKOBU, "migrate", ...args, "--policy", file, "--json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  let report = null;
  try {
    report = JSON.parse(stdout);
  } catch { /* no report: the exit code and stderr say why */ }
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr),
    report,
  };
}
