/**
 * The simulated fabric: each VM becomes a `SimVm` of its size, workload and
 * dirty rate, and each destination host an in-process receiver
 * (`receiveMigration` into a `SimMemorySink`) listening on loopback TCP.
 *
 * @module
 */

import { PAGE_SIZE } from "../../engine/plan.ts";
import { receiveMigration, type ReceiveResult } from "../../engine/receiver.ts";
import { SimMemorySink } from "../../engine/sim/sim_sink.ts";
import { SimVm } from "../../engine/sim/sim_vm.ts";
import type { Inventory } from "./inventory.ts";
import type { EngineSession, Fabric, FabricRequest } from "./runner.ts";

/** Bytes per page of sim VMs. */

/** Options of {@link simFabric}. */
export interface SimFabricOptions {
  /** Workload of VMs whose inventory entry names none (default `"idle"`). */
  readonly defaultWorkload?: string;
  /** Seed of every sim VM (default: derived from the VM's name). */
  readonly seed?: number;
}

/** What one simulated destination received. */
export interface SimReceipt {
  /** Destination host name. */
  readonly host: string;
  /** The VM the fabric opened this migration for (by the connection's port). */
  readonly vm?: string;
  /** The receiver's result, or its error message. */
  readonly result: ReceiveResult | { readonly error: string };
}

/** The sim fabric; also lists what each destination received. */
export interface SimFabric extends Fabric, AsyncDisposable {
  /** Opens one migration of a sim VM to a receiver on the destination, for the engine to run. */
  open(request: FabricRequest): Promise<EngineSession>;
  /** One entry per finished receiving session, in the order they ended. */
  readonly receipts: readonly SimReceipt[];
  /**
   * `base` with each VM a destination received and verified on that
   * destination (the last such session wins): where the sim's VMs run now.
   * Waits for the receiving sessions in flight first.
   */
  observe(base: Inventory): Promise<Inventory>;
}

interface Destination {
  readonly listener: Deno.Listener;
  readonly port: number;
  readonly loop: Promise<void>;
}

/**
 * Makes a fabric of simulated VMs and in-process receivers on
 * 127.0.0.1 (one listener per destination host, started on first use).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, when } from "@hakobu/hakobu";
 * import { parseInventory, planMoves, runPlan, simFabric } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "a", memory: "64MiB" }, { name: "b", memory: "64MiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "48MiB" },
 *     { name: "small", host: "a", memory: "8MiB" },
 *   ],
 * });
 * const plan = planMoves(inv, { bandwidth: 125e6 });
 * const p = policy("p").switchover(when.rounds(3)).compile();
 * await using fabric = simFabric();
 * await runPlan(inv, plan, { policy: p, fabric });
 * assert.equal(fabric.receipts.length, 1); // one receiving session, on host b
 * assert.equal(fabric.receipts[0].host, "b");
 * ```
 */
export function simFabric(options: SimFabricOptions = {}): SimFabric {
  const destinations = new Map<string, Destination>();
  const sessions = new Set<Promise<void>>();
  const receipts: SimReceipt[] = [];
  // The VM each source connection carries, by its local port: the receiving
  // side sees that port as its peer's, and so knows which VM it received.
  const byPort = new Map<number, string>();
  let closed = false;

  const destination = (host: string): Destination => {
    let d = destinations.get(host);
    if (d) return d;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const loop = (async () => {
      for await (const conn of listener) {
        const peer = (conn.remoteAddr as Deno.NetAddr).port;
        const s = receiveMigration(conn, {
          createSink: (hello) =>
            new SimMemorySink({
              pageSize: hello.pageSize,
              pageCount: hello.memoryBytes / hello.pageSize,
            }),
        }).then(
          (result) =>
            void receipts.push(_receipt(host, byPort.get(peer), result)),
          (e) =>
            void receipts.push(_receipt(host, byPort.get(peer), {
              error: e instanceof Error ? e.message : String(e),
            })),
        ).finally(() => {
          try {
            conn.close();
          } catch { /* closed by the source */ }
          sessions.delete(s);
        });
        sessions.add(s);
      }
    })().catch(() => {/* listener closed */});
    d = { listener, port: (listener.addr as Deno.NetAddr).port, loop };
    destinations.set(host, d);
    return d;
  };

  const fabric: SimFabric = {
    name: "sim",
    receipts,
    async open(request: FabricRequest): Promise<EngineSession> {
      if (closed) {
        throw new Error("Cannot open a migration: the sim fabric is closed");
      }
      const { vm } = request;
      const { port } = destination(request.to.name);
      const source = await SimVm.create({
        memoryBytes: vm.memoryBytes,
        workload: vm.workload ?? options.defaultWorkload ?? "idle",
        seed: options.seed ?? _seedOf(vm.name),
        // The inventory gives bytes per second; the sim counts page writes.
        dirtyRate: Math.round(vm.dirtyRate / PAGE_SIZE),
      });
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch (e) {
        await source.close();
        throw e;
      }
      byPort.set(conn.localAddr.port, vm.name);
      let done = false;
      return {
        source,
        conn,
        async close(): Promise<void> {
          if (done) return;
          done = true;
          try {
            conn.close();
          } catch { /* closed already */ }
          await source.close();
        },
      };
    },
    async observe(base: Inventory): Promise<Inventory> {
      await Promise.all([...sessions]);
      const where = new Map<string, string>();
      for (const r of receipts) {
        if (r.vm !== undefined && "verified" in r.result && r.result.verified) {
          where.set(r.vm, r.host);
        }
      }
      return {
        ...base,
        vms: base.vms.map((vm) => {
          const host = where.get(vm.name);
          return host === undefined || host === vm.host ? vm : { ...vm, host };
        }),
      };
    },
    async close(): Promise<void> {
      closed = true;
      for (const d of destinations.values()) {
        try {
          d.listener.close();
        } catch { /* closed already */ }
      }
      await Promise.all([...destinations.values()].map((d) => d.loop));
      await Promise.all([...sessions]);
    },
    [Symbol.asyncDispose](): Promise<void> {
      return fabric.close();
    },
  };
  return fabric;
}

function _receipt(
  host: string,
  vm: string | undefined,
  result: SimReceipt["result"],
): SimReceipt {
  return vm === undefined ? { host, result } : { host, vm, result };
}

/** A stable 31-bit seed from a VM's name (FNV-1a). */
function _seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 1;
}
