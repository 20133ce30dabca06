/**
 * A pass-through TCP proxy that counts bytes: what stands in a libvirt
 * migration stream (`--migrateuri tcp://127.0.0.1:P --listen-address
 * 127.0.0.2`) where hakobu's tunnel will stand, to prove the stream goes
 * through the given port.
 *
 * @module
 */

/** A running proxy. */
export interface TcpProxy {
  /** Where it listens. */
  readonly listen: { readonly hostname: string; readonly port: number };
  /** Where it forwards each connection. */
  readonly forward: { readonly hostname: string; readonly port: number };
  /** Bytes carried client → server so far. */
  readonly bytesUp: number;
  /** Bytes carried server → client so far. */
  readonly bytesDown: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Stops listening, closes every connection and waits for the copies. */
  close(): Promise<void>;
}

/** Starts a proxy from `listen` to `forward`. */
export function startTcpProxy(
  listen: { readonly hostname: string; readonly port: number },
  forward: { readonly hostname: string; readonly port: number },
): TcpProxy {
  const listener = Deno.listen({
    hostname: listen.hostname,
    port: listen.port,
  });
  const conns = new Set<Deno.Conn>();
  const copies: Promise<void>[] = [];
  let bytesUp = 0;
  let bytesDown = 0;
  let connections = 0;
  let closed = false;

  async function pump(
    from: Deno.Conn,
    to: Deno.Conn,
    count: (n: number) => void,
  ): Promise<void> {
    const buf = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        count(n);
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
      await to.closeWrite().catch(() => {});
    } catch {
      // either side went away: end both
      try {
        from.close();
      } catch { /* closed */ }
      try {
        to.close();
      } catch { /* closed */ }
    }
  }

  const accepting = (async () => {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // closed
      }
      connections++;
      let server: Deno.Conn;
      try {
        server = await Deno.connect(forward);
      } catch {
        client.close();
        continue;
      }
      conns.add(client);
      conns.add(server);
      const done = Promise.all([
        pump(client, server, (n) => bytesUp += n),
        pump(server, client, (n) => bytesDown += n),
      ]).then(() => {
        for (const c of [client, server]) {
          conns.delete(c);
          try {
            c.close();
          } catch { /* closed */ }
        }
      });
      copies.push(done);
    }
  })();

  return {
    listen,
    forward,
    get bytesUp() {
      return bytesUp;
    },
    get bytesDown() {
      return bytesDown;
    },
    get connections() {
      return connections;
    },
    async close() {
      if (closed) return;
      closed = true;
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await accepting;
      await Promise.all(copies);
    },
  };
}
