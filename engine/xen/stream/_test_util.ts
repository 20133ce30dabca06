/**
 * Builders of synthetic libxc streams (and xl's wrapping around them) for
 * tests, written from the spec: image + domain header, a few opaque
 * records, pre-copy rounds of PAGE_DATA (each round re-sends some pfns, in
 * increasing order as libxc walks its bitmap), END.
 *
 * @module
 */

import { encodeImageHeader, encodePageData, encodeRecord } from "./image.ts";
import { PfnType, RecType } from "./format.ts";
import { concatBytes } from "../../bytes.ts";

/** A small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options of {@link buildStream}. */
export interface BuildOptions {
  readonly seed?: number;
  /** Pfns in the guest (default 300). */
  readonly pfns?: number;
  /** Pre-copy rounds (default 3; round 0 sends every pfn). */
  readonly rounds?: number;
  /** Stream version (default 3). */
  readonly version?: 2 | 3;
  /** Big-endian body (default false). */
  readonly bigEndian?: boolean;
  /** Pages per PAGE_DATA record (default 64, at most 1024). */
  readonly batch?: number;
}

/** What {@link buildStream} made, with the pfns of each round for checks. */
export interface BuiltStream {
  readonly bytes: Uint8Array;
  /** Pfns with data sent per round. */
  readonly roundPfns: number[][];
}

function page(rand: () => number, pfn: number, round: number): Uint8Array {
  const p = new Uint8Array(4096);
  const kind = rand();
  if (kind < 0.3) return p; // zero page
  if (kind < 0.45) {
    p.fill(0x5a); // the same content on many pfns (dedup)
    return p;
  }
  // Mostly stable content with a few words changing per round (delta).
  const r = prng(pfn * 7919 + 1);
  for (let i = 0; i < 4096; i += 4) p[i] = (r() * 256) | 0;
  for (let k = 0; k < 8; k++) p[(rand() * 4096) | 0] = round + k;
  return p;
}

/**
 * A synthetic libxc stream.
 *
 * @example
 * ```ts
 * const { bytes } = buildStream({ seed: 1 });
 * ```
 */
export function buildStream(options: BuildOptions = {}): BuiltStream {
  const rand = prng(options.seed ?? 1);
  const pfns = options.pfns ?? 300;
  const rounds = options.rounds ?? 3;
  const version = options.version ?? 3;
  const le = !options.bigEndian;
  const batch = options.batch ?? 64;
  const parts: Uint8Array[] = [
    encodeImageHeader({
      version,
      options: le ? 0 : 1,
      ihdrReserved: [0, 0],
      domainType: 2,
      pageShift: 12,
      dhdrReserved: 0,
      xenMajor: 4,
      xenMinor: 17,
    }),
  ];
  const opaque = (type: number, n: number): void => {
    const body = new Uint8Array(n);
    for (let i = 0; i < n; i++) body[i] = (rand() * 256) | 0;
    parts.push(encodeRecord(type, body, le));
  };
  opaque(RecType.X86_CPUID_POLICY, 44);
  opaque(RecType.X86_MSR_POLICY, 16);
  if (version === 3) opaque(RecType.STATIC_DATA_END, 0);
  opaque(RecType.X86_TSC_INFO, 24);
  opaque(RecType.HVM_PARAMS, 8 + 16 * 3);
  const roundPfns: number[][] = [];
  for (let round = 0; round < rounds; round++) {
    const list: number[] = [];
    for (let pfn = 0; pfn < pfns; pfn++) {
      if (round === 0 || rand() < 0.2) list.push(pfn);
    }
    if (round > 0 && list.length === 0) list.push(0);
    const withData: number[] = [];
    for (let i = 0; i < list.length; i += batch) {
      const entries = list.slice(i, i + batch).map((pfn) => {
        const t = rand();
        const type = t < 0.05
          ? PfnType.XTAB
          : t < 0.07
          ? PfnType.XALLOC
          : t < 0.1
          ? PfnType.L1TAB_PIN
          : PfnType.NOTAB;
        return { pfn, type };
      });
      const pages = entries.filter((e) => e.type < PfnType.BROKEN).map((e) => {
        withData.push(e.pfn);
        return page(rand, e.pfn, round);
      });
      parts.push(
        encodePageData({ kind: "page_data", reserved: 0, entries, pages }, le),
      );
    }
    roundPfns.push(withData);
  }
  opaque(RecType.HVM_CONTEXT, 1234);
  parts.push(encodeRecord(RecType.END, new Uint8Array(0), le));
  return { bytes: concat(parts), roundPfns };
}

const enc = new TextEncoder();

/**
 * The libxc stream wrapped as xl sends it: xl's saved-domain header and
 * config, libxl's stream header and records before the libxc image, libxl
 * records after it.
 *
 * @example
 * ```ts
 * const wire = wrapLikeXl(buildStream().bytes);
 * ```
 */
export function wrapLikeXl(libxc: Uint8Array): Uint8Array {
  const config = enc.encode('name = "guest"\nmemory = 1024\n');
  const xlHeader = concat([
    enc.encode("Xen saved domain, xl format\n \0 \r"),
    new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, config.length, 0, 0, 0]),
    config,
  ]);
  const libxl = concat([
    enc.encode("LibxlFmt"),
    new Uint8Array([0, 0, 0, 2, 0, 0, 0, 0]),
    encodeRecord(1, new Uint8Array(0)), // LIBXC_CONTEXT: the libxc image follows
  ]);
  const after = concat([
    encodeRecord(4, enc.encode("qemu device model state".repeat(9))),
    encodeRecord(0, new Uint8Array(0)),
  ]);
  return concat([xlHeader, libxl, libxc, after]);
}

/** Concatenates byte arrays (the engine's {@linkcode concatBytes}). */
export const concat: (parts: readonly Uint8Array[]) => Uint8Array = concatBytes;

/** Splits bytes into chunks of random sizes (1..max). */
export function chunks(
  bytes: Uint8Array,
  seed: number,
  max = 5000,
): Uint8Array[] {
  const rand = prng(seed);
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rand() * max);
    out.push(bytes.slice(at, at + n));
    at += n;
  }
  return out;
}
