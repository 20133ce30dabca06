/**
 * Xen's own stream checker for tests: `verify-stream-v2` from Debian's
 * `xen-utils-4.17` (Python, `tools/python/scripts/verify-stream-v2`, its
 * module under `/usr/lib/xen-4.17/lib/python`). It reads a libxc image
 * (`-f libxc`), a libxl stream (`-f libxl`) or xl's save/migrate stream
 * (`-f xl`: xl's header, then libxl's records with the libxc image after
 * LIBXC_CONTEXT), checks each record's shape (reserved fields zero, sizes,
 * padding, PAGE_DATA's length against its pfn types) and stops at libxl's
 * END. It refuses big-endian streams on a little-endian host.
 *
 * @module
 */

/** Where Debian installs it; `HAKOBU_VERIFY_STREAM_V2` overrides. */
export const VERIFY_STREAM_V2 = "/usr/lib/xen-4.17/bin/verify-stream-v2";
/** Its Python package (`xen.migration`), not on Python's default path. */
export const XEN_PYTHONPATH = "/usr/lib/xen-4.17/lib/python";

/** What {@link verifyStreamV2} saw. */
export interface StreamVerdict {
  /** Exit status 0: the stream follows the spec. */
  readonly ok: boolean;
  readonly code: number;
  /** `-v` output: one line per header and record, PAGE_DATA runs squashed. */
  readonly stdout: string;
  readonly stderr: string;
  /** PAGE_DATA records, summed over its "Squashed N Page Data records together" lines. */
  readonly pageDataRecords: number;
  /** The other libxc records it named, in order (e.g. `"x86 CPUID policy"`). */
  readonly libxcRecords: readonly string[];
}

/**
 * Runs `verify-stream-v2 -v -f FORMAT -i FILE` on `bytes` (through a
 * temporary file).
 *
 * @example
 * ```ts ignore
 * const v = await verifyStreamV2(bytes, "xl");
 * if (!v.ok) console.error(v.stderr);
 * ```
 * @throws {Error} naming the package to install when the script is missing.
 */
export async function verifyStreamV2(
  bytes: Uint8Array,
  format: "libxc" | "libxl" | "xl",
): Promise<StreamVerdict> {
  const path = Deno.env.get("HAKOBU_VERIFY_STREAM_V2") ?? VERIFY_STREAM_V2;
  try {
    await Deno.stat(path);
  } catch {
    throw new Error(
      `Xen's verify-stream-v2 not found at "${path}": apt-get install xen-utils-4.17 (or set HAKOBU_VERIFY_STREAM_V2)`,
    );
  }
  // a file, not stdin: it reads stdin unbuffered and takes a short read
  // of a pipe for a truncated stream
  const file = await Deno.makeTempFile({ suffix: `.${format}` });
  let o: Deno.CommandOutput;
  try {
    await Deno.writeFile(file, bytes);
    o = await new Deno.Command(path, {
      args: ["-v", "-f", format, "-i", file],
      env: { PYTHONPATH: XEN_PYTHONPATH },
      stdout: "piped",
      stderr: "piped",
    }).output();
  } finally {
    await Deno.remove(file);
  }
  const td = new TextDecoder();
  const stdout = td.decode(o.stdout);
  let pageDataRecords = 0;
  for (const m of stdout.matchAll(/Squashed (\d+) Page Data records/g)) {
    pageDataRecords += Number(m[1]);
  }
  const libxcRecords = [...stdout.matchAll(/^Libxc Record: (.+), length/gm)]
    .map((m) => m[1]);
  return {
    ok: o.code === 0,
    code: o.code,
    stdout,
    stderr: td.decode(o.stderr),
    pageDataRecords,
    libxcRecords,
  };
}
