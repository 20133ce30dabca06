/**
 * One end of one connection of `bench_secure.ts`'s "connections alone"
 * rows, as a Worker: a reader listens, takes one connection and drains it;
 * a writer connects and writes `bytes` in 1 MiB chunks. Each reports its
 * wall time and the CPU time of its own thread (`/proc/thread-self/stat`),
 * which is where `node:tls` encrypts and decrypts a socket the Worker owns.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  connectChannel,
  type ConnectSecurity,
  listenChannel,
  type ListenSecurity,
} from "../engine/transport/secure/mod.ts";

/** What the bench asks of this Worker. */
export type LinkWorkerRequest =
  | { readonly role: "reader"; readonly security: ListenSecurity }
  | {
    readonly role: "writer";
    readonly security: ConnectSecurity;
    readonly port: number;
    readonly bytes: number;
  };

/** This thread's CPU milliseconds so far (user + system), from /proc (Linux). */
function threadCpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/thread-self/stat");
  // Fields after the command name, which is in parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 (1-based), in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

self.onmessage = async (e: MessageEvent<LinkWorkerRequest>) => {
  const req = e.data;
  if (req.role === "reader") {
    const listener = await listenChannel(
      { hostname: "127.0.0.1", port: 0 },
      req.security,
    );
    self.postMessage({ port: listener.addr.port });
    const conn = await listener.accept();
    listener.close();
    const cpu0 = threadCpuMs();
    const t0 = performance.now();
    let n = 0;
    for await (const c of conn.readable) n += c.length;
    self.postMessage({
      bytes: n,
      ms: performance.now() - t0,
      cpuMs: threadCpuMs() - cpu0,
    });
    conn.close();
    return;
  }
  const conn = await connectChannel(
    { hostname: "127.0.0.1", port: req.port },
    req.security,
  );
  const chunk = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const cpu0 = threadCpuMs();
  const t0 = performance.now();
  const w = conn.writable.getWriter();
  for (let sent = 0; sent < req.bytes; sent += chunk.length) {
    await w.write(chunk);
  }
  await w.close();
  self.postMessage({
    bytes: req.bytes,
    ms: performance.now() - t0,
    cpuMs: threadCpuMs() - cpu0,
  });
};
