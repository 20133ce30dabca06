/**
 * Helpers shared by the CLI tests (not part of the public API): running a
 * script as a subprocess, a receiver on a free port, a temporary folder.
 *
 * @module
 */

import assert from "node:assert/strict";

/** Absolute path of the `hakobu` CLI entry point, `scripts/hakobu.ts`. */
export const HAKOBU: string = new URL("../hakobu.ts", import.meta.url).pathname;

/** Absolute path of the repository root, where the CLI runs in tests. */
export const ROOT: string = new URL("../../", import.meta.url).pathname;

/** What a finished subprocess left behind. */
export interface CliResult {
  /** Exit code. */
  readonly code: number;
  /** Everything it wrote to stdout. */
  readonly stdout: string;
  /** Everything it wrote to stderr. */
  readonly stderr: string;
}

/**
 * Runs `deno run -A script ...args` from the repository root with
 * `NO_COLOR=1` and waits for it to exit.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const r = await runScript(new URL("../demo.ts", import.meta.url).pathname, []);
 * assert.equal(r.code, 0, r.stderr);
 * ```
 */
export async function runScript(
  script: string,
  args: readonly string[],
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/**
 * Runs the `hakobu` CLI with `args` (see {@link runScript}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const r = await hakobu(["plan"]);
 * assert.match(r.stdout, /Policy "default"/);
 * ```
 */
export function hakobu(args: readonly string[]): Promise<CliResult> {
  return runScript(HAKOBU, args);
}

/** A `hakobu receive` subprocess started by {@link startReceiver}. */
export interface Receiver {
  /** The loopback port it listens on. */
  readonly port: string;
  /**
   * Waits for it to exit (it serves one migration) and returns its exit code
   * and everything it printed, the `listening on` line included.
   */
  finished(): Promise<CliResult>;
  /** Stops it (SIGTERM); {@link finished} then returns what it printed. */
  kill(): void;
}

/**
 * Starts `hakobu receive --listen 127.0.0.1:0 --once --json` with `security`
 * (default `--insecure-plain`) and waits until it prints the port it
 * listens on. The caller awaits
 * {@link Receiver.finished}, which also releases the subprocess.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const receiver = await startReceiver();
 * await hakobu(["migrate", "--from", "sim:idle", "--to", `127.0.0.1:${receiver.port}`]);
 * assert.equal((await receiver.finished()).code, 0);
 * ```
 */
export async function startReceiver(
  security: string[] = ["--insecure-plain"],
): Promise<Receiver> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      HAKOBU,
      "receive",
      ...security,
      "--listen",
      "127.0.0.1:0",
      "--once",
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  while (!stdout.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) break;
    stdout += value;
  }
  const port = /listening on [^:]+:(\d+)/.exec(stdout)?.[1];
  if (!port) {
    await lines.cancel();
    try {
      child.kill();
    } catch {
      // already exited
    }
    await child.status;
    assert.fail(
      `receiver did not print its port: ${stdout}${await stderr}`,
    );
  }
  return {
    port,
    kill: () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
    },
    async finished(): Promise<CliResult> {
      for (;;) {
        const { value, done } = await lines.read();
        if (done) break;
        stdout += value;
      }
      const { code } = await child.status;
      return { code, stdout, stderr: await stderr };
    },
  };
}

/**
 * Runs `fn` with a new temporary folder and removes the folder afterwards,
 * whether `fn` succeeds or throws.
 *
 * @example
 * ```ts
 * await withTempDir(async (dir) => {
 *   await Deno.writeTextFile(`${dir}/bad.ts`, "export const x = 1;\n");
 * });
 * ```
 */
export async function withTempDir(
  fn: (dir: string) => Promise<void>,
  options: Deno.MakeTempOptions = {},
): Promise<void> {
  const dir = await Deno.makeTempDir(options);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
