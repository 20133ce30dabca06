/**
 * Larger pipes for the tunnels' stdin and stdout. A Linux pipe holds 64 KiB
 * by default, so a tunnel reading QEMU's `exec:` stream (or xl's) gets at
 * most 64 KiB per read: over a thousand reads, parser calls and hash
 * updates for every 100 MB. `F_SETPIPE_SZ` raises the pipe's capacity (up
 * to `/proc/sys/fs/pipe-max-size`, 1 MiB unless changed) so one read can
 * take up to that much; the writer is not affected otherwise.
 *
 * It needs libc through FFI (`--allow-ffi`); without it, or on a file, a
 * terminal or a socket, nothing changes.
 *
 * @module
 */

/** `fcntl` commands from `<fcntl.h>` (Linux). */
const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;

let fcntl:
  | ((fd: number, cmd: number, arg: number) => number)
  | null
  | undefined;

function loadFcntl():
  | ((fd: number, cmd: number, arg: number) => number)
  | null {
  if (fcntl !== undefined) return fcntl;
  fcntl = null;
  if (Deno.build.os !== "linux") return null;
  try {
    const lib = Deno.dlopen("libc.so.6", {
      fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    });
    fcntl = (fd, cmd, arg) => lib.symbols.fcntl(fd, cmd, arg);
  } catch {
    // no FFI permission or no glibc: pipes keep their size
  }
  return fcntl;
}

/**
 * Raises the capacity of the pipe at file descriptor `fd` to `bytes` (or the
 * system's most, if less). Returns the capacity it has now, or null when
 * `fd` is not a pipe or the size cannot be changed here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * // A child whose stdin is a pipe, as a tunnel's is, grows it.
 * const child = new Deno.Command(Deno.execPath(), {
 *   args: [
 *     "eval",
 *     `import { growPipe } from "${import.meta.resolve("./pipe_size.ts")}";
 *     console.log(growPipe(0));`,
 *   ],
 *   stdin: "piped",
 *   stdout: "piped",
 * }).spawn();
 * await child.stdin.close();
 * const { stdout } = await child.output();
 * const most = Number(await Deno.readTextFile("/proc/sys/fs/pipe-max-size"));
 * assert.equal(
 *   Number(new TextDecoder().decode(stdout)),
 *   Math.min(1 << 20, most),
 * );
 * ```
 */
export function growPipe(fd: number, bytes = 1 << 20): number | null {
  const f = loadFcntl();
  if (!f) return null;
  const now = f(fd, F_GETPIPE_SZ, 0);
  if (now < 0) return null; // not a pipe
  if (now >= bytes) return now;
  let most = bytes;
  try {
    most = Math.min(
      bytes,
      Number(Deno.readTextFileSync("/proc/sys/fs/pipe-max-size").trim()),
    );
  } catch {
    // unknown limit: ask for what was asked
  }
  const set = f(fd, F_SETPIPE_SZ, most);
  return set < 0 ? now : set;
}
