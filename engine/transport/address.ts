import { noDelay } from "./no_delay.ts";

/** A parsed `HOST:PORT`. */
export interface Address {
  /** Host name or IP address (IPv6 without brackets). */
  hostname: string;
  /** TCP port, 0..65535. */
  port: number;
}

/**
 * Parses `HOST:PORT` (IPv6 as `[::1]:7700`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAddress } from "@hakobu/hakobu";
 *
 * assert.deepEqual(parseAddress("127.0.0.1:7700", "listen address"), {
 *   hostname: "127.0.0.1",
 *   port: 7700,
 * });
 * assert.deepEqual(parseAddress("[::1]:7700", "listen address"), {
 *   hostname: "::1",
 *   port: 7700,
 * });
 * assert.throws(() => parseAddress("7700", "listen address"), /HOST:PORT/);
 * ```
 *
 * @throws {Error} naming the string and the expected form.
 */
export function parseAddress(text: string, what: string): Address {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(
      `Cannot parse ${what} "${text}": expected HOST:PORT, e.g. 127.0.0.1:7700`,
    );
  }
  return { hostname: m[1] ?? m[2], port };
}

/**
 * Connects over TCP, retrying every 100 ms until `timeoutMs` has passed
 * (the peer may still be starting, e.g. a tunnel receiver QEMU spawns).
 *
 * @throws the last connection error once the time is up.
 */
export async function connectRetrying(
  to: Address,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const conn = await Deno.connect(to);
      noDelay(conn);
      return conn;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
