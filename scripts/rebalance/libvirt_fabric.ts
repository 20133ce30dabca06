/**
 * The fabric of libvirt hosts: each move runs through hakobu's libvirt
 * backend (`openBackend("libvirt:URI/DOMAIN").migrate(plan,
 * "libvirt:URI2")`), steered by the policy, aborted on the move's timeout,
 * and its result checked on the hosts themselves: the move counts as done
 * (`verified`) only when the domain runs on the destination and no longer
 * runs on the source. After the run `rebalanceOnce` reads the live
 * inventory again (`libvirt_source.ts`) and checks every VM against its
 * result (`check.ts`).
 *
 * @module
 */

import { openBackend } from "../../engine/backend/registry.ts";
import type { BackendMigrateOptions as EngineBackendOptions } from "../../engine/backend/backend.ts";
import type { MigrationReport } from "../../engine/report.ts";
import { LibvirtConnection } from "../../ffi/libvirt/mod.ts";
import type {
  BackendMigrateOptions,
  BackendSession,
  Fabric,
  FabricRequest,
} from "./runner.ts";

/** Where the fabric finds each host's URI (a {@link LibvirtInventorySource} is one). */
export interface LibvirtHostUris {
  /** The URI of the host named `name`. */
  uriOf(name: string): string;
}

/** Where a domain is, read from its two hosts after a migration. */
export interface DomainPlacement {
  /** The domain's state on the source (`"running"`, `"shutoff"`, …), null when it is not there. */
  readonly source: string | null;
  /** The domain's state on the destination, null when it is not there. */
  readonly destination: string | null;
}

/** Options of {@link libvirtFabric}. */
export interface LibvirtFabricOptions {
  /** More options for the backend's `migrate` (e.g. `security`, `onProgress`); `signal` is the move's. */
  readonly migrate?: Omit<EngineBackendOptions, "signal">;
  /** Progress lines for people. */
  readonly log?: (line: string) => void;
}

/**
 * Reads where a domain is on two libvirt hosts (`null`: not defined there).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { domainPlacement } from "./libvirt_fabric.ts";
 *
 * const p = await domainPlacement("test", "test:///default", "test:///default");
 * assert.deepEqual(p, { source: "running", destination: "running" });
 * ```
 */
export async function domainPlacement(
  domain: string,
  sourceUri: string,
  destinationUri: string,
): Promise<DomainPlacement> {
  const stateOn = async (uri: string): Promise<string | null> => {
    const conn = await LibvirtConnection.openAsync(uri);
    try {
      const dom = conn.findDomain(domain);
      if (!dom) return null;
      try {
        return dom.state().stateName;
      } finally {
        dom.free();
      }
    } finally {
      conn.close();
    }
  };
  const [source, destination] = await Promise.all([
    stateOn(sourceUri),
    stateOn(destinationUri),
  ]);
  return { source, destination };
}

/**
 * Whether a placement shows the domain moved: running on the destination,
 * and not running on the source (a persistent definition left there, shut
 * off, is fine).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { movedBy } from "./libvirt_fabric.ts";
 *
 * assert.equal(movedBy({ source: null, destination: "running" }), true);
 * assert.equal(movedBy({ source: "shutoff", destination: "running" }), true);
 * assert.equal(movedBy({ source: "running", destination: null }), false);
 * assert.equal(movedBy({ source: "running", destination: "paused" }), false);
 * ```
 */
export function movedBy(p: DomainPlacement): boolean {
  return p.destination === "running" &&
    (p.source === null || p.source === "shutoff" || p.source === "crashed");
}

/**
 * A {@link Fabric} over libvirt hosts: `open()` returns a
 * {@link BackendSession} that migrates through the libvirt backend.
 *
 * `verified` in the result is the hosts' word: the backend's report
 * (which says `verified` only when hakobu compared the memory, i.e. through
 * its tunnel) is kept, and the move counts as done when the domain runs on
 * the destination and not on the source; the report's `outcome` says which.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtFabric, libvirtInventory } from "./mod.ts";
 *
 * // Needs two libvirt hosts; here the fabric is only built.
 * const source = libvirtInventory([
 *   { uri: "qemu+tcp://10.0.0.1/system" },
 *   { uri: "qemu+tcp://10.0.0.2/system" },
 * ]);
 * const fabric = libvirtFabric(source);
 * assert.equal(fabric.name, "libvirt");
 * await fabric.close();
 * ```
 */
export function libvirtFabric(
  hosts: LibvirtHostUris,
  options: LibvirtFabricOptions = {},
): Fabric {
  return {
    name: "libvirt",
    open(request: FabricRequest): Promise<BackendSession> {
      const fromUri = hosts.uriOf(request.from.name);
      const toUri = hosts.uriOf(request.to.name);
      const backend = openBackend(`libvirt:${fromUri}/${request.vm.name}`);
      return Promise.resolve({
        async migrate(
          { plan, signal }: BackendMigrateOptions,
        ): Promise<MigrationReport> {
          options.log?.(
            `${request.vm.name}: libvirt ${fromUri} → ${toUri} under policy "${plan.name}"`,
          );
          const report = await backend.migrate(plan, `libvirt:${toUri}`, {
            ...options.migrate,
            signal,
          });
          let placement: DomainPlacement;
          try {
            placement = await domainPlacement(request.vm.name, fromUri, toUri);
          } catch (e) {
            return {
              ...report,
              verified: false,
              outcome:
                `${report.outcome}; cannot read where "${request.vm.name}" runs now: ${
                  e instanceof Error ? e.message : String(e)
                }`,
            };
          }
          const moved = movedBy(placement);
          const where = `source ${placement.source ?? "gone"}, destination ${
            placement.destination ?? "absent"
          }`;
          return {
            ...report,
            verified: moved,
            outcome: moved && !report.verified
              ? `${report.outcome}; moved: checked on the hosts (${where})`
              : !moved && report.verified
              ? `${report.outcome}; yet NOT moved: read from the hosts, ${where}`
              : report.outcome,
          };
        },
        close: () => Promise.resolve(),
      });
    },
    close: () => Promise.resolve(),
  };
}
