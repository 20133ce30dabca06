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

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** Runs `send` or `receive`; returns the stats. */
export async function main(args: string[]): Promise<TunnelStats> {
  const [mode, ...rest] = args;
  if (mode === "send") {
    const to = parseAddress(flag(rest, "--to") ?? "", "--to");
    const codecs = (flag(rest, "--codecs") ?? "zero").split(",").filter(Boolean)
      .map((name) => ({ name }));
    const bw = flag(rest, "--bandwidth");
    const conn = await connectRetrying(to, 20_000);
    return await sendQemuStream(Deno.stdin.readable, conn, {
      codecs,
      bandwidth: bw ? Number(bw) : null,
    });
  }
  if (mode === "receive") {
    const at = parseAddress(flag(rest, "--listen") ?? "", "--listen");
    const listener = Deno.listen(at);
    const conn = await listener.accept();
    listener.close();
    return await receiveQemuStream(conn, Deno.stdout.writable);
  }
  throw new Error(`Unknown mode "${mode}": expected "send" or "receive"`);
}

if (import.meta.main) {
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
