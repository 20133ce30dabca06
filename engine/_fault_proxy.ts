/**
 * A TCP proxy that injects one fault into each connection it relays, for
 * tests of what both ends of a migration do when the link misbehaves (not
 * part of the public API).
 *
 * @module
 */

/** One fault, injected once a direction has carried `afterBytes`. */
export interface Fault {
  /**
   * `cut`: both sockets closed; `blackhole`: nothing more forwarded either
   * way, nothing closed; `delay`: forwarding pauses `delayMs` once;
   * `corrupt`: the byte at `afterBytes` is flipped.
   */
  readonly kind: "cut" | "blackhole" | "delay" | "corrupt";
  /** `up`: source to receiver; `down`: receiver to source. */
  readonly direction: "up" | "down";
  /**
   * Bytes that direction carries before the fault; with `frameType`,
   * counted from the first byte of that direction's first frame of that
   * type.
   */
  readonly afterBytes: number;
  /**
   * Aim at a frame: the fault comes `afterBytes` into the first frame of
   * this type (hakobu frames over plain TCP; the proxy reads their headers).
   */
  readonly frameType?: number;
  /** For `delay`. */
  readonly delayMs?: number;
}

/** A running {@link faultProxy}. */
export interface FaultProxy {
  /** The loopback port it listens on. */
  readonly port: number;
  /** Whether a fault was injected (its direction carried enough bytes). */
  readonly fired: boolean;
  /** Bytes each relayed connection carried each way so far, in the order they connected. */
  readonly connections: readonly {
    readonly up: number;
    readonly down: number;
  }[];
  /**
   * Cuts every relayed connection now (both sockets closed), at a moment a
   * test picks rather than at a byte count; the proxy keeps listening, and
   * `fired` turns true.
   */
  cut(): void;
  /** Stops listening and breaks every relayed connection. */
  close(): Promise<void>;
}

/**
 * Listens on a loopback port and relays each connection to `target`,
 * injecting `fault` into it. One fault fires once, into the first
 * connection that carries enough (and a cut or a broken side then closes
 * every relayed connection); a list gives the n-th connection its own
 * fault (`null` or past the list's end: none), each of which fires in its
 * connection alone (a cut closes that connection's two sockets).
 *
 * @example
 * ```ts ignore
 * const proxy = faultProxy(7700, { kind: "cut", direction: "up", afterBytes: 50_000 });
 * // connect the source to proxy.port
 * await proxy.close();
 * ```
 */
export function faultProxy(
  targetPort: number,
  fault: Fault | readonly (Fault | null)[],
): FaultProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const carriedBy: { up: number; down: number }[] = [];
  const perConnection = Array.isArray(fault);
  /** Whether a fault fired; `fired`/`dark` per connection with a list, shared without. */
  let anyFired = false;
  const shared = { fired: false, dark: false };
  const never = new Promise<void>(() => {});
  const closeAll = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  };
  const relay = async (
    from: Deno.Conn,
    to: Deno.Conn,
    direction: "up" | "down",
    tally: { up: number; down: number },
    fault: Fault | null,
    state: { fired: boolean; dark: boolean },
    closeLink: () => void,
  ) => {
    if (fault === null) state.fired = true; // nothing to inject
    let carried = 0;
    const buf = new Uint8Array(64 * 1024);
    // Where the fault comes in this direction's stream: fixed, or found by
    // reading frame headers (16 bytes; u8 type at 2, u32 length at 8).
    let faultAt = fault?.frameType === undefined
      ? fault?.afterBytes ?? Infinity
      : Infinity;
    const header: number[] = [];
    let headerAt = 0;
    let skip = 0;
    const findFrame = (chunk: Uint8Array) => {
      for (let i = 0; i < chunk.length && faultAt === Infinity;) {
        if (skip > 0) {
          const k = Math.min(skip, chunk.length - i);
          skip -= k;
          i += k;
          continue;
        }
        if (header.length === 0) headerAt = carried + i;
        header.push(chunk[i++]);
        if (header.length === 16) {
          if (header[2] === fault!.frameType) {
            faultAt = headerAt + fault!.afterBytes;
          }
          skip = (header[8] | header[9] << 8 | header[10] << 16) +
            header[11] * 2 ** 24;
          header.length = 0;
        }
      }
    };
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        let chunk = buf.subarray(0, n);
        if (state.dark) await never;
        if (!state.fired && direction === fault!.direction) {
          if (faultAt === Infinity) findFrame(chunk);
        }
        if (
          !state.fired && direction === fault!.direction &&
          carried + n > faultAt
        ) {
          state.fired = true;
          anyFired = true;
          const at = faultAt - carried;
          switch (fault!.kind) {
            case "cut":
              await writeAll(to, chunk.subarray(0, at));
              tally[direction] += at;
              closeLink();
              return;
            case "blackhole":
              await writeAll(to, chunk.subarray(0, at));
              tally[direction] += at;
              state.dark = true;
              await never;
              return;
            case "delay":
              await new Promise((r) => setTimeout(r, fault!.delayMs ?? 0));
              break;
            case "corrupt":
              chunk = chunk.slice();
              chunk[at] ^= 0x5a;
              break;
          }
        }
        carried += n;
        await writeAll(to, chunk);
        tally[direction] += n;
      }
      // A clean end: pass the half-close on.
      await to.closeWrite().catch(() => {});
    } catch {
      closeLink(); // one side broke: so does the link
    }
  };
  const accepting = (async () => {
    for (;;) {
      let a: Deno.Conn;
      try {
        a = await listener.accept();
      } catch {
        return; // closed
      }
      // The target may still be starting (a child process): retry a while.
      let b: Deno.Conn | null = null;
      for (let i = 0; b === null; i++) {
        try {
          b = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
        } catch (e) {
          if (!(e instanceof Deno.errors.ConnectionRefused) || i >= 300) {
            try {
              a.close();
            } catch { /* closed */ }
            break;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (b === null) continue;
      conns.add(a);
      conns.add(b);
      const tally = { up: 0, down: 0 };
      const nth = carriedBy.length;
      carriedBy.push(tally);
      const own = perConnection
        ? (fault as readonly (Fault | null)[])[nth] ?? null
        : fault as Fault;
      const state = perConnection ? { fired: false, dark: false } : shared;
      const closeLink = perConnection
        ? () => {
          for (const c of [a, b]) {
            try {
              c.close();
            } catch { /* closed */ }
          }
        }
        : closeAll;
      tasks.push(
        relay(a, b, "up", tally, own, state, closeLink),
        relay(b, a, "down", tally, own, state, closeLink),
      );
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get fired() {
      return anyFired;
    },
    get connections() {
      return carriedBy.map((t) => ({ ...t }));
    },
    cut() {
      anyFired = true;
      closeAll();
    },
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      closeAll();
      await accepting;
    },
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) {
    off += await conn.write(bytes.subarray(off));
  }
}
