/**
 * Nagle's algorithm is off on every TCP connection hakobu's channels use:
 * a migration's downtime waits on small frames (STREAM_END, RESULT), which
 * Nagle would hold behind an unacknowledged segment for up to a delayed
 * ACK's 40 ms.
 */

import assert from "node:assert/strict";
import { plainChannelConn } from "./channel_conn.ts";
import { noDelay } from "../no_delay.ts";
import { connectRetrying } from "../address.ts";

/** A TCP pair on loopback whose `setNoDelay` calls are recorded. */
async function spiedPair(): Promise<{
  client: Deno.TcpConn;
  server: Deno.TcpConn;
  calls: boolean[];
  close(): void;
}> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  const calls: boolean[] = [];
  const real = client.setNoDelay.bind(client);
  client.setNoDelay = (on?: boolean) => {
    calls.push(on ?? true);
    real(on);
  };
  return {
    client,
    server,
    calls,
    close() {
      client.close();
      server.close();
    },
  };
}

Deno.test("plainChannelConn turns Nagle off on the TCP connection it wraps", async () => {
  const pair = await spiedPair();
  try {
    const conn = plainChannelConn(pair.client);
    assert.deepEqual(pair.calls, [true]);
    // and the connection still carries bytes
    const w = conn.writable.getWriter();
    await w.write(new Uint8Array([1, 2, 3]));
    const buf = new Uint8Array(3);
    assert.equal(await pair.server.read(buf), 3);
    assert.deepEqual([...buf], [1, 2, 3]);
    w.releaseLock();
  } finally {
    pair.close();
  }
});

Deno.test("noDelay: a unix socket (no Nagle) and a closed TCP connection are left as they are, without an error", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  try {
    const [client, server] = await Promise.all([
      Deno.connect({ transport: "unix", path }),
      listener.accept(),
    ]);
    noDelay(client); // no setNoDelay on a unix connection: nothing to do
    client.close();
    server.close();
    const pair = await spiedPair();
    pair.close();
    noDelay(pair.client); // closed: the next read or write would say so
    assert.deepEqual(pair.calls, [true]);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connectRetrying (a tunnel's TCP connection to QEMU) turns Nagle off", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Spy on the class of TCP connections (taken from one), which the
  // connection connectRetrying makes is one of.
  const probe = await spiedPair();
  probe.close();
  const proto = Object.getPrototypeOf(probe.server) as Deno.TcpConn;
  const original = proto.setNoDelay;
  const calls: (boolean | undefined)[] = [];
  proto.setNoDelay = function (this: Deno.TcpConn, on?: boolean) {
    calls.push(on);
    return original.call(this, on);
  };
  try {
    const [conn, peer] = await Promise.all([
      connectRetrying(
        { hostname: "127.0.0.1", port: listener.addr.port },
        1000,
      ),
      listener.accept(),
    ]);
    assert.deepEqual(calls, [true]);
    conn.close();
    peer.close();
  } finally {
    proto.setNoDelay = original;
    listener.close();
  }
});
