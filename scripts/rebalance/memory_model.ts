/**
 * What a VM's memory costs on the wire under a codec chain: the page-level
 * model `predict.ts` uses so that predictions count the policy's codecs.
 *
 * A VM's memory is described by a {@link MemoryProfile}: the share of its
 * pages that are all zero, and per codec the ratio (page bytes / wire
 * bytes) it reaches on the other pages. Pages fall in three kinds, each sent
 * by the first codec of the chain that claims it (as the engine does):
 * - **zero pages** (round 0 only): `zero` and `zstd` send them for about
 *   nothing, `dedup` for ~6 bytes, `rle` ~12, `lz4` ~16
 *   ({@link ZERO_PAGE_WIRE_BYTES}); `delta` declines a first send; `raw`
 *   sends 4096 bytes;
 * - **non-zero pages, first send** (round 0): `rle`, `dedup`, `lz4`, `zstd`
 *   at the profile's ratio; a codec whose ratio is 1 (or unknown) is taken
 *   to decline, and the next one is asked;
 * - **pages sent again** (rounds ≥ 1, taken as non-zero: the guest wrote
 *   them): `rle`, `lz4`, `zstd` at their ratio and `delta` at its ratio;
 *   `dedup` declines (its pass 2 in `bench:codecs` gains nothing).
 *
 * Where the numbers come from: the VM's inventory entry (`zeroFraction`,
 * `compression`), else the sim workload it names (measured, see
 * {@link WORKLOAD_PROFILES}), else nothing is known: no zero pages and no
 * gain from any codec, so a prediction never counts on savings nobody
 * measured. Frame headers and CPU limits of the codecs are not modelled.
 *
 * @module
 */

import type { VmSpec } from "./inventory.ts";

/** What is known of a VM's memory, for predictions. */
export interface MemoryProfile {
  /** Share of the VM's pages that are all zero, 0 to 1. */
  readonly zeroFraction: number;
  /**
   * Page bytes / wire bytes by codec name, on the non-zero pages (`delta`:
   * on pages sent again); an absent codec gains nothing (ratio 1).
   */
  readonly ratios: Readonly<Record<string, number>>;
  /** Where the figures come from, in words, e.g. `"sim workload memcached (bench:codecs)"`. */
  readonly source: string;
}

/** The profile of memory nothing is known about: no zero pages, no codec gains. */
export const UNKNOWN_MEMORY: MemoryProfile = Object.freeze({
  zeroFraction: 0,
  ratios: Object.freeze({}),
  source: "unknown: costed as incompressible",
});

/**
 * Wire bytes of one all-zero 4 KiB page by codec: measured with
 * `deno task bench:codecs --mem 64MiB --workloads zero --chains
 * zero,rle,dedup,lz4,zstd` (each codec alone with raw behind it; bytes above
 * the raw pages, over the zero pages): `zero` 0.0, `zstd` 0.1, `dedup` 6,
 * `rle` 12, `lz4` 16. Codecs absent here do not claim zero pages.
 */
export const ZERO_PAGE_WIRE_BYTES: Readonly<Record<string, number>> = Object
  .freeze({ zero: 0, zstd: 0, dedup: 6, rle: 12, lz4: 16 });

/**
 * Measured profiles of the sim workloads: 256 MiB of each (`seed: 1`, memory
 * held still), `deno task bench:codecs --mem 256MiB --runs 1 --no-cli
 * --chains zero,zero+rle,zero+dedup,zero+lz4,zero+zstd`. `zeroFraction` is
 * the share of pages `zero` claimed; each ratio is the non-zero pages' bytes
 * over what the chain `zero, CODEC` put on the wire for them. `delta` is
 * left out: its gain depends on how the guest rewrites a page (on 64-byte
 * rewrites `bench:codecs` pass 2 gives 49x), which the sim workloads were
 * not measured for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WORKLOAD_PROFILES } from "./mod.ts";
 *
 * // memcached's memory is mostly zero pages; postgres's compresses well.
 * assert.ok(WORKLOAD_PROFILES.memcached.zeroFraction > 0.8);
 * assert.ok(WORKLOAD_PROFILES.postgres.ratios.zstd > 10);
 * ```
 */
export const WORKLOAD_PROFILES: Readonly<Record<string, MemoryProfile>> = Object
  .freeze({
    idle: _measured("idle", 0.965, { rle: 1.12, lz4: 1.12, zstd: 1.18 }),
    zero: _measured("zero", 0.98, { zstd: 1.06 }),
    unique: _measured("unique", 0, {}),
    random: _measured("random", 0.23, {}),
    partial: _measured("partial", 0.38, {}),
    memcached: _measured("memcached", 0.877, {
      rle: 1.02,
      dedup: 1.42,
      lz4: 1.08,
      zstd: 1.43,
    }),
    postgres: _measured("postgres", 0.572, {
      rle: 1.84,
      dedup: 1.28,
      lz4: 8.36,
      zstd: 13.36,
    }),
    lmbench: _measured("lmbench", 0.58, { dedup: 1.76 }),
  });

function _measured(
  workload: string,
  zeroFraction: number,
  ratios: Record<string, number>,
): MemoryProfile {
  return Object.freeze({
    zeroFraction,
    ratios: Object.freeze(ratios),
    source: `sim workload ${workload} (measured with bench:codecs)`,
  });
}

/**
 * A VM's memory profile: the inventory's `zeroFraction` and `compression`
 * where given, the rest from its sim workload's measured profile, else
 * {@link UNKNOWN_MEMORY}'s.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryProfileOf } from "./mod.ts";
 *
 * const p = memoryProfileOf({ workload: "memcached", compression: { lz4: 2 } });
 * assert.equal(p.zeroFraction, 0.877); // from the sim workload
 * assert.equal(p.ratios.lz4, 2); // the inventory's measurement wins
 * assert.equal(memoryProfileOf({}).zeroFraction, 0); // nothing known
 * ```
 */
export function memoryProfileOf(
  vm: Pick<VmSpec, "workload" | "zeroFraction" | "compression">,
): MemoryProfile {
  const base = vm.workload !== undefined &&
      Object.hasOwn(WORKLOAD_PROFILES, vm.workload)
    ? WORKLOAD_PROFILES[vm.workload]
    : UNKNOWN_MEMORY;
  if (vm.zeroFraction === undefined && vm.compression === undefined) {
    return base;
  }
  const fromInventory = [
    vm.zeroFraction !== undefined ? "zeroFraction" : "",
    vm.compression !== undefined ? "compression" : "",
  ].filter((s) => s !== "").join(" and ");
  return {
    zeroFraction: vm.zeroFraction ?? base.zeroFraction,
    ratios: { ...base.ratios, ...vm.compression },
    source: base === UNKNOWN_MEMORY
      ? `inventory ${fromInventory}`
      : `inventory ${fromInventory}, else ${base.source}`,
  };
}

/** A codec of a chain, by name (a `CodecSpec` fits). */
export interface NamedCodec {
  /** Registry name, e.g. `"zero"`. */
  readonly name: string;
}

/** Which pages a round sends: round 0 sends every page once, later rounds send pages again. */
export type PageSend = "first" | "again";

/** Wire bytes per page under a chain, for one kind of round. */
export interface PageCosts {
  /** Wire bytes of one all-zero page (first sends only). */
  readonly zeroPage: number;
  /** Wire bytes of one non-zero page. */
  readonly page: number;
  /** The codec that sends the zero pages (`"raw"` when none claims them). */
  readonly zeroCodec: string;
  /** The codec that sends the non-zero pages. */
  readonly pageCodec: string;
}

/**
 * Wire bytes per page under `chain` for the pages of a first send (round 0)
 * or of a send again (later rounds), as the module's model says; raw is
 * implied at the end of every chain.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pageCosts, WORKLOAD_PROFILES } from "./mod.ts";
 *
 * const pg = WORKLOAD_PROFILES.postgres;
 * const zeroLz4 = pageCosts([{ name: "zero" }, { name: "lz4" }], pg, "first", 4096);
 * assert.equal(zeroLz4.zeroPage, 0); // zero claims the zero pages
 * assert.equal(zeroLz4.pageCodec, "lz4");
 * assert.equal(Math.round(zeroLz4.page), Math.round(4096 / 8.36));
 * const raw = pageCosts([{ name: "raw" }], pg, "first", 4096);
 * assert.deepEqual([raw.zeroPage, raw.page], [4096, 4096]);
 * ```
 */
export function pageCosts(
  chain: readonly NamedCodec[],
  profile: MemoryProfile,
  send: PageSend,
  pageSize: number,
): PageCosts {
  let zeroCodec = "raw";
  let zeroPage = pageSize;
  for (const { name } of chain) {
    const cost = ZERO_PAGE_WIRE_BYTES[name];
    if (cost !== undefined) {
      zeroCodec = name;
      zeroPage = cost;
      break;
    }
  }
  let pageCodec = "raw";
  let page = pageSize;
  for (const { name } of chain) {
    if (!_claimsNonZero(name, send)) continue;
    const ratio = profile.ratios[name] ?? 1;
    if (ratio > 1) {
      pageCodec = name;
      page = pageSize / ratio;
      break;
    }
  }
  return { zeroPage, page, zeroCodec, pageCodec };
}

/** Whether a codec may claim a non-zero page of this kind of send. */
function _claimsNonZero(name: string, send: PageSend): boolean {
  switch (name) {
    case "rle":
    case "lz4":
    case "zstd":
      return true;
    case "dedup":
      return send === "first";
    case "delta":
      return send === "again";
    default:
      return false;
  }
}
