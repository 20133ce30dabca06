import { hex } from "../../engine/digest.ts";
import { formatBytes, formatDuration } from "../../engine/format.ts";
import { receiveMigration, type ReceiveResult } from "../../engine/receiver.ts";
import { SimMemorySink } from "../../engine/sim/mod.ts";
import { parseAddress } from "../../engine/transport/address.ts";

/** Options of `hakobu receive`. */
export interface ReceiveCommandOptions {
  listen: string;
  once?: boolean;
  maxMemoryBytes: number;
  json?: boolean;
  onListening?: (addr: Deno.NetAddr) => void;
}

/**
 * Listens for migrations and receives each into simulated destination
 * memory. Returns the exit code: 0 when every migration verified.
 */
export async function receiveCommand(
  opts: ReceiveCommandOptions,
): Promise<number> {
  const addr = parseAddress(opts.listen, "listen address");
  const listener = Deno.listen({
    hostname: addr.hostname,
    port: addr.port,
    transport: "tcp",
  });
  const local = listener.addr as Deno.NetAddr;
  // The first line names the real port (useful with port 0); scripts read it.
  console.log(`listening on ${local.hostname}:${local.port}`);
  opts.onListening?.(local);
  let failures = 0;
  for await (const conn of listener) {
    const peer = conn.remoteAddr as Deno.NetAddr;
    let result: ReceiveResult | null = null;
    try {
      result = await receiveMigration(conn, {
        maxMemoryBytes: opts.maxMemoryBytes,
        createSink: (hello) =>
          new SimMemorySink({
            pageSize: hello.pageSize,
            pageCount: hello.memoryBytes / hello.pageSize,
          }),
      });
    } catch (error) {
      failures++;
      const message = error instanceof Error ? error.message : String(error);
      if (opts.json) {
        console.log(
          JSON.stringify({
            verified: false,
            error: message,
            peer: peer.hostname,
          }),
        );
      } else {console.error(
          `migration from ${peer.hostname}:${peer.port} failed: ${message}`,
        );}
    } finally {
      try {
        conn.close();
      } catch { /* already closed by the peer */ }
    }
    if (result) {
      if (!result.verified) failures++;
      if (opts.json) console.log(JSON.stringify(result));
      else {
        const state = result.aborted
          ? "ABORTED"
          : result.verified
          ? "VERIFIED"
          : "NOT VERIFIED";
        console.log(
          `${state}: ${result.vm} (${
            formatBytes(result.memoryBytes)
          }) policy "${result.policy}", ` +
            `${result.pagesApplied} pages in ${result.rounds} rounds, ${
              formatBytes(result.bytesReceived)
            } received ` +
            `in ${formatDuration(result.durationMs)}, digest ${
              result.digest || hex(new Uint8Array())
            }`,
        );
      }
    }
    if (opts.once) break;
  }
  try {
    listener.close();
  } catch { /* breaking out of the loop already closed it */ }
  return failures === 0 ? 0 : 1;
}
