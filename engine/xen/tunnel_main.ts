/**
 * Command line of the Xen tunnel, for `xl migrate -s`.
 *
 * ```sh
 * # destination dom0: listen, then run xl migrate-receive with the stream
 * deno run -A engine/xen/tunnel_main.ts receive --listen 0.0.0.0:4445 -- xl migrate-receive
 * # source dom0: xl runs `<-s command> DST xl migrate-receive` and pipes through it
 * xl migrate -s "deno run -A engine/xen/tunnel_main.ts send --to DST:4445 --codecs zero,dedup,lz4 --" DOMU DST
 * ```
 *
 * `send` reads xl's stream on stdin and writes the receiving xl's replies
 * on stdout; everything after `--` (xl's `DST xl migrate-receive ...`) is
 * ignored, and without `--to` the first of those words is the host, with
 * `--port` (default 4445). `receive` runs the command after `--` (default
 * `xl migrate-receive`) with the rebuilt stream on its stdin. Statistics go
 * to stderr as one JSON line; any failure exits non-zero.
 *
 * @module
 */

import { sendXenStream, type XenTunnelStats } from "./tunnel.ts";
import { receiveXenStream } from "./tunnel_receiver.ts";
import { connectRetrying, parseAddress } from "../transport/address.ts";
import {
  bandwidthFlag,
  codecList,
  runTunnelMain,
  tunnelFlags,
} from "../transport/tunnel_cli.ts";

/** Runs `send` or `receive`; returns the stats. */
export async function main(args: string[]): Promise<XenTunnelStats> {
  const dash = args.indexOf("--");
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const tail = dash >= 0 ? args.slice(dash + 1) : [];
  const [mode, ...rest] = own;
  if (mode === "send") {
    const f = tunnelFlags(rest, [
      "to",
      "port",
      "codecs",
      "bandwidth",
      "max-pages",
    ]);
    const to = f.to ?? (tail[0] ? `${tail[0]}:${f.port ?? "4445"}` : undefined);
    if (!to) {
      throw new Error(`Missing --to HOST:PORT (or xl's host after "--")`);
    }
    const codecs = codecList(f.codecs);
    const bandwidth = bandwidthFlag(f.bandwidth);
    const maxPages = f["max-pages"] === undefined
      ? undefined
      : Number(f["max-pages"]);
    if (
      maxPages !== undefined && !(Number.isInteger(maxPages) && maxPages > 0)
    ) {
      throw new Error(
        `Bad --max-pages "${f["max-pages"]}": expected a positive integer`,
      );
    }
    const conn = await connectRetrying(parseAddress(to, "--to"), 20_000);
    return await sendXenStream(
      Deno.stdin.readable,
      Deno.stdout.writable,
      conn,
      { codecs, bandwidth, maxPages },
    );
  }
  if (mode === "receive") {
    const f = tunnelFlags(rest, ["listen"]);
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
    return await receiveXenStream(conn, {
      writable: child.stdin,
      readable: child.stdout,
      exited: child.status.then((s) => s.code),
    });
  }
  throw new Error(`Unknown mode "${mode}": expected "send" or "receive"`);
}

if (import.meta.main) await runTunnelMain(main);
