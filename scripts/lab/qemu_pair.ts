/**
 * A source guest and a waiting destination, ready for a migration: the
 * source booted with its app ready, the destination started with
 * `-incoming defer`, capabilities and parameters set on both, and the
 * destination listening. On loopback, or across the lab namespaces
 * (source in `hkb-src`, destination in `hkb-dst`, link shaped by netns.ts).
 *
 * @example
 * ```ts
 * import { migrateQemu, policy, when } from "@hakobu/hakobu";
 * import { startPair } from "./qemu_pair.ts";
 *
 * // Needs QEMU and the lab's images: the doc tests type-check this function
 * // and do not call it.
 * async function migrateOnce() {
 *   const plan = policy("p").switchover(when.rounds(3)).compile();
 *   const pair = await startPair({
 *     app: "memcached",
 *     memMiB: 512,
 *     netns: true,
 *   });
 *   try {
 *     const report = await migrateQemu({
 *       plan,
 *       source: pair.src,
 *       destination: pair.dst,
 *       uri: pair.uri,
 *     });
 *     console.log(report.status, await pair.destination.check());
 *   } finally {
 *     await pair.close();
 *   }
 * }
 * ```
 *
 * @module
 */

import {
  QmpClient,
  type QmpMigrationParameters,
} from "../../engine/qemu/qmp.ts";
import { LAB_NET } from "./netns.ts";
import {
  buildLab,
  freePort,
  type Guest,
  type LabApp,
  startGuest,
} from "./qemu_guest.ts";

/** Options of {@link startPair}. */
export interface PairOptions {
  readonly app: LabApp;
  /** Guest memory in MiB (default 512). */
  readonly memMiB?: number;
  /** Run across the lab namespaces (must be up) instead of loopback. */
  readonly netns?: boolean;
  /** Capabilities set on both sides before listening, e.g. `{ multifd: true }`. */
  readonly capabilities?: Readonly<Record<string, boolean>>;
  /** Destination parameters set before listening (multifd channels and compression must match). */
  readonly destinationParameters?: QmpMigrationParameters;
  /** In-guest load generator (default true). */
  readonly load?: boolean;
  /** MiB of random data the guest rewrites per second (default 0). */
  readonly churnMiB?: number;
  /** Listen URI for the destination instead of tcp (e.g. for a tunnel receiver). */
  readonly incomingUri?: string;
  /** Seconds to let the load run after the app is ready (default 0). */
  readonly warmupS?: number;
  /** KiB added to both guests' RAM (default `TCG_RAM_PAD_KIB`; see `GuestOptions`). */
  readonly ramPadKiB?: number;
}

/** A source/destination pair. */
export interface Pair {
  readonly source: Guest;
  readonly destination: Guest;
  readonly src: QmpClient;
  readonly dst: QmpClient;
  /** The URI the source should `migrate` to (what the destination listens on). */
  readonly uri: string;
  /** Boot time of the source until its checker answered ok, ms. */
  readonly bootMs: number;
  /** Kills both QEMUs and closes QMP. */
  close(): Promise<void>;
}

/** Starts a source (waits for its app) and a listening destination. */
export async function startPair(options: PairOptions): Promise<Pair> {
  const image = await buildLab(options.app);
  const runDir = await Deno.makeTempDir({ prefix: "hakobu-pair-" });
  const common = {
    app: options.app,
    memMiB: options.memMiB ?? 512,
    image,
    runDir,
    load: options.load,
    churnMiB: options.churnMiB,
    ramPadKiB: options.ramPadKiB,
  };
  const t0 = performance.now();
  const source = await startGuest({
    ...common,
    name: "src",
    netns: options.netns ? LAB_NET.src : undefined,
  });
  let destination: Guest | null = null;
  let src: QmpClient | null = null;
  let dst: QmpClient | null = null;
  try {
    destination = await startGuest({
      ...common,
      name: "dst",
      incoming: true,
      netns: options.netns ? LAB_NET.dst : undefined,
    });
    src = await QmpClient.connect(source.qmpPath);
    dst = await QmpClient.connect(destination.qmpPath);
    await source.waitReady();
    const bootMs = performance.now() - t0;
    if (options.warmupS) {
      await new Promise((r) => setTimeout(r, options.warmupS! * 1000));
    }
    if (options.capabilities) {
      await dst.setCapabilities(options.capabilities);
    }
    if (options.destinationParameters) {
      await dst.setParameters(options.destinationParameters);
    }
    const uri = options.incomingUri ??
      (options.netns
        ? `tcp:${LAB_NET.dstAddr}:4444`
        : `tcp:127.0.0.1:${freePort()}`);
    await dst.migrateIncoming(uri);
    const s = src, d = dst, g = destination;
    return {
      source,
      destination,
      src: s,
      dst: d,
      uri,
      bootMs,
      async close() {
        s.close();
        d.close();
        await source.kill();
        await g.kill();
        await Deno.remove(runDir, { recursive: true }).catch(() => {});
      },
    };
  } catch (e) {
    src?.close();
    dst?.close();
    await source.kill();
    await destination?.kill();
    throw e;
  }
}
