/**
 * The stream tunnel's command line, one for every format: QEMU's `exec:`
 * migration transport and xl's `migrate -s`. Also `hakobu tunnel ...`.
 *
 * ```sh
 * # QEMU, destination: its stdout feeds `-incoming "exec:..."`
 * deno run -A scripts/tunnel.ts qemu receive --listen 127.0.0.1:4444
 * # QEMU, source: QMP `migrate "exec:deno run -A scripts/tunnel.ts qemu send --to 127.0.0.1:4444"`
 * deno run -A scripts/tunnel.ts qemu send --to 127.0.0.1:4444 --codecs zero,zstd [--channels N]
 *
 * # Xen, destination dom0: listen, then run xl migrate-receive with the stream
 * deno run -A scripts/tunnel.ts xen receive --listen 10.0.0.2:4445 -- xl migrate-receive
 * # Xen, source dom0: xl runs `<-s command> DST xl migrate-receive` and pipes through it
 * xl migrate -s "deno run -A scripts/tunnel.ts xen send --to DST:4445 --codecs zero,lz4 --" DOMU DST
 * ```
 *
 * Resident (QEMU): started once per host, they serve one migration after
 * another, so a migration pays no Deno start:
 *
 * ```sh
 * # destination: sessions from the network into QEMU's `migrate-incoming "unix:PATH"` socket
 * deno run -A scripts/tunnel.ts qemu receive --listen 0.0.0.0:4444 --to-qemu unix:/run/hakobu/in.sock
 * # source: QEMU `migrate "unix:/run/hakobu/out.sock"`; each connection is one migration
 * deno run -A scripts/tunnel.ts qemu send --serve unix:/run/hakobu/out.sock --to DST:4444 --codecs zero,zstd
 * ```
 * Resident modes print one JSON line per migration on stdout and run until
 * killed.
 *
 * `send` reads the stream on stdin (xl's replies go to stdout); `receive`
 * writes the rebuilt stream to stdout (QEMU) or to the stdin of the command
 * after `--` (Xen; default `xl migrate-receive`), whose stdout goes back to
 * the source. For `xen send`, the words after `--` (xl's `DST xl
 * migrate-receive ...`) are ignored, and without `--to` the first of them is
 * the host, with `--port` (default 4445). Statistics go to stderr as one
 * JSON line; any failure exits 1 with `{"ok":false,"error":...}` there,
 * and `receive` then never writes the stream's end.
 *
 * The flags are parsed by the commander tree in `_cli/tunnel_cli.ts`, which
 * `hakobu tunnel` mounts too; `--help` after any mode lists its flags.
 *
 * @module
 */

import { runCli } from "./_cli/program.ts";
import { tunnelCommand } from "./_cli/tunnel_cli.ts";

if (import.meta.main) {
  Deno.exit(
    await runCli((setExit) => tunnelCommand("tunnel.ts", setExit), Deno.args),
  );
}
