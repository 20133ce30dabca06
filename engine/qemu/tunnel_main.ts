/**
 * Command line of the QEMU tunnel, for QEMU's `exec:` migration transport.
 *
 * ```sh
 * # destination: its stdout feeds `-incoming "exec:..."`
 * deno run -A engine/qemu/tunnel_main.ts receive --listen 127.0.0.1:4444
 * # source: QMP `migrate "exec:deno run -A engine/qemu/tunnel_main.ts send --to 127.0.0.1:4444"`
 * deno run -A engine/qemu/tunnel_main.ts send --to 127.0.0.1:4444 --codecs zero,lz4
 * ```
 *
 * Statistics go to stderr as one JSON line; the exit status is non-zero on
 * any failure, and `receive` then never writes the stream's end.
 *
 * @module
 */

import { sendQemuStream, type TunnelStats } from "./tunnel.ts";
import { receiveQemuStream } from "./tunnel_receiver.ts";
import { connectRetrying, parseAddress } from "../transport/address.ts";
import {
  bandwidthFlag,
  codecList,
  runTunnelMain,
  tunnelFlags,
} from "../transport/tunnel_cli.ts";

/** Runs `send` or `receive`; returns the stats. */
export async function main(args: string[]): Promise<TunnelStats> {
  const [mode, ...rest] = args;
  if (mode === "send") {
    const f = tunnelFlags(rest, ["to", "codecs", "bandwidth"]);
    const to = parseAddress(f.to ?? "", "--to");
    const codecs = codecList(f.codecs);
    const bandwidth = bandwidthFlag(f.bandwidth);
    const conn = await connectRetrying(to, 20_000);
    return await sendQemuStream(Deno.stdin.readable, conn, {
      codecs,
      bandwidth,
    });
  }
  if (mode === "receive") {
    const f = tunnelFlags(rest, ["listen"]);
    const at = parseAddress(f.listen ?? "", "--listen");
    const listener = Deno.listen(at);
    const conn = await listener.accept();
    listener.close();
    return await receiveQemuStream(conn, Deno.stdout.writable);
  }
  throw new Error(`Unknown mode "${mode}": expected "send" or "receive"`);
}

if (import.meta.main) await runTunnelMain(main);
