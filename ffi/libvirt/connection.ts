/**
 * {@link LibvirtConnection}: a connection to one libvirt host
 * (`virConnectPtr`): who it is (hostname, versions, node info, free
 * memory), its domains (list, look up, stats), and defining or starting
 * domains for labs. {@link libvirtVersion} needs no connection.
 *
 * @module
 */

import { replyValue, runBlocking } from "./_blocking.ts";
import { libcSymbols, takeCString } from "./_libc.ts";
import { takeStatsRecords } from "./_pointers.ts";
import {
  type DomainStateName,
  domainStateName,
  ErrorCode,
} from "./constants.ts";
import { LibvirtDomain } from "./domain.ts";
import { DEFAULT_DOMAIN_STATS, type DomainStats } from "./domain_stats.ts";
import {
  type LibvirtCallContext,
  LibvirtError,
  libvirtError,
  unwrap,
} from "./errors.ts";
import { libvirt, VIR_NODE_INFO } from "./libvirt.ts";

/** A libvirt version number, `major * 1_000_000 + minor * 1000 + release`, split. */
export interface LibvirtVersion {
  /** e.g. 9. */
  readonly major: number;
  /** e.g. 0. */
  readonly minor: number;
  /** e.g. 0. */
  readonly release: number;
  /** The number as libvirt gives it, e.g. 9000000. */
  readonly raw: number;
}

/** `virNodeGetInfo`, memory in bytes. */
export interface NodeInfo {
  /** CPU model, e.g. `"x86_64"`. */
  readonly model: string;
  /** Memory (`memory` KiB × 1024). */
  readonly memoryBytes: number;
  /** Active CPUs. */
  readonly cpus: number;
  /** Expected CPU frequency (MHz), 0 when unknown. */
  readonly mhz: number;
  /** NUMA cells. */
  readonly nodes: number;
  /** Sockets per node. */
  readonly sockets: number;
  /** Cores per socket. */
  readonly cores: number;
  /** Threads per core. */
  readonly threads: number;
}

/** One domain as {@link LibvirtConnection.listDomains} reports it. */
export interface DomainSummary {
  /** Name. */
  readonly name: string;
  /** UUID. */
  readonly uuid: string;
  /** The hypervisor's id while it runs, else `undefined`. */
  readonly id: number | undefined;
  /** `virDomainState`. */
  readonly state: number;
  /** The state's name, e.g. `"running"`. */
  readonly stateName: DomainStateName | "unknown";
  /** Whether it runs. */
  readonly active: boolean;
  /** Whether it has a persistent definition. */
  readonly persistent: boolean;
}

/** Options of {@link LibvirtConnection.open}. */
export interface OpenOptions {
  /** Open read-only (`virConnectOpenReadOnly`): enough for inventory, refused for changes. */
  readonly readOnly?: boolean;
}

/**
 * Splits a libvirt version number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitVersion } from "./connection.ts";
 *
 * assert.deepEqual(splitVersion(9_000_000), { major: 9, minor: 0, release: 0, raw: 9_000_000 });
 * assert.deepEqual(splitVersion(7_002_001), { major: 7, minor: 2, release: 1, raw: 7_002_001 });
 * ```
 */
export function splitVersion(raw: number): LibvirtVersion {
  return {
    major: Math.floor(raw / 1_000_000),
    minor: Math.floor(raw / 1000) % 1000,
    release: raw % 1000,
    raw,
  };
}

/**
 * The version of the loaded libvirt library (`virGetVersion`), no
 * connection needed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtVersion } from "./mod.ts";
 *
 * assert.ok(libvirtVersion().major >= 9); // Debian 12: 9.0.0
 * ```
 * @throws {LibvirtError}
 */
export function libvirtVersion(): LibvirtVersion {
  const out = new BigUint64Array(1);
  unwrap(
    libvirt().virGetVersion(new Uint8Array(out.buffer), null, null),
    { call: "virGetVersion", what: "Cannot read the libvirt version" },
  );
  return splitVersion(Number(out[0]));
}

/**
 * An open connection to one libvirt host. Close it with {@link close} (or
 * `using`); domains found on it stay usable until freed (libvirt keeps the
 * connection alive for them).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LibvirtConnection } from "./mod.ts";
 *
 * using conn = LibvirtConnection.open("test:///default"); // libvirt's in-process test driver
 * assert.equal(conn.driverType(), "TEST");
 * assert.equal(conn.nodeInfo().cpus, 16);
 * const [test] = conn.listDomains();
 * assert.equal(test.name, "test");
 * assert.equal(test.stateName, "running");
 * ```
 */
export class LibvirtConnection implements Disposable {
  #conn: Deno.PointerObject | null;
  /** The URI it was opened with. */
  readonly uri: string;

  /** @internal Use {@link LibvirtConnection.open}. */
  constructor(conn: Deno.PointerObject, uri: string) {
    this.#conn = conn;
    this.uri = uri;
  }

  /**
   * Opens `uri` (`virConnectOpen`, or `virConnectOpenReadOnly`) on this
   * thread. A remote URI that does not answer blocks the event loop: use
   * {@link openAsync} for those.
   *
   * @throws {LibvirtError} with libvirt's message, e.g. for a URI no driver
   *   or daemon serves.
   */
  static open(uri: string, options: OpenOptions = {}): LibvirtConnection {
    const lib = libvirt();
    const name = new TextEncoder().encode(uri + "\0");
    const conn = options.readOnly
      ? lib.virConnectOpenReadOnly(name)
      : lib.virConnectOpen(name);
    if (conn === null) {
      throw libvirtError(LibvirtConnection.#openCtx(uri, options));
    }
    return new LibvirtConnection(conn, uri);
  }

  /**
   * Opens `uri` on a Worker thread: the event loop keeps running while a
   * remote host answers (or does not).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LibvirtConnection } from "./mod.ts";
   *
   * const conn = await LibvirtConnection.openAsync("test:///default");
   * assert.equal(conn.hostname().length > 0, true);
   * conn.close();
   * ```
   * @throws {LibvirtError} (as a rejection) with libvirt's message.
   */
  static async openAsync(
    uri: string,
    options: OpenOptions = {},
  ): Promise<LibvirtConnection> {
    libvirt(); // load and initialise here first (fails fast without libvirt0)
    const reply = await runBlocking({
      kind: "open",
      uri,
      readOnly: options.readOnly ?? false,
    });
    const ctx = LibvirtConnection.#openCtx(uri, options);
    const conn = Deno.UnsafePointer.create(BigInt(replyValue(reply, ctx)));
    if (conn === null) {
      throw new LibvirtError(ctx, {
        code: 0,
        errorDomain: 0,
        level: 2,
        message: "the Worker returned a NULL connection",
      });
    }
    return new LibvirtConnection(conn, uri);
  }

  static #openCtx(uri: string, options: OpenOptions): LibvirtCallContext {
    return {
      call: options.readOnly ? "virConnectOpenReadOnly" : "virConnectOpen",
      what: `Cannot connect to libvirt${options.readOnly ? " read-only" : ""}`,
      uri,
    };
  }

  /** The raw `virConnectPtr`. @throws {RangeError} once closed. */
  get handle(): Deno.PointerObject {
    if (!this.#conn) {
      throw new RangeError(`The libvirt connection to "${this.uri}" is closed`);
    }
    return this.#conn;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#conn === null;
  }

  #ctx(call: string, what: string): LibvirtCallContext {
    return { call, what, uri: this.uri };
  }

  /** The host's name (`virConnectGetHostname`). @throws {LibvirtError} */
  hostname(): string {
    const p = libvirt().virConnectGetHostname(this.handle);
    if (p === null) {
      throw libvirtError(
        this.#ctx("virConnectGetHostname", "Cannot get the host name"),
      );
    }
    return takeCString(p) ?? "";
  }

  /** The URI as the driver canonicalises it (`virConnectGetURI`). @throws {LibvirtError} */
  canonicalUri(): string {
    const p = libvirt().virConnectGetURI(this.handle);
    if (p === null) {
      throw libvirtError(
        this.#ctx("virConnectGetURI", "Cannot get the connection URI"),
      );
    }
    return takeCString(p) ?? "";
  }

  /** The driver's name, e.g. `"QEMU"`, `"TEST"` (`virConnectGetType`). @throws {LibvirtError} */
  driverType(): string {
    const p = libvirt().virConnectGetType(this.handle);
    if (p === null) {
      throw libvirtError(
        this.#ctx("virConnectGetType", "Cannot get the driver type"),
      );
    }
    return Deno.UnsafePointerView.getCString(p); // static string: not freed
  }

  /** The libvirt version on the host's side (`virConnectGetLibVersion`). @throws {LibvirtError} */
  libVersion(): LibvirtVersion {
    const out = new BigUint64Array(1);
    unwrap(
      libvirt().virConnectGetLibVersion(
        this.handle,
        new Uint8Array(out.buffer),
      ),
      this.#ctx("virConnectGetLibVersion", "Cannot get the libvirt version"),
    );
    return splitVersion(Number(out[0]));
  }

  /** The hypervisor's version, e.g. QEMU 7.2.0 (`virConnectGetVersion`). @throws {LibvirtError} */
  hypervisorVersion(): LibvirtVersion {
    const out = new BigUint64Array(1);
    unwrap(
      libvirt().virConnectGetVersion(this.handle, new Uint8Array(out.buffer)),
      this.#ctx("virConnectGetVersion", "Cannot get the hypervisor version"),
    );
    return splitVersion(Number(out[0]));
  }

  /** Whether the connection still works (`virConnectIsAlive`); false once closed. */
  isAlive(): boolean {
    return this.#conn !== null &&
      libvirt().virConnectIsAlive(this.#conn) === 1;
  }

  /** The host's CPUs and memory (`virNodeGetInfo`). @throws {LibvirtError} */
  nodeInfo(): NodeInfo {
    const buf = new Uint8Array(VIR_NODE_INFO.size);
    unwrap(
      libvirt().virNodeGetInfo(this.handle, buf),
      this.#ctx("virNodeGetInfo", "Cannot get the node information"),
    );
    const v = new DataView(buf.buffer);
    const model = buf.subarray(VIR_NODE_INFO.model, VIR_NODE_INFO.memory);
    const end = model.indexOf(0);
    return {
      model: new TextDecoder().decode(end < 0 ? model : model.subarray(0, end)),
      memoryBytes: Number(v.getBigUint64(VIR_NODE_INFO.memory, true)) * 1024,
      cpus: v.getUint32(VIR_NODE_INFO.cpus, true),
      mhz: v.getUint32(VIR_NODE_INFO.mhz, true),
      nodes: v.getUint32(VIR_NODE_INFO.nodes, true),
      sockets: v.getUint32(VIR_NODE_INFO.sockets, true),
      cores: v.getUint32(VIR_NODE_INFO.cores, true),
      threads: v.getUint32(VIR_NODE_INFO.threads, true),
    };
  }

  /**
   * The host's free memory in bytes (`virNodeGetFreeMemory`).
   *
   * @throws {LibvirtError} (libvirt returns 0 on failure; the error tells).
   */
  freeMemory(): number {
    const lib = libvirt();
    const free = lib.virNodeGetFreeMemory(this.handle);
    if (free === 0n) {
      const e = libvirtError(
        this.#ctx("virNodeGetFreeMemory", "Cannot get the free memory"),
      );
      if (e.code !== 0) throw e;
    }
    return Number(free);
  }

  /**
   * Every domain (`virConnectListAllDomains`; `flags` from
   * `ListDomainsFlags` filter, 0 for all), as plain data.
   *
   * @throws {LibvirtError}
   */
  listDomains(flags = 0): DomainSummary[] {
    const lib = libvirt();
    const arr = new BigUint64Array(1);
    const n = unwrap(
      lib.virConnectListAllDomains(
        this.handle,
        new Uint8Array(arr.buffer),
        flags,
      ),
      this.#ctx("virConnectListAllDomains", "Cannot list the domains"),
    );
    const list = Deno.UnsafePointer.create(arr[0]);
    if (list === null) return [];
    const view = new Deno.UnsafePointerView(list);
    const doms: LibvirtDomain[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const p = view.getPointer(i * 8);
        if (p !== null) doms.push(new LibvirtDomain(p, this.uri));
      }
    } finally {
      // The array itself is the caller's to free(); each domain is freed below.
      libcSymbols().free(list);
    }
    try {
      return doms.map((d) => {
        const st = d.state();
        return {
          name: d.name,
          uuid: d.uuid,
          id: d.id(),
          state: st.state,
          stateName: domainStateName(st.state),
          active: d.isActive(),
          persistent: d.isPersistent(),
        };
      });
    } finally {
      for (const d of doms) d.free();
    }
  }

  /** The domain named `name` (`virDomainLookupByName`). @throws {LibvirtError} `NO_DOMAIN` when there is none. */
  lookupDomain(name: string): LibvirtDomain {
    const p = libvirt().virDomainLookupByName(
      this.handle,
      new TextEncoder().encode(name + "\0"),
    );
    if (p === null) {
      throw libvirtError({
        ...this.#ctx(
          "virDomainLookupByName",
          `Cannot look up domain "${name}"`,
        ),
        domainName: name,
      });
    }
    return new LibvirtDomain(p, this.uri);
  }

  /**
   * The domain named `name`, or `undefined` when this host has none (e.g.
   * to check where a migrated domain ended up).
   *
   * @throws {LibvirtError} on any other failure.
   */
  findDomain(name: string): LibvirtDomain | undefined {
    try {
      return this.lookupDomain(name);
    } catch (e) {
      if (e instanceof LibvirtError && e.code === ErrorCode.NO_DOMAIN) {
        return undefined;
      }
      throw e;
    }
  }

  /** Creates and starts a transient domain from XML (`virDomainCreateXML`). @throws {LibvirtError} */
  createDomain(xml: string, flags = 0): LibvirtDomain {
    const p = libvirt().virDomainCreateXML(
      this.handle,
      new TextEncoder().encode(xml + "\0"),
      flags,
    );
    if (p === null) {
      throw libvirtError(
        this.#ctx("virDomainCreateXML", "Cannot create a domain from XML"),
      );
    }
    return new LibvirtDomain(p, this.uri);
  }

  /** Defines (does not start) a persistent domain from XML (`virDomainDefineXML`). @throws {LibvirtError} */
  defineDomain(xml: string): LibvirtDomain {
    const p = libvirt().virDomainDefineXML(
      this.handle,
      new TextEncoder().encode(xml + "\0"),
    );
    if (p === null) {
      throw libvirtError(
        this.#ctx("virDomainDefineXML", "Cannot define a domain from XML"),
      );
    }
    return new LibvirtDomain(p, this.uri);
  }

  /**
   * Stats of every domain (`virConnectGetAllDomainStats`): `types` an OR of
   * `DomainStatsTypes` (default state, CPU, balloon, vCPU, dirty rate;
   * groups the driver lacks are left out), `flags` from `ListDomainsFlags`
   * to filter.
   *
   * @throws {LibvirtError}
   */
  allDomainStats(
    types: number = DEFAULT_DOMAIN_STATS,
    flags = 0,
  ): DomainStats[] {
    const ret = new BigUint64Array(1);
    unwrap(
      libvirt().virConnectGetAllDomainStats(
        this.handle,
        types,
        new Uint8Array(ret.buffer),
        flags,
      ),
      this.#ctx("virConnectGetAllDomainStats", "Cannot get the domain stats"),
    );
    const list = Deno.UnsafePointer.create(ret[0]);
    return list === null ? [] : takeStatsRecords(list);
  }

  /** Closes the connection (`virConnectClose`); idempotent. */
  close(): void {
    if (!this.#conn) return;
    const conn = this.#conn;
    this.#conn = null;
    libvirt().virConnectClose(conn);
  }

  /** {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
