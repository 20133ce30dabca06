/**
 * The receiving end of `precopy_bench.ts`, as a process of its own: a
 * receiver runs on another host in a real migration, so here it has its
 * own main thread, and the sender's (pacing, writing, starting its
 * channels) never holds it up, nor it the sender's.
 *
 * It reads one JSON request per line on stdin; for each it opens a loopback
 * listener, writes `{"port":N}` as a line on stdout, serves one connection
 * and writes `{"done":true,"verified":...}` (or `{"error":"..."}`):
 * - `{"type":"migration"}`: `receiveMigration` into a fresh
 *   `SimMemorySink`; `verified` is the receiver's verdict.
 * - `{"type":"bytes","total":N}`: reads N bytes, then answers one byte
 *   (as READY ends a migration's last round).
 *
 *   deno run -A engine/_precopy_bench_receiver.ts
 *
 * @module
 */

import { receiveMigration } from "./receiver.ts";
import { SimMemorySink } from "./sim/mod.ts";

/** What the bench asks for, one per line. */
export type BenchReceiverRequest =
  | { readonly type: "migration" }
  | { readonly type: "bytes"; readonly total: number };

/** What the receiver answers, two lines per request. */
export type BenchReceiverReply =
  | { readonly port: number }
  | { readonly done: true; readonly verified: boolean }
  | { readonly error: string };

const encoder = new TextEncoder();

async function say(reply: BenchReceiverReply): Promise<void> {
  const bytes = encoder.encode(JSON.stringify(reply) + "\n");
  for (let off = 0; off < bytes.length;) {
    off += await Deno.stdout.write(bytes.subarray(off));
  }
}

/** Serves one request; resolves with the verdict. */
async function serve(req: BenchReceiverRequest): Promise<boolean> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await say({ port: (listener.addr as Deno.NetAddr).port });
  const conn = await listener.accept();
  listener.close();
  try {
    if (req.type === "migration") {
      const result = await receiveMigration(conn, {
        createSink: (h) =>
          new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
      });
      return result.verified;
    }
    const buf = new Uint8Array(1 << 20);
    let got = 0;
    while (got < req.total) {
      const n = await conn.read(buf);
      if (n === null) {
        throw new Error(`Link closed after ${got} of ${req.total} bytes`);
      }
      got += n;
    }
    await conn.write(new Uint8Array([1]));
    return true;
  } finally {
    try {
      conn.close();
    } catch { /* the session closed it */ }
  }
}

if (import.meta.main) {
  let pending = "";
  for await (
    const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    pending += text;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        await say({ done: true, verified: await serve(JSON.parse(line)) });
      } catch (error) {
        await say({
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }
}
