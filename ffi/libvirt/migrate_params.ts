/**
 * {@link MigrateParams}: the `VIR_MIGRATE_PARAM_*` typed parameters of
 * `virDomainMigrateToURI3` as one typed object, and
 * {@link migrateTypedParams}, which turns it into the list libvirt takes,
 * each with the C type the header gives it.
 *
 * @module
 */

import type { TypedParamInput } from "./typed_params.ts";

/** `virDomainMigrate*` parameters (libvirt-domain.h `VIR_MIGRATE_PARAM_*`); all optional. */
export interface MigrateParams {
  /**
   * `migrate_uri` (string): where the hypervisor sends the stream, e.g.
   * `tcp://10.0.0.2:49152`: point it at hakobu's tunnel to put hakobu's
   * codecs in the stream.
   */
  readonly migrateUri?: string;
  /** `listen_address` (string): where the destination's hypervisor listens for the stream. */
  readonly listenAddress?: string;
  /** `bandwidth` (ullong): MiB/s limit; 0 leaves libvirt's default. */
  readonly bandwidthMiBs?: number;
  /** `bandwidth.postcopy` (ullong): MiB/s limit of the post-copy phase. */
  readonly bandwidthPostcopyMiBs?: number;
  /** `destination_name` (string): the domain's name on the destination. */
  readonly destinationName?: string;
  /** `destination_xml` (string): the domain's XML on the destination (same ABI). */
  readonly destinationXml?: string;
  /** `persistent_xml` (string): the persistent definition on the destination. */
  readonly persistentXml?: string;
  /** `graphics_uri` (string). */
  readonly graphicsUri?: string;
  /** `parallel.connections` (int): streams with `MigrateFlags.PARALLEL`. */
  readonly parallelConnections?: number;
  /**
   * `compression` (string, repeatable): methods with
   * `MigrateFlags.COMPRESSED`: `"xbzrle"`, `"mt"` (libvirt 9.0 rejects
   * `"zstd"`).
   */
  readonly compression?: readonly string[];
  /** `compression.mt.level` (int, 0..9). */
  readonly compressionMtLevel?: number;
  /** `compression.mt.threads` (int). */
  readonly compressionMtThreads?: number;
  /** `compression.mt.dthreads` (int). */
  readonly compressionMtDthreads?: number;
  /** `compression.xbzrle.cache` (ullong): xbzrle cache size in bytes. */
  readonly compressionXbzrleCacheBytes?: number;
  /** `auto_converge.initial` (int): first throttle percentage. */
  readonly autoConvergeInitial?: number;
  /** `auto_converge.increment` (int): throttle step. */
  readonly autoConvergeIncrement?: number;
  /** `migrate_disks` (string, repeatable): disks to copy (with NON_SHARED_*). */
  readonly migrateDisks?: readonly string[];
  /** `disks_port` (int). */
  readonly disksPort?: number;
  /** `disks_uri` (string). */
  readonly disksUri?: string;
  /** `tls.destination` (string): the host name to check the destination's TLS certificate against. */
  readonly tlsDestination?: string;
  /** Any other parameter, passed as given. */
  readonly extra?: readonly TypedParamInput[];
}

/**
 * The typed parameter list for {@link MigrateParams}, in a fixed order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { migrateTypedParams } from "./migrate_params.ts";
 *
 * assert.deepEqual(
 *   migrateTypedParams({
 *     migrateUri: "tcp://127.0.0.1:49152",
 *     bandwidthMiBs: 100,
 *     compression: ["xbzrle", "mt"],
 *   }),
 *   [
 *     { field: "migrate_uri", type: "string", value: "tcp://127.0.0.1:49152" },
 *     { field: "bandwidth", type: "ullong", value: 100 },
 *     { field: "compression", type: "string", value: "xbzrle" },
 *     { field: "compression", type: "string", value: "mt" },
 *   ],
 * );
 * ```
 */
export function migrateTypedParams(p: MigrateParams): TypedParamInput[] {
  const out: TypedParamInput[] = [];
  const str = (field: string, v: string | undefined) => {
    if (v !== undefined) out.push({ field, type: "string", value: v });
  };
  const int = (field: string, v: number | undefined) => {
    if (v !== undefined) out.push({ field, type: "int", value: v });
  };
  const ull = (field: string, v: number | undefined) => {
    if (v !== undefined) out.push({ field, type: "ullong", value: v });
  };
  str("migrate_uri", p.migrateUri);
  str("listen_address", p.listenAddress);
  ull("bandwidth", p.bandwidthMiBs);
  ull("bandwidth.postcopy", p.bandwidthPostcopyMiBs);
  str("destination_name", p.destinationName);
  str("destination_xml", p.destinationXml);
  str("persistent_xml", p.persistentXml);
  str("graphics_uri", p.graphicsUri);
  int("parallel.connections", p.parallelConnections);
  for (const m of p.compression ?? []) str("compression", m);
  int("compression.mt.level", p.compressionMtLevel);
  int("compression.mt.threads", p.compressionMtThreads);
  int("compression.mt.dthreads", p.compressionMtDthreads);
  ull("compression.xbzrle.cache", p.compressionXbzrleCacheBytes);
  int("auto_converge.initial", p.autoConvergeInitial);
  int("auto_converge.increment", p.autoConvergeIncrement);
  for (const d of p.migrateDisks ?? []) str("migrate_disks", d);
  int("disks_port", p.disksPort);
  str("disks_uri", p.disksUri);
  str("tls.destination", p.tlsDestination);
  out.push(...(p.extra ?? []));
  return out;
}

/** Each `VIR_MIGRATE_PARAM_*` name this file sets, with its C macro (the test checks them against the header). */
export const MIGRATE_PARAM_MACROS: Readonly<Record<string, string>> = {
  VIR_MIGRATE_PARAM_URI: "migrate_uri",
  VIR_MIGRATE_PARAM_LISTEN_ADDRESS: "listen_address",
  VIR_MIGRATE_PARAM_BANDWIDTH: "bandwidth",
  VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY: "bandwidth.postcopy",
  VIR_MIGRATE_PARAM_DEST_NAME: "destination_name",
  VIR_MIGRATE_PARAM_DEST_XML: "destination_xml",
  VIR_MIGRATE_PARAM_PERSIST_XML: "persistent_xml",
  VIR_MIGRATE_PARAM_GRAPHICS_URI: "graphics_uri",
  VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS: "parallel.connections",
  VIR_MIGRATE_PARAM_COMPRESSION: "compression",
  VIR_MIGRATE_PARAM_COMPRESSION_MT_LEVEL: "compression.mt.level",
  VIR_MIGRATE_PARAM_COMPRESSION_MT_THREADS: "compression.mt.threads",
  VIR_MIGRATE_PARAM_COMPRESSION_MT_DTHREADS: "compression.mt.dthreads",
  VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE: "compression.xbzrle.cache",
  VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL: "auto_converge.initial",
  VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT: "auto_converge.increment",
  VIR_MIGRATE_PARAM_MIGRATE_DISKS: "migrate_disks",
  VIR_MIGRATE_PARAM_DISKS_PORT: "disks_port",
  VIR_MIGRATE_PARAM_DISKS_URI: "disks_uri",
  VIR_MIGRATE_PARAM_TLS_DESTINATION: "tls.destination",
};
