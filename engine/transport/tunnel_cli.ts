/**
 * The stream tunnel's command-line helpers (`scripts/tunnel.ts qemu|xen
 * send|receive`, also `hakobu tunnel ...`): strict flag parsing with clear
 * errors, the `--codecs` list, `--bandwidth` and the one-JSON-line-on-stderr
 * ending that the labs and QEMU's `exec:` callers read.
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * Parses a tunnel's flags (`--name value` only); an unknown flag, a flag
 * without its value or a stray word fails with a message that names it.
 *
 * @example
 * ```ts
 * const f = tunnelFlags(["--to", "h:4445", "--codecs", "zero,lz4"], ["to", "codecs"]);
 * f.to; // "h:4445"
 * ```
 */
export function tunnelFlags(
  args: readonly string[],
  names: readonly string[],
): Record<string, string | undefined> {
  try {
    const { values } = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        names.map((n) => [n, { type: "string" as const }]),
      ),
      strict: true,
      allowPositionals: false,
    });
    return { ...values } as Record<string, string | undefined>;
  } catch (e) {
    throw new Error(
      `${(e as Error).message} (this mode takes ${
        names.map((n) => `--${n}`).join(", ")
      })`,
    );
  }
}

/** `--codecs zero,lz4` as a chain (default `zero`); an empty name fails. */
export function codecList(value: string | undefined): { name: string }[] {
  const names = (value ?? "zero").split(",").map((n) => n.trim());
  if (names.some((n) => n === "")) {
    throw new Error(
      `Bad --codecs "${value}": expected names separated by commas, e.g. zero,lz4`,
    );
  }
  return names.map((name) => ({ name }));
}

/** `--bandwidth` in bytes per second, or null when absent. */
export function bandwidthFlag(value: string | undefined): number | null {
  if (value === undefined) return null;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new Error(
      `Bad --bandwidth "${value}": expected bytes per second, a positive number`,
    );
  }
  return n;
}

/**
 * Runs a tunnel's `main` as the process: its statistics go to stderr as one
 * JSON line `{"ok":true,...}` and the process exits 0; any failure prints
 * `{"ok":false,"error":...}` and exits 1.
 */
export async function runTunnelMain(
  main: (args: string[]) => Promise<object>,
): Promise<never> {
  try {
    const stats = await main(Deno.args);
    console.error(JSON.stringify({ ok: true, ...stats }));
    Deno.exit(0);
  } catch (e) {
    console.error(
      JSON.stringify({ ok: false, error: String((e as Error).message ?? e) }),
    );
    Deno.exit(1);
  }
}
