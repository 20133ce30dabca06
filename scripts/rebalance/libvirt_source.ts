/**
 * A live inventory read from libvirt hosts (`hakobu rebalance --hosts
 * libvirt:URI,...`): each host's memory from `virNodeGetInfo` (or the
 * memory you give it for VMs), each running domain's memory (its current
 * allocation), its measured dirty rate (domstats `dirtyrate.*`, after a
 * `virDomainStartDirtyRateCalc` sample when asked) and its tags (from the
 * domain's `<metadata>`, see {@link parseDomainTags}).
 *
 * Host names: `NAME=libvirt:URI` names a host; else the URI's server part
 * (`qemu+ssh://root@kvm1/system` → `kvm1`, `qemu+tcp://10.0.0.5:16509/system`
 * → `10.0.0.5:16509`), and for a local URI (`qemu:///system`) the name the
 * host reports (`virConnectGetHostname`). Names go in the state file, so
 * they must stay the same from run to run: an address does, a hostname that
 * two hosts share (two daemons on one machine) does not tell them apart,
 * hence the server part first. Two hosts that end up with one name are an
 * error that says to name them.
 *
 * @module
 */

import { parseSize } from "../../dsl/units.ts";
import {
  DirtyRateStatus,
  DomainStatsTypes,
  ErrorCode,
  LibvirtConnection,
  type LibvirtDomain,
  LibvirtError,
} from "../../ffi/libvirt/mod.ts";
import type { MemoryProfile } from "./memory_model.ts";
import { SAMPLE_CHUNK_PAGES, sampleMemoryProfile } from "./memory_sample.ts";
import { PAGE_SIZE } from "../../engine/plan.ts";
import {
  DEFAULT_MAX_HOST_MEMORY_PERCENT,
  type HostSpec,
  type Inventory,
  InventoryError,
  type Targets,
  type VmSpec,
} from "./inventory.ts";
import type { InventorySource } from "./source.ts";

/** Pages of each domain {@link libvirtInventory} samples by default: 256 (1 MiB, 32 reads). */
export const DEFAULT_SAMPLE_PAGES = 256;

/** The XML namespace of hakobu's domain metadata (tags). */
export const HAKOBU_XMLNS = "https://hakobu.dev/xmlns/1";

/** One host of `--hosts`: a libvirt URI, and optionally its name and the memory VMs may use. */
export interface LibvirtHostRef {
  /** The libvirt connection URI, e.g. `qemu+ssh://root@kvm1/system`. */
  readonly uri: string;
  /** Its name in the inventory (default: see the module doc). */
  readonly name?: string;
  /** Memory available to VMs, bytes (default: the node's memory). */
  readonly memoryBytes?: number;
}

/**
 * Parses `--hosts`: a comma-separated list of `libvirt:URI` or
 * `NAME=libvirt:URI`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHostsFlag } from "./libvirt_source.ts";
 *
 * assert.deepEqual(
 *   parseHostsFlag("libvirt:qemu+ssh://root@kvm1/system, big=libvirt:qemu:///system"),
 *   [
 *     { uri: "qemu+ssh://root@kvm1/system" },
 *     { name: "big", uri: "qemu:///system" },
 *   ],
 * );
 * assert.throws(() => parseHostsFlag("qemu:///system"), /expected libvirt:URI/);
 * ```
 *
 * @throws {InventoryError} (field `--hosts`) naming the entry that failed and why.
 */
export function parseHostsFlag(text: string): LibvirtHostRef[] {
  const entries = text.split(",").map((s) => s.trim());
  if (entries.every((e) => e === "")) {
    throw new InventoryError(
      "--hosts",
      `Invalid --hosts "${text}": expected libvirt:URI[,libvirt:URI...]`,
    );
  }
  const out: LibvirtHostRef[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    if (entry === "") {
      throw new InventoryError(
        "--hosts",
        `Invalid --hosts "${text}": an empty entry between commas`,
      );
    }
    const m = /^(?:([A-Za-z0-9][A-Za-z0-9._:-]*)=)?([a-z][a-z0-9+.-]*):(.*)$/
      .exec(entry);
    if (!m || m[2] !== "libvirt" || m[3] === "") {
      throw new InventoryError(
        "--hosts",
        `Invalid --hosts entry "${entry}": expected libvirt:URI or NAME=libvirt:URI, e.g. libvirt:qemu+ssh://root@kvm1/system`,
      );
    }
    const uri = m[3];
    if (!/^[a-z][a-z0-9+.-]*:\/\//.test(uri)) {
      throw new InventoryError(
        "--hosts",
        `Invalid --hosts entry "${entry}": "${uri}" is no libvirt URI (DRIVER[+TRANSPORT]://[USER@]HOST[:PORT]/PATH, e.g. qemu:///system)`,
      );
    }
    if (seen.has(uri)) {
      throw new InventoryError(
        "--hosts",
        `Invalid --hosts: "${uri}" is given twice`,
      );
    }
    seen.add(uri);
    out.push(m[1] ? { name: m[1], uri } : { uri });
  }
  return out;
}

/**
 * The name a host gets from its URI alone: the server part without the
 * user (`qemu+ssh://root@kvm1/system` → `kvm1`, with `:PORT` when the URI
 * gives one), or `null` for a local URI (`qemu:///system`, `test:///default`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostNameFromUri } from "./libvirt_source.ts";
 *
 * assert.equal(hostNameFromUri("qemu+ssh://root@kvm1.example.com/system"), "kvm1.example.com");
 * assert.equal(hostNameFromUri("qemu+tcp://127.0.0.1:16531/system"), "127.0.0.1:16531");
 * assert.equal(hostNameFromUri("qemu+tls://[fd00::5]/system"), "[fd00::5]");
 * assert.equal(hostNameFromUri("qemu:///system"), null);
 * ```
 */
export function hostNameFromUri(uri: string): string | null {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (!m) return null;
  const authority = m[1].slice(m[1].lastIndexOf("@") + 1);
  return authority === "" ? null : authority;
}

function _unescapeXml(s: string): string {
  return s.replace(
    /&(lt|gt|amp|quot|apos|#\d+|#x[0-9a-fA-F]+);/g,
    (_, e) =>
      e === "lt"
        ? "<"
        : e === "gt"
        ? ">"
        : e === "amp"
        ? "&"
        : e === "quot"
        ? '"'
        : e === "apos"
        ? "'"
        : String.fromCodePoint(
          e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10),
        ),
  );
}

/**
 * The tags in a domain's XML: the text of a `tags` element in hakobu's
 * namespace ({@link HAKOBU_XMLNS}) inside `<metadata>`, split on commas
 * and white space; `[]` when there is none. Set them with
 *
 * ```sh
 * virsh metadata DOMAIN --uri https://hakobu.dev/xmlns/1 --key hakobu \
 *   --set '<tags>heavy,db</tags>' --live --config
 * ```
 *
 * which libvirt keeps as
 * `<hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">heavy,db</hakobu:tags>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseDomainTags } from "./libvirt_source.ts";
 *
 * const xml = `<domain type='kvm'><name>db1</name><metadata>
 *   <other:tags xmlns:other="https://example.com/x">not,ours</other:tags>
 *   <hakobu:tags xmlns:hakobu="https://hakobu.dev/xmlns/1">heavy, db</hakobu:tags>
 * </metadata></domain>`;
 * assert.deepEqual(parseDomainTags(xml), ["heavy", "db"]);
 * assert.deepEqual(parseDomainTags("<domain><name>x</name></domain>"), []);
 * ```
 *
 * @throws {Error} when a tag has characters a tag may not have (letters,
 *   digits, `.`, `_`, `:`, `/`, `-`).
 */
export function parseDomainTags(xml: string): string[] {
  const metadata = /<metadata\b[^>]*>([\s\S]*?)<\/metadata>/.exec(xml)?.[1];
  if (!metadata) return [];
  const tags: string[] = [];
  // <P:tags xmlns:P="NS">…</P:tags>, or <tags xmlns="NS">…</tags>
  const re =
    /<(?:([A-Za-z_][\w.-]*):)?tags\b([^>]*?)(?:\/>|>([\s\S]*?)<\/(?:\1:)?tags>)/g;
  for (const m of metadata.matchAll(re)) {
    const [, prefix, attrs, body] = m;
    const decl = prefix ? `xmlns:${prefix}` : "xmlns";
    const ns = new RegExp(
      `(?:^|\\s)${decl.replace(".", "\\.")}\\s*=\\s*(["'])(.*?)\\1`,
    )
      .exec(attrs)?.[2];
    if (ns === undefined || _unescapeXml(ns) !== HAKOBU_XMLNS) continue;
    for (const tag of _unescapeXml(body ?? "").split(/[\s,]+/)) {
      if (tag === "") continue;
      if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/.test(tag)) {
        throw new Error(
          `Invalid tag "${tag}" in the domain's <metadata>: expected letters, digits, ".", "_", ":", "/" or "-"`,
        );
      }
      if (!tags.includes(tag)) tags.push(tag);
    }
  }
  return tags;
}

/** Options of {@link libvirtInventory}. */
export interface LibvirtInventoryOptions {
  /** Memory available to VMs on every host without its own `memoryBytes`, bytes (default: the node's memory). */
  readonly memoryBytes?: number;
  /** Targets and limits (default: every host at most 85% of its memory). */
  readonly targets?: Partial<Targets>;
  /** Most migrations in flight per host (sets each host's `maxMigrations`). */
  readonly maxMigrations?: number;
  /**
   * Seconds to measure each running domain's dirty rate for before reading
   * it (`virDomainStartDirtyRateCalc`, page sampling; all domains at once).
   * 0 (the default) reads the last measurement the host has, if any. A
   * domain whose driver cannot measure (the test driver) gets no rate: 0.
   */
  readonly dirtyRateSeconds?: number;
  /**
   * Pages of each running domain to read (`virDomainMemoryPeek`) to measure
   * its memory profile: the share of zero pages and each codec's ratio
   * (`memory_sample.ts`), which go in its `zeroFraction` and
   * `compression` so predictions count the policy's codecs. 0 reads none
   * (the domain is costed as incompressible). Default
   * {@link DEFAULT_SAMPLE_PAGES}. A domain that cannot be read (the driver
   * cannot peek, or it stopped) gets no profile and a log line.
   */
  readonly samplePages?: number;
  /** Notes for people, e.g. a domain whose dirty rate could not be measured. */
  readonly log?: (line: string) => void;
}

/** A live inventory over libvirt hosts: an {@link InventorySource} that also knows each host's URI. */
export interface LibvirtInventorySource extends InventorySource {
  /** The hosts as given. */
  readonly hosts: readonly LibvirtHostRef[];
  /**
   * The URI of the host named `name` in the last inventory read.
   *
   * @throws {InventoryError} when no host has that name (or nothing was read yet).
   */
  uriOf(name: string): string;
}

/** The memory a domain counts for on its host: its current allocation, in whole pages. */
function _pages(bytes: number): number {
  return Math.ceil(bytes / PAGE_SIZE) * PAGE_SIZE;
}

function _message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const _sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface _HostRead {
  host: HostSpec;
  uri: string;
  vms: VmSpec[];
}

/** A domain's memory profile from a sample of its pages, or null (sampling off, or it failed: logged). */
function _sampleProfile(
  dom: LibvirtDomain,
  memoryBytes: number,
  uri: string,
  options: LibvirtInventoryOptions,
): MemoryProfile | null {
  const pages = options.samplePages ?? DEFAULT_SAMPLE_PAGES;
  if (pages === 0) return null;
  try {
    const sample = sampleMemoryProfile(
      (start, size) => dom.memoryPeek(start, size),
      memoryBytes,
      { pages },
    );
    return sample.profile;
  } catch (e) {
    options.log?.(
      `${uri}: domain "${dom.name}": its memory could not be sampled (${
        _message(e)
      }); costed as incompressible`,
    );
    return null;
  }
}

async function _readHost(
  ref: LibvirtHostRef,
  index: number,
  options: LibvirtInventoryOptions,
): Promise<_HostRead> {
  const field = `hosts[${index}]`;
  let conn: LibvirtConnection;
  try {
    // On a Worker: a remote host that does not answer keeps no one waiting
    // but this read.
    conn = await LibvirtConnection.openAsync(ref.uri, { readOnly: false });
  } catch (e) {
    throw new InventoryError(
      field,
      `Cannot read libvirt host "${ref.uri}": ${_message(e)}`,
      { cause: e },
    );
  }
  try {
    const name = ref.name ?? hostNameFromUri(ref.uri) ?? conn.hostname();
    const memoryBytes = ref.memoryBytes ?? options.memoryBytes ??
      conn.nodeInfo().memoryBytes;
    const host: HostSpec = {
      name,
      memoryBytes,
      ...(options.maxMigrations !== undefined
        ? { maxMigrations: options.maxMigrations }
        : {}),
    };
    const running = conn.listDomains().filter((d) => d.active);
    const seconds = options.dirtyRateSeconds ?? 0;
    let measuring = false;
    if (seconds > 0) {
      for (const d of running) {
        using dom = conn.lookupDomain(d.name);
        try {
          dom.startDirtyRateCalc(seconds);
          measuring = true;
        } catch (e) {
          if (!(e instanceof LibvirtError && e.code === ErrorCode.NO_SUPPORT)) {
            options.log?.(
              `${ref.uri}: domain "${d.name}": ${
                _message(e)
              }; using its last measurement, if any`,
            );
          }
        }
      }
    }
    const statsTypes = DomainStatsTypes.state | DomainStatsTypes.balloon |
      DomainStatsTypes.dirtyrate;
    let stats = conn.allDomainStats(statsTypes);
    if (measuring) {
      // QEMU measures in the background; wait it out, then until every
      // domain that started one says it is done (at most 3 s more).
      await _sleep(seconds * 1000);
      const until = performance.now() + 3000;
      while (
        stats.some((s) => s.dirtyRateStatus === DirtyRateStatus.measuring) &&
        performance.now() < until
      ) {
        await _sleep(100);
        stats = conn.allDomainStats(statsTypes);
      }
      stats = conn.allDomainStats(statsTypes);
    }
    const byName = new Map(stats.map((s) => [s.name, s]));
    const vms: VmSpec[] = [];
    for (const d of running) {
      using dom = conn.lookupDomain(d.name);
      const s = byName.get(d.name);
      const current = s?.balloonCurrentBytes ?? dom.info().memoryBytes;
      let tags: string[];
      try {
        tags = parseDomainTags(dom.xml());
      } catch (e) {
        throw new InventoryError(
          `${field}.${d.name}.tags`,
          `libvirt host "${ref.uri}", domain "${d.name}": ${_message(e)}`,
          { cause: e },
        );
      }
      const rate = s?.dirtyRateStatus === DirtyRateStatus.measured
        ? s.dirtyRateBytesPerSecond
        : undefined;
      const profile = _sampleProfile(dom, current, ref.uri, options);
      vms.push({
        name: d.name,
        host: name,
        memoryBytes: _pages(current),
        dirtyRate: rate ?? 0,
        ...(tags.length > 0 ? { tags } : {}),
        ...(profile === null ? {} : {
          zeroFraction: profile.zeroFraction,
          compression: profile.ratios,
        }),
      });
    }
    return { host, uri: ref.uri, vms };
  } catch (e) {
    if (e instanceof InventoryError) throw e;
    throw new InventoryError(
      field,
      `Cannot read libvirt host "${ref.uri}": ${_message(e)}`,
      { cause: e },
    );
  } finally {
    conn.close();
  }
}

/**
 * A live {@link InventorySource} over libvirt hosts: every `read()` asks
 * each host (all at once) for its memory and running domains. A domain
 * running on two hosts at once (mid-migration, or a split brain) is an
 * error naming both; a host that does not answer is an error naming its URI.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtInventory } from "./libvirt_source.ts";
 *
 * // libvirt's in-process test driver: one host ("vm"), one running domain.
 * const source = libvirtInventory([{ uri: "test:///default" }], {
 *   memoryBytes: 4 * 2 ** 30,
 * });
 * assert.equal(source.live, true);
 * const inv = await source.read();
 * assert.deepEqual(inv.hosts, [{ name: "vm", memoryBytes: 4 * 2 ** 30 }]);
 * const [vm] = inv.vms;
 * assert.equal(vm.name, "test");
 * assert.equal(vm.host, "vm");
 * assert.equal(vm.memoryBytes, 2 * 2 ** 30); // its current memory
 * assert.equal(vm.dirtyRate, 0); // the test driver measures none
 * // 256 of its pages were read: the test driver's memory is a byte ramp,
 * // with no zero page, that compresses very well.
 * assert.equal(vm.zeroFraction, 0);
 * assert.ok(vm.compression!.lz4 > 100);
 * assert.equal(source.uriOf("vm"), "test:///default");
 * ```
 */
export function libvirtInventory(
  hosts: readonly LibvirtHostRef[],
  options: LibvirtInventoryOptions = {},
): LibvirtInventorySource {
  if (hosts.length === 0) {
    throw new InventoryError(
      "--hosts",
      "No libvirt hosts: give at least one libvirt:URI",
    );
  }
  const pages = options.samplePages ?? DEFAULT_SAMPLE_PAGES;
  if (
    !Number.isInteger(pages) || pages < 0 || pages % SAMPLE_CHUNK_PAGES !== 0
  ) {
    throw new InventoryError(
      "--sample-pages",
      `Invalid --sample-pages "${pages}": expected a whole multiple of ${SAMPLE_CHUNK_PAGES} (pages are read ${SAMPLE_CHUNK_PAGES} at a time), or 0 to read none`,
    );
  }
  let uris = new Map<string, string>();
  const targets: Targets = {
    ...options.targets,
    maxHostMemoryPercent: options.targets?.maxHostMemoryPercent ??
      DEFAULT_MAX_HOST_MEMORY_PERCENT,
  };
  return {
    description: `libvirt hosts ${hosts.map((h) => h.uri).join(", ")}`,
    live: true,
    hosts,
    uriOf(name: string): string {
      const uri = uris.get(name);
      if (uri === undefined) {
        throw new InventoryError(
          "hosts",
          `No libvirt host named "${name}" in the last inventory read (hosts: ${
            [...uris.keys()].join(", ") || "none read yet"
          })`,
        );
      }
      return uri;
    },
    async read(): Promise<Inventory> {
      const read = await Promise.all(
        hosts.map((h, i) => _readHost(h, i, options)),
      );
      const names = new Map<string, string>();
      for (const r of read) {
        const other = names.get(r.host.name);
        if (other !== undefined) {
          throw new InventoryError(
            "hosts",
            `libvirt hosts "${other}" and "${r.uri}" are both named "${r.host.name}": name them, e.g. --hosts a=libvirt:${other},b=libvirt:${r.uri}`,
          );
        }
        names.set(r.host.name, r.uri);
      }
      const where = new Map<string, string>();
      for (const r of read) {
        for (const vm of r.vms) {
          const other = where.get(vm.name);
          if (other !== undefined) {
            throw new InventoryError(
              "vms",
              `Domain "${vm.name}" runs on two libvirt hosts at once, "${other}" and "${r.uri}" (a migration under way?): try again once it is on one`,
            );
          }
          where.set(vm.name, r.uri);
        }
      }
      uris = names;
      return {
        hosts: read.map((r) => r.host),
        vms: read.flatMap((r) => r.vms),
        targets,
      };
    },
  };
}

/**
 * Parses `--host-memory`: `SIZE` (every host) or `NAME=SIZE` (one host).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHostMemory } from "./libvirt_source.ts";
 *
 * assert.deepEqual(parseHostMemory("512MiB"), { memoryBytes: 512 * 2 ** 20 });
 * assert.deepEqual(parseHostMemory("kvm1=64GiB"), { name: "kvm1", memoryBytes: 64 * 2 ** 30 });
 * assert.throws(() => parseHostMemory("kvm1=lots"), /--host-memory "kvm1=lots"/);
 * ```
 *
 * @throws {InventoryError} (field `--host-memory`).
 */
export function parseHostMemory(
  text: string,
): { readonly name?: string; readonly memoryBytes: number } {
  const eq = text.lastIndexOf("=");
  const name = eq < 0 ? undefined : text.slice(0, eq);
  const size = eq < 0 ? text : text.slice(eq + 1);
  let bytes = NaN;
  try {
    bytes = parseSize(size);
  } catch {
    // reported below
  }
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || name === "") {
    throw new InventoryError(
      "--host-memory",
      `Invalid --host-memory "${text}": expected SIZE or HOST=SIZE, e.g. 64GiB or kvm1=64GiB`,
    );
  }
  return name === undefined
    ? { memoryBytes: bytes }
    : { name, memoryBytes: bytes };
}
