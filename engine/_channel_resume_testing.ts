/**
 * Helpers shared by the tests of per-channel connections that resume (not
 * part of the public API): a receiver that serves every connection with one
 * resume registry and grants per-channel connections, and a fault proxy in
 * front of each channel's port.
 *
 * @module
 */

import { type FaultProxy, faultProxy } from "./_fault_proxy.ts";
import {
  type ReceiveBudget,
  receiveMigration,
  type ReceiveResult,
  type ReceiverEvent,
  ResumeRegistry,
} from "./receiver.ts";
import { SimMemorySink } from "./sim/mod.ts";
import {
  type ChannelConn,
  listenChannel,
  type ListenSecurity,
} from "./transport/secure/mod.ts";

const AT = { hostname: "127.0.0.1", port: 0 };

/**
 * A receiver on `security` that serves every connection with one resume
 * registry and grants per-channel connections.
 */
export async function serveAll(
  security: ListenSecurity,
  options: {
    maxGraceMs?: number;
    budget?: ReceiveBudget;
    onEvent?: (e: ReceiverEvent) => void;
  } = {},
) {
  const listener = await listenChannel(AT, security);
  const registry = new ResumeRegistry({ maxGraceMs: options.maxGraceMs });
  let sink: SimMemorySink | null = null;
  let settle!: (r: ReceiveResult | Error) => void;
  /** The session's own outcome (not a joined connection's). */
  const session = new Promise<ReceiveResult | Error>((r) => settle = r);
  const joined: ReceiveResult[] = [];
  const refused: Error[] = [];
  let first = true;
  const loop = (async () => {
    for (;;) {
      let conn: ChannelConn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      const original = first;
      first = false;
      receiveMigration(conn, {
        frameTimeoutMs: 30_000,
        resume: { registry, identity: conn.identity },
        budget: options.budget,
        channelConnections: {
          hostname: "127.0.0.1",
          security,
          identity: conn.identity,
        },
        onEvent: options.onEvent,
        createSink: (h) =>
          sink = new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
      }).then(
        (r) => {
          if (r.joined) joined.push(r);
          else settle(r);
        },
        (e: Error) => {
          if (original) settle(e);
          else refused.push(e);
        },
      ).finally(() => closeQuietly(conn));
    }
  })();
  return {
    port: listener.addr.port,
    session,
    joined,
    refused,
    get sink() {
      return sink;
    },
    async close() {
      listener.close();
      await loop;
    },
  };
}

/**
 * Where the source's channels dial: each receiver port through a fault
 * proxy of its own, made on first use; `fault(channel, nth)` says what the
 * nth port of that channel injects (null: nothing).
 */
export function channelProxies(
  fault: (channel: number, nth: number) => Parameters<typeof faultProxy>[1],
) {
  const made: { channel: number; port: number; proxy: FaultProxy }[] = [];
  return {
    made,
    portOf(channel: number, port: number): number {
      let m = made.find((p) => p.port === port);
      if (!m) {
        const nth = made.filter((p) => p.channel === channel).length;
        m = { channel, port, proxy: faultProxy(port, fault(channel, nth)) };
        made.push(m);
      }
      return m.proxy.port;
    },
    async close() {
      for (const m of made) await m.proxy.close();
    },
  };
}

/** Closes `conn`, which the migration may have closed already. */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch { /* closed with the migration's link */ }
}
