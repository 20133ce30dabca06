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
 * deno run -A scripts/tunnel.ts xen receive --listen 0.0.0.0:4445 -- xl migrate-receive
 * # Xen, source dom0: xl runs `<-s command> DST xl migrate-receive` and pipes through it
 * xl migrate -s "deno run -A scripts/tunnel.ts xen send --to DST:4445 --codecs zero,lz4 --" DOMU DST
 * ```
 *
 * `send` reads the stream on stdin (xl's replies go to stdout); `receive`
 * writes the rebuilt stream to stdout (QEMU) or to the stdin of the command
 * after `--` (Xen; default `xl migrate-receive`), whose stdout goes back to
 * the source. For `xen send`, the words after `--` (xl's `DST xl
 * migrate-receive ...`) are ignored, and without `--to` the first of them is
 * the host, with `--port` (default 4445). Statistics go to stderr as one
 * JSON line; any failure exits non-zero, and `receive` then never writes
 * the stream's end.
 *
 * @module
 */

import { connectRetrying, parseAddress } from "../engine/transport/address.ts";
import { largeReads } from "../engine/transport/read_stream.ts";
import {
  bandwidthFlag,
  codecList,
  runTunnelMain,
  tunnelFlags,
} from "../engine/transport/tunnel_cli.ts";
import type { StreamFormat } from "../engine/stream/format.ts";
import { qemuFormat } from "../engine/stream/qemu_format.ts";
import { DEFAULT_MAX_PAGES, xenFormat } from "../engine/stream/xen_format.ts";
import { sendStream, type StreamStats } from "../engine/stream/send.ts";
import { receiveStream } from "../engine/stream/receive.ts";

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`Bad --${name} "${value}": expected a positive integer`);
  }
  return n;
}

/** Runs `FORMAT send|receive ...`; returns the stats. */
export async function tunnelMain(args: string[]): Promise<StreamStats> {
  const dash = args.indexOf("--");
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const tail = dash >= 0 ? args.slice(dash + 1) : [];
  const [formatName, mode, ...rest] = own;
  if (formatName !== "qemu" && formatName !== "xen") {
    throw new Error(
      `Unknown stream format "${formatName ?? ""}": expected "qemu" or "xen"`,
    );
  }
  if (mode === "send") {
    const f = tunnelFlags(rest, [
      "to",
      "port",
      "codecs",
      "bandwidth",
      "channels",
      "batch-pages",
      "max-pages",
    ]);
    let format: StreamFormat = qemuFormat;
    let to = f.to;
    if (formatName === "xen") {
      format = xenFormat(positive("max-pages", f["max-pages"]) ?? DEFAULT_MAX_PAGES);
      to ??= tail[0] ? `${tail[0]}:${f.port ?? "4445"}` : undefined;
    }
    if (!to) {
      throw new Error(
        formatName === "xen"
          ? `Missing --to HOST:PORT (or xl's host after "--")`
          : "Missing --to HOST:PORT",
      );
    }
    const conn = await connectRetrying(parseAddress(to, "--to"), 20_000);
    return await sendStream(largeReads(Deno.stdin), conn, {
      format,
      codecs: codecList(f.codecs),
      bandwidth: bandwidthFlag(f.bandwidth),
      channels: positive("channels", f.channels),
      batchPages: positive("batch-pages", f["batch-pages"]),
      ...(formatName === "xen" ? { back: Deno.stdout.writable } : {}),
    });
  }
  if (mode === "receive") {
    const f = tunnelFlags(rest, ["listen"]);
    if (formatName === "qemu") {
      const at = parseAddress(f.listen ?? "", "--listen");
      const listener = Deno.listen(at);
      const conn = await listener.accept();
      listener.close();
      return await receiveStream(conn, {
        format: "qemu",
        out: Deno.stdout.writable,
      });
    }
    const at = parseAddress(f.listen ?? "0.0.0.0:4445", "--listen");
    const cmd = tail.length > 0 ? tail : ["xl", "migrate-receive"];
    const listener = Deno.listen(at);
    const conn = await listener.accept();
    listener.close();
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // xl talks between its messages: the stream goes through as it comes.
    return await receiveStream(conn, {
      format: "xen",
      out: child.stdin,
      back: child.stdout,
      holdLast: false,
      exited: child.status.then((s) => s.code),
    });
  }
  throw new Error(
    `Unknown mode "${mode ?? ""}": expected "${formatName} send" or "${formatName} receive"`,
  );
}

if (import.meta.main) await runTunnelMain(tunnelMain);
