/**
 * The inventory: which hosts exist, how much memory each has, which VMs run
 * where, and the targets a rebalance aims for. Read from a JSON file with
 * {@link loadInventory} or checked from an object with {@link parseInventory};
 * every error names the field path that failed.
 *
 * ```json
 * {
 *   "hosts": [{ "name": "h1", "memory": "64GiB", "address": "10.0.0.1:7700", "maxMigrations": 2 }],
 *   "vms": [{ "name": "web1", "host": "h1", "memory": "8GiB", "dirtyRate": "50MB/s", "workload": "memcached",
 *             "tags": ["web"], "zeroFraction": 0.4, "compression": { "lz4": 1.8, "zstd": 2.6 } }],
 *   "targets": { "maxHostMemoryPercent": 85, "maxMoves": 10, "maxMovesPerHost": 4, "linkRate": "10Gbit" }
 * }
 * ```
 *
 * @module
 */

import { parseBandwidth, parseSize } from "../../dsl/units.ts";
import { HakobuError } from "../../engine/errors.ts";
import { writeFileAtomic } from "./_atomic_write.ts";
import { codecNames } from "../../engine/codecs/registry.ts";
import { PAGE_SIZE } from "../../engine/plan.ts";
import {
  workloadByName,
  workloadNames,
} from "../../engine/sim/workloads/registry.ts";

/** Page size every VM's memory is a whole number of. */

/** Default target: no host above 85% of its memory. */
export const DEFAULT_MAX_HOST_MEMORY_PERCENT = 85;

/**
 * An inventory is invalid. `field` names the field that failed, e.g.
 * `"vms[3].host"`; the message names the value and the fix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { InventoryError, parseInventory } from "./mod.ts";
 *
 * assert.throws(
 *   () =>
 *     parseInventory({
 *       hosts: [],
 *       vms: [{ name: "a", host: "h9", memory: "1GiB" }],
 *     }),
 *   (e) => e instanceof InventoryError && e.field === "vms[0].host",
 * );
 * ```
 */
export class InventoryError extends HakobuError {
  /** The field path that failed, e.g. `"vms[3].host"`, or `"file"`. */
  declare readonly field: string;
  /**
   * Makes an error for one inventory field.
   *
   * @param field The field path that failed.
   * @param message What went wrong, the value in quotes, and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, { ...options, field });
  }
}

/** A host that runs VMs. */
export interface HostSpec {
  /** Unique name. */
  readonly name: string;
  /** Memory available to VMs, in bytes. */
  readonly memoryBytes: number;
  /** Where its receiver listens, `HOST:PORT` (real fabrics; the sim fabric ignores it). */
  readonly address?: string;
  /** Most migrations in flight at once with this host as source or destination. */
  readonly maxMigrations?: number;
}

/** A VM and where it runs. */
export interface VmSpec {
  /** Unique name. */
  readonly name: string;
  /** Name of the host it runs on. */
  readonly host: string;
  /** Guest memory in bytes, a whole number of 4 KiB pages. */
  readonly memoryBytes: number;
  /**
   * Measured dirty rate in bytes per second; when the file gives none, the
   * sim workload's default rate, else 0.
   */
  readonly dirtyRate: number;
  /** Sim workload to model it with (sim fabric); see `workloadNames()`. */
  readonly workload?: string;
  /** Load figure carried through for reports (the planner does not use it). */
  readonly load?: number;
  /** Labels, e.g. `["db", "pinned"]`, that `--exclude-tag` matches. */
  readonly tags?: readonly string[];
  /**
   * Share of the VM's pages that are all zero (0 to 1), when measured;
   * predictions cost them as the policy's codecs send them (see
   * `memory_model.ts`). Absent: the sim workload's measured share, else 0.
   */
  readonly zeroFraction?: number;
  /**
   * Measured compression ratios (page bytes / wire bytes, ≥ 1) by codec
   * name, on the VM's non-zero pages (`delta`: on pages sent again), e.g.
   * `{ "lz4": 1.8 }`. Absent codecs: the sim workload's measured ratio,
   * else 1 (no gain assumed).
   */
  readonly compression?: Readonly<Record<string, number>>;
}

/** What a rebalance aims for and its limits. */
export interface Targets {
  /** No host above this percentage of its memory (0 < p ≤ 100). */
  readonly maxHostMemoryPercent: number;
  /** Most moves in one plan. */
  readonly maxMoves?: number;
  /** Most moves in one plan with a host as source or destination. */
  readonly maxMovesPerHost?: number;
  /** Link rate in bytes per second used for predictions when the policy is unpaced. */
  readonly linkRate?: number;
}

/** A checked inventory. */
export interface Inventory {
  /** Hosts, in file order. */
  readonly hosts: readonly HostSpec[];
  /** VMs, in file order. */
  readonly vms: readonly VmSpec[];
  /** Targets and limits. */
  readonly targets: Targets;
}

type Obj = Record<string, unknown>;

function _describe(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function _object(value: unknown, path: string, what: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InventoryError(
      path,
      `Invalid ${path || "inventory"} "${
        _describe(value)
      }": expected an object (${what})`,
    );
  }
  return value as Obj;
}

function _knownKeys(obj: Obj, path: string, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    // Keys starting with "_" or "$" are comments and schema links.
    if (known.includes(key) || key.startsWith("_") || key.startsWith("$")) {
      continue;
    }
    const at = path ? `${path}.${key}` : key;
    throw new InventoryError(
      at,
      `Unknown field "${at}": expected one of ${known.join(", ")}`,
    );
  }
}

function _name(obj: Obj, path: string): string {
  const v = obj.name;
  if (typeof v !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v)) {
    throw new InventoryError(
      `${path}.name`,
      `Invalid ${path}.name "${
        _describe(v)
      }": expected a name of letters, digits, ".", "_" or "-"`,
    );
  }
  return v;
}

function _size(obj: Obj, path: string): number {
  const hasBytes = obj.memoryBytes !== undefined;
  const hasText = obj.memory !== undefined;
  if (hasBytes === hasText) {
    throw new InventoryError(
      `${path}.memory`,
      `Invalid ${path}: give exactly one of memory (e.g. "64GiB") or memoryBytes`,
    );
  }
  let bytes: number;
  const field = hasBytes ? `${path}.memoryBytes` : `${path}.memory`;
  const v = hasBytes ? obj.memoryBytes : obj.memory;
  if (typeof v === "number") bytes = v;
  else if (typeof v === "string") {
    try {
      bytes = parseSize(v);
    } catch (e) {
      throw new InventoryError(
        field,
        `Invalid ${field}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  } else bytes = NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new InventoryError(
      field,
      `Invalid ${field} "${
        _describe(v)
      }": expected a positive size, e.g. "64GiB" or a whole number of bytes`,
    );
  }
  return bytes;
}

function _positiveInt(obj: Obj, key: string, path: string): number | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new InventoryError(
      `${path}.${key}`,
      `Invalid ${path}.${key} "${_describe(v)}": expected a whole number ≥ 1`,
    );
  }
  return v;
}

function _rate(v: unknown, field: string): number {
  let rate: number | null;
  if (typeof v === "number") rate = v;
  else if (typeof v === "string") {
    try {
      rate = parseBandwidth(v);
    } catch (e) {
      throw new InventoryError(
        field,
        `Invalid ${field}: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  } else rate = NaN;
  if (rate === null || !Number.isFinite(rate) || rate < 0) {
    throw new InventoryError(
      field,
      `Invalid ${field} "${
        _describe(v)
      }": expected a rate in bytes per second or a string such as "50MB/s"`,
    );
  }
  return rate;
}

function _host(value: unknown, path: string): HostSpec {
  const o = _object(value, path, "a host: name, memory");
  _knownKeys(o, path, [
    "name",
    "memory",
    "memoryBytes",
    "address",
    "maxMigrations",
  ]);
  const host: {
    -readonly [K in keyof HostSpec]: HostSpec[K];
  } = { name: _name(o, path), memoryBytes: _size(o, path) };
  if (o.address !== undefined) {
    const a = o.address;
    const m = typeof a === "string"
      ? /^(?:\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(a)
      : null;
    if (!m || Number(m[1]) > 65535) {
      throw new InventoryError(
        `${path}.address`,
        `Invalid ${path}.address "${
          _describe(a)
        }": expected HOST:PORT, e.g. 127.0.0.1:7700`,
      );
    }
    host.address = a as string;
  }
  const max = _positiveInt(o, "maxMigrations", path);
  if (max !== undefined) host.maxMigrations = max;
  return host;
}

function _vm(value: unknown, path: string): VmSpec {
  const o = _object(value, path, "a VM: name, host, memory");
  _knownKeys(o, path, [
    "name",
    "host",
    "memory",
    "memoryBytes",
    "dirtyRate",
    "workload",
    "load",
    "tags",
    "zeroFraction",
    "compression",
  ]);
  const name = _name(o, path);
  if (typeof o.host !== "string" || o.host === "") {
    throw new InventoryError(
      `${path}.host`,
      `Invalid ${path}.host "${
        _describe(o.host)
      }": expected the name of a host in the inventory`,
    );
  }
  const memoryBytes = _size(o, path);
  if (memoryBytes % PAGE_SIZE !== 0) {
    throw new InventoryError(
      `${path}.memory`,
      `Invalid ${path}.memory "${memoryBytes}": a VM's memory must be a whole number of ${PAGE_SIZE}-byte pages`,
    );
  }
  let workload: string | undefined;
  let workloadRate = 0;
  if (o.workload !== undefined) {
    const w = o.workload;
    try {
      if (typeof w !== "string") throw new Error("not a string");
      workloadRate = workloadByName(w).dirtyRate * PAGE_SIZE;
      workload = w;
    } catch (e) {
      throw new InventoryError(
        `${path}.workload`,
        `Invalid ${path}.workload "${_describe(w)}": expected one of ${
          workloadNames().join(", ")
        }`,
        { cause: e },
      );
    }
  }
  const dirtyRate = o.dirtyRate === undefined
    ? workloadRate
    : _rate(o.dirtyRate, `${path}.dirtyRate`);
  const vm: { -readonly [K in keyof VmSpec]: VmSpec[K] } = {
    name,
    host: o.host,
    memoryBytes,
    dirtyRate,
  };
  if (workload !== undefined) vm.workload = workload;
  if (o.load !== undefined) {
    if (
      typeof o.load !== "number" || !Number.isFinite(o.load) || o.load < 0
    ) {
      throw new InventoryError(
        `${path}.load`,
        `Invalid ${path}.load "${_describe(o.load)}": expected a number ≥ 0`,
      );
    }
    vm.load = o.load;
  }
  if (o.tags !== undefined) vm.tags = _tags(o.tags, `${path}.tags`);
  if (o.zeroFraction !== undefined) {
    const z = o.zeroFraction;
    if (typeof z !== "number" || !(z >= 0 && z <= 1)) {
      throw new InventoryError(
        `${path}.zeroFraction`,
        `Invalid ${path}.zeroFraction "${
          _describe(z)
        }": expected the share of all-zero pages, a number from 0 to 1`,
      );
    }
    vm.zeroFraction = z;
  }
  if (o.compression !== undefined) {
    vm.compression = _compression(o.compression, `${path}.compression`);
  }
  return vm;
}

function _tags(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) {
    throw new InventoryError(
      field,
      `Invalid ${field} "${
        _describe(value)
      }": expected an array of tags, e.g. ["db", "pinned"]`,
    );
  }
  value.forEach((t, i) => {
    if (typeof t !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/.test(t)) {
      throw new InventoryError(
        `${field}[${i}]`,
        `Invalid ${field}[${i}] "${
          _describe(t)
        }": expected a tag of letters, digits, ".", "_", ":", "/" or "-"`,
      );
    }
  });
  return [...value] as string[];
}

function _compression(value: unknown, field: string): Record<string, number> {
  const o = _object(value, field, 'codec name → ratio, e.g. { "lz4": 1.8 }');
  const known = codecNames().filter((n) => n !== "raw" && n !== "zero");
  const out: Record<string, number> = {};
  for (const [codec, ratio] of Object.entries(o)) {
    if (!known.includes(codec)) {
      throw new InventoryError(
        `${field}.${codec}`,
        `Unknown codec "${codec}" in ${field}: expected one of ${
          known.join(", ")
        } (zero pages are counted by zeroFraction)`,
      );
    }
    if (typeof ratio !== "number" || !Number.isFinite(ratio) || ratio < 1) {
      throw new InventoryError(
        `${field}.${codec}`,
        `Invalid ${field}.${codec} "${
          _describe(ratio)
        }": expected a ratio of page bytes to wire bytes, a number ≥ 1`,
      );
    }
    out[codec] = ratio;
  }
  return out;
}

function _targets(value: unknown): Targets {
  if (value === undefined) {
    return { maxHostMemoryPercent: DEFAULT_MAX_HOST_MEMORY_PERCENT };
  }
  const o = _object(value, "targets", "maxHostMemoryPercent, maxMoves, ...");
  _knownKeys(o, "targets", [
    "maxHostMemoryPercent",
    "maxMoves",
    "maxMovesPerHost",
    "linkRate",
  ]);
  const t: { -readonly [K in keyof Targets]: Targets[K] } = {
    maxHostMemoryPercent: DEFAULT_MAX_HOST_MEMORY_PERCENT,
  };
  if (o.maxHostMemoryPercent !== undefined) {
    const p = o.maxHostMemoryPercent;
    if (typeof p !== "number" || !(p > 0 && p <= 100)) {
      throw new InventoryError(
        "targets.maxHostMemoryPercent",
        `Invalid targets.maxHostMemoryPercent "${
          _describe(p)
        }": expected a percentage above 0 and at most 100`,
      );
    }
    t.maxHostMemoryPercent = p;
  }
  const maxMoves = _positiveInt(o, "maxMoves", "targets");
  if (maxMoves !== undefined) t.maxMoves = maxMoves;
  const perHost = _positiveInt(o, "maxMovesPerHost", "targets");
  if (perHost !== undefined) t.maxMovesPerHost = perHost;
  if (o.linkRate !== undefined) {
    const r = _rate(o.linkRate, "targets.linkRate");
    if (r === 0) {
      throw new InventoryError(
        "targets.linkRate",
        `Invalid targets.linkRate "${
          _describe(o.linkRate)
        }": a rate must be positive`,
      );
    }
    t.linkRate = r;
  }
  return t;
}

/**
 * Checks an inventory object (parsed JSON) and returns it with sizes and
 * rates in bytes: hosts and VMs need unique names, every VM's host must
 * exist, sizes parse with `parseSize`, rates with `parseBandwidth`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInventory } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "h1", memory: "64GiB" }],
 *   vms: [{ name: "web1", host: "h1", memory: "8GiB", dirtyRate: "50MB/s" }],
 * });
 * assert.equal(inv.vms[0].memoryBytes, 8 * 2 ** 30);
 * assert.equal(inv.vms[0].dirtyRate, 50_000_000); // bytes per second
 * assert.equal(inv.targets.maxHostMemoryPercent, 85); // the default target
 * ```
 *
 * @throws {InventoryError} naming the field path that failed.
 */
export function parseInventory(value: unknown): Inventory {
  const o = _object(value, "", "hosts, vms, targets");
  _knownKeys(o, "", ["hosts", "vms", "targets"]);
  for (const key of ["hosts", "vms"] as const) {
    if (!Array.isArray(o[key])) {
      throw new InventoryError(
        key,
        `Invalid ${key} "${_describe(o[key])}": expected an array`,
      );
    }
  }
  const hosts = (o.hosts as unknown[]).map((h, i) => _host(h, `hosts[${i}]`));
  const hostNames = new Map<string, number>();
  hosts.forEach((h, i) => {
    const first = hostNames.get(h.name);
    if (first !== undefined) {
      throw new InventoryError(
        `hosts[${i}].name`,
        `Duplicate host name "${h.name}": hosts[${first}] has it too`,
      );
    }
    hostNames.set(h.name, i);
  });
  const vms = (o.vms as unknown[]).map((v, i) => _vm(v, `vms[${i}]`));
  const vmNames = new Map<string, number>();
  vms.forEach((v, i) => {
    const first = vmNames.get(v.name);
    if (first !== undefined) {
      throw new InventoryError(
        `vms[${i}].name`,
        `Duplicate VM name "${v.name}": vms[${first}] has it too`,
      );
    }
    vmNames.set(v.name, i);
    if (!hostNames.has(v.host)) {
      throw new InventoryError(
        `vms[${i}].host`,
        `Invalid vms[${i}].host "${v.host}": it is not a host in the inventory`,
      );
    }
  });
  return { hosts, vms, targets: _targets(o.targets) };
}

/**
 * Reads and checks an inventory JSON file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostUsage, loadInventory } from "./mod.ts";
 *
 * // A path relative to the current directory (here: the repository root).
 * const inv = await loadInventory("examples/inventory.json");
 * assert.equal(inv.hosts.length, 3);
 * assert.equal(hostUsage(inv).get("h1"), 832 * 2 ** 20); // over its 75% target
 * ```
 *
 * @throws {InventoryError} path `"file"` when the file is missing or not
 * JSON, or the field that failed.
 */
export async function loadInventory(path: string): Promise<Inventory> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InventoryError(
      "file",
      `Cannot read inventory "${path}": ${
        e instanceof Deno.errors.NotFound
          ? "file not found"
          : e instanceof Error
          ? e.message
          : String(e)
      }`,
      { cause: e },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new InventoryError(
      "file",
      `Cannot parse inventory "${path}": ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  try {
    return parseInventory(value);
  } catch (e) {
    if (e instanceof InventoryError) {
      throw new InventoryError(e.field, `${path}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/**
 * The inventory as plain JSON-ready data (sizes in bytes), e.g. to write the
 * inventory back after a rebalance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { inventoryToJson, parseInventory } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "h1", memory: "1GiB" }],
 *   vms: [{ name: "a", host: "h1", memory: "256MiB" }],
 * });
 * // Sizes in bytes, ready for JSON.stringify and Deno.writeTextFile:
 * const json = inventoryToJson(inv);
 * assert.deepEqual(parseInventory(json), inv);
 * assert.deepEqual(json.vms, [{
 *   name: "a",
 *   host: "h1",
 *   memoryBytes: 2 ** 28,
 *   dirtyRate: 0,
 * }]);
 * ```
 */
export function inventoryToJson(inventory: Inventory): Record<string, unknown> {
  return {
    hosts: inventory.hosts.map((h) => ({ ...h })),
    vms: inventory.vms.map((v) => ({
      ...v,
      ...(v.tags ? { tags: [...v.tags] } : {}),
      ...(v.compression ? { compression: { ...v.compression } } : {}),
    })),
    targets: { ...inventory.targets },
  };
}

/**
 * Writes an inventory as JSON (sizes in bytes) atomically: a temporary file
 * beside it, renamed over it, so that a reader (the next cron run) sees the
 * old inventory or the new one, never a part.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadInventory, parseInventory, saveInventory } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "h1", memory: "1GiB" }],
 *   vms: [{ name: "a", host: "h1", memory: "256MiB", tags: ["db"] }],
 * });
 * const dir = await Deno.makeTempDir();
 * await saveInventory(`${dir}/inventory.json`, inv);
 * assert.deepEqual(await loadInventory(`${dir}/inventory.json`), inv);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveInventory(
  path: string,
  inventory: Inventory,
): Promise<void> {
  await writeFileAtomic(
    path,
    JSON.stringify(inventoryToJson(inventory), null, 2) + "\n",
  );
}

/**
 * Memory in use on each host (sum of its VMs' memory), by host name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostUsage, parseInventory } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "h1", memory: "1GiB" }, { name: "h2", memory: "1GiB" }],
 *   vms: [
 *     { name: "a", host: "h1", memory: "256MiB" },
 *     { name: "b", host: "h1", memory: "128MiB" },
 *   ],
 * });
 * assert.equal(hostUsage(inv).get("h1"), 384 * 2 ** 20); // bytes
 * assert.equal(hostUsage(inv).get("h2"), 0);
 * ```
 */
export function hostUsage(inventory: Inventory): Map<string, number> {
  const used = new Map<string, number>(inventory.hosts.map((h) => [h.name, 0]));
  for (const vm of inventory.vms) {
    used.set(vm.host, (used.get(vm.host) ?? 0) + vm.memoryBytes);
  }
  return used;
}
