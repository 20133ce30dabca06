/**
 * The labs' way to run a system command (ip, modinfo, cpio, ...): its
 * stdout, or an error with its exit code and the end of its stderr.
 *
 * @module
 */

/**
 * Runs a command and returns its stdout; throws with its exit code and the
 * last 2000 characters of its stderr when it fails, unless `allowFail`.
 *
 * @example
 * ```ts ignore
 * await sh(["ip", "netns", "list"]);
 * ```
 */
export async function sh(
  argv: readonly string[],
  options: { readonly allowFail?: boolean; readonly cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const td = new TextDecoder();
  if (!out.success && !options.allowFail) {
    throw new Error(
      `Command "${argv.join(" ")}" failed (exit ${out.code}): ${
        td.decode(out.stderr).trim().slice(-2000)
      }`,
    );
  }
  return td.decode(out.stdout);
}
