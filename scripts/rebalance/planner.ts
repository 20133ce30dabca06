/**
 * The rebalance planner: which VMs to move where so that no host uses more
 * than a target share of its memory, moving as few bytes as it can.
 *
 * For each overloaded host (largest excess first, ties by name) it looks for
 * the set of movable VMs whose predicted transfer (see `predict.ts`: memory
 * plus what the guest re-dirties during pre-copy) is smallest while freeing
 * at least the excess; ties go to fewer moves, then to names. A VM whose
 * dirty rate is not below the link rate cannot converge and is unmovable.
 * VMs the caller holds (`hold`: excluded, or in their cooldown) never move
 * but still count for their host's load; the plan lists them in `skipped`.
 * Predictions count the policy's codecs with each VM's memory profile
 * (`memory_model.ts`), and the cost ranked is the predicted wire bytes.
 * Each chosen VM goes, largest first, to the destination with the most room
 * left after the move (ties by name); a destination never ends above the
 * target, counting the moves planned before. A host that no such set fixes
 * is reported infeasible with the reason. A balanced inventory gives no moves.
 *
 * @module
 */

import type { Plan } from "../../engine/plan.ts";
import { hostUsage, type Inventory, type VmSpec } from "./inventory.ts";
import { memoryProfileOf } from "./memory_model.ts";
import { predictMigration } from "./predict.ts";

/** Options of {@link planMoves}; unset limits come from the inventory's targets. */
export interface PlanMovesOptions {
  /** Link rate in bytes per second for predictions. */
  readonly bandwidth: number;
  /** The migration policy; its `decide()` shapes the predictions. */
  readonly policy?: Plan;
  /** Target: no host above this percentage of its memory (default: the inventory's). */
  readonly maxHostMemoryPercent?: number;
  /** Most moves in the plan. */
  readonly maxMoves?: number;
  /** Most moves in the plan with a host as source or destination. */
  readonly maxMovesPerHost?: number;
  /** Without a policy: switch over below this many bytes (default 64 MiB). */
  readonly remainingBelowBytes?: number;
  /**
   * VMs to leave where they are, by name, and why (exclusions, cooldowns);
   * they still count for their host's load.
   */
  readonly hold?: ReadonlyMap<string, Hold>;
}

/** Why a VM is held where it is. */
export interface Hold {
  /** `"excluded"` (by name or tag) or `"cooldown"` (moved recently). */
  readonly kind: "excluded" | "cooldown";
  /** Why, in words. */
  readonly reason: string;
}

/** A VM the planner left where it is because the caller held it. */
export interface Skipped extends Hold {
  /** VM name. */
  readonly vm: string;
  /** Its host. */
  readonly host: string;
}

/** One planned migration. */
export interface Move {
  /** VM name. */
  readonly vm: string;
  /** Source host. */
  readonly from: string;
  /** Destination host. */
  readonly to: string;
  /** The VM's memory in bytes. */
  readonly bytes: number;
  /** Predicted page bytes sent, re-dirtied pages included. */
  readonly predictedBytes: number;
  /** Predicted bytes on the wire: the page bytes after the policy's codecs. */
  readonly predictedWireBytes: number;
  /** Predicted total migration time in milliseconds. */
  readonly predictedMs: number;
  /** Predicted downtime in milliseconds. */
  readonly predictedDowntimeMs: number;
  /** Why this move, in words. */
  readonly reason: string;
  /** Where the prediction's memory profile came from, in words. */
  readonly memory: string;
}

/** A host's memory before and after the plan. */
export interface HostLoad {
  /** Host name. */
  readonly host: string;
  /** Host memory in bytes. */
  readonly capacityBytes: number;
  /** Most bytes in use the target allows. */
  readonly targetBytes: number;
  /** Bytes in use before the moves. */
  readonly beforeBytes: number;
  /** Bytes in use after the moves. */
  readonly afterBytes: number;
}

/** A VM the planner will not move. */
export interface Unmovable {
  /** VM name. */
  readonly vm: string;
  /** Its host. */
  readonly host: string;
  /** Why, in words. */
  readonly reason: string;
}

/** A host the plan leaves above the target. */
export interface Infeasible {
  /** Host name. */
  readonly host: string;
  /** Bytes above the target after the plan. */
  readonly excessBytes: number;
  /** Why it cannot be fixed, in words. */
  readonly reason: string;
}

/** The planner's answer. */
export interface RebalancePlan {
  /** Moves in the order to run them. */
  readonly moves: readonly Move[];
  /** Every host's memory before and after, in inventory order. */
  readonly hosts: readonly HostLoad[];
  /** VMs on overloaded hosts that cannot move. */
  readonly unmovable: readonly Unmovable[];
  /** VMs held where they are (excluded, in cooldown), in inventory order. */
  readonly skipped: readonly Skipped[];
  /** Hosts left above the target. */
  readonly infeasible: readonly Infeasible[];
  /** Target percentage used. */
  readonly maxHostMemoryPercent: number;
  /** Link rate used for predictions, bytes per second. */
  readonly bandwidth: number;
  /** Whether every host ends at or below the target. */
  readonly balanced: boolean;
}

interface Candidate {
  readonly vm: VmSpec;
  readonly cost: number; // predicted wire bytes
  readonly pageBytes: number; // predicted page bytes
  readonly predictedMs: number;
  readonly downtimeMs: number;
  readonly memory: string;
}

/** Nodes the exact subset search may visit per host before keeping its best so far. */
const SEARCH_BUDGET = 200_000;

/**
 * Plans the moves that bring every host to at most the target share of its
 * memory. Deterministic: equal inputs give equal plans.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInventory, planMoves } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "a", memory: "1GiB" }, { name: "b", memory: "1GiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "768MiB" },
 *     { name: "small", host: "a", memory: "128MiB" },
 *   ],
 * });
 * const plan = planMoves(inv, { bandwidth: 125e6 });
 * // Host a is at 87.5%, over the 85% target: the smallest VM that fixes it moves.
 * assert.deepEqual(plan.moves.map((m) => `${m.vm} ${m.from}->${m.to}`), [
 *   "small a->b",
 * ]);
 * assert.equal(plan.balanced, true);
 * ```
 */
export function planMoves(
  inventory: Inventory,
  options: PlanMovesOptions,
): RebalancePlan {
  const percent = options.maxHostMemoryPercent ??
    inventory.targets.maxHostMemoryPercent;
  if (!(percent > 0 && percent <= 100)) {
    throw new RangeError(
      `Invalid maxHostMemoryPercent "${percent}": expected a percentage above 0 and at most 100`,
    );
  }
  const maxMoves = options.maxMoves ?? inventory.targets.maxMoves ?? Infinity;
  const perHostLimit = options.maxMovesPerHost ??
    inventory.targets.maxMovesPerHost ?? Infinity;
  const hosts = [...inventory.hosts];
  const capacity = new Map(hosts.map((h) => [h.name, h.memoryBytes]));
  const target = new Map(
    hosts.map((h) => [h.name, Math.floor((h.memoryBytes * percent) / 100)]),
  );
  const before = hostUsage(inventory);
  const used = new Map(before);
  const movesOn = new Map(hosts.map((h) => [h.name, 0]));
  const moves: Move[] = [];
  const unmovable: Unmovable[] = [];
  const infeasible: Infeasible[] = [];
  const hold = options.hold ?? new Map<string, Hold>();
  const skipped: Skipped[] = inventory.vms.flatMap((vm) => {
    const h = hold.get(vm.name);
    return h
      ? [{ vm: vm.name, host: vm.host, kind: h.kind, reason: h.reason }]
      : [];
  });

  const excessOf = (h: string): number => used.get(h)! - target.get(h)!;
  const overloaded = hosts.map((h) => h.name).filter((h) => excessOf(h) > 0)
    .sort((a, b) => excessOf(b) - excessOf(a) || _cmp(a, b));

  for (const host of overloaded) {
    const excess = excessOf(host);
    const candidates: Candidate[] = [];
    for (const vm of inventory.vms) {
      if (vm.host !== host || hold.has(vm.name)) continue;
      const memory = memoryProfileOf(vm);
      const p = predictMigration({
        memoryBytes: vm.memoryBytes,
        dirtyRate: vm.dirtyRate,
        bandwidth: options.bandwidth,
        plan: options.policy,
        remainingBelowBytes: options.remainingBelowBytes,
        memory,
      });
      if (!p.converges) {
        unmovable.push({ vm: vm.name, host, reason: p.reason });
        continue;
      }
      candidates.push({
        vm,
        cost: p.wireBytes,
        pageBytes: p.bytesSent,
        predictedMs: p.totalMs,
        downtimeMs: p.downtimeMs,
        memory: memory.source,
      });
    }
    const available = candidates.reduce((s, c) => s + c.vm.memoryBytes, 0);
    const excluded = new Set<string>();
    let chosen: Placed[] | null = null;
    let why = "";
    for (;;) {
      const limit = Math.min(
        maxMoves - moves.length,
        perHostLimit - movesOn.get(host)!,
      );
      const pool = candidates.filter((c) => !excluded.has(c.vm.name));
      if (limit <= 0) {
        why = maxMoves - moves.length <= 0
          ? `the plan's move limit (${maxMoves}) is used up`
          : `its limit of ${perHostLimit} moves per host is used up`;
        break;
      }
      const set = _cheapestSet(pool, excess, limit);
      if (set === null) {
        why = _noSetReason(
          excess,
          available,
          pool,
          limit,
          excluded,
          unmovable.filter((u) => u.host === host).length,
          skipped.filter((u) => u.host === host).length,
        );
        break;
      }
      const placed = _place(set, host, {
        used,
        target,
        movesOn,
        perHostLimit,
      });
      if (Array.isArray(placed)) {
        chosen = placed;
        break;
      }
      excluded.add(placed.unplaced);
    }
    if (chosen === null) {
      infeasible.push({
        host,
        excessBytes: excess,
        reason: `host "${host}" uses ${
          _pct(used.get(host)!, capacity.get(host)!)
        } of its memory, above the target ${percent}%: ${why}`,
      });
      continue;
    }
    for (const { c, to } of chosen) {
      used.set(host, used.get(host)! - c.vm.memoryBytes);
      used.set(to, used.get(to)! + c.vm.memoryBytes);
      movesOn.set(host, movesOn.get(host)! + 1);
      movesOn.set(to, movesOn.get(to)! + 1);
      moves.push({
        vm: c.vm.name,
        from: host,
        to,
        bytes: c.vm.memoryBytes,
        predictedBytes: c.pageBytes,
        predictedWireBytes: c.cost,
        predictedMs: c.predictedMs,
        predictedDowntimeMs: c.downtimeMs,
        reason: `host "${host}" at ${
          _pct(before.get(host)!, capacity.get(host)!)
        } is above the target ${percent}%: frees ${_mib(c.vm.memoryBytes)} (${
          _mib(excess)
        } needed)`,
        memory: c.memory,
      });
    }
  }

  const loads: HostLoad[] = hosts.map((h) => ({
    host: h.name,
    capacityBytes: h.memoryBytes,
    targetBytes: target.get(h.name)!,
    beforeBytes: before.get(h.name)!,
    afterBytes: used.get(h.name)!,
  }));
  return {
    moves,
    hosts: loads,
    unmovable,
    skipped,
    infeasible,
    maxHostMemoryPercent: percent,
    bandwidth: options.bandwidth,
    balanced: infeasible.length === 0,
  };
}

/**
 * Applies a plan's moves (all of them, or the VMs named in `only`) to an
 * inventory: each moved VM's host becomes the move's destination.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyMoves, parseInventory, planMoves } from "./mod.ts";
 *
 * const inv = parseInventory({
 *   hosts: [{ name: "a", memory: "1GiB" }, { name: "b", memory: "1GiB" }],
 *   vms: [
 *     { name: "big", host: "a", memory: "768MiB" },
 *     { name: "small", host: "a", memory: "128MiB" },
 *   ],
 * });
 * const after = applyMoves(inv, planMoves(inv, { bandwidth: 125e6 }).moves);
 * assert.deepEqual(after.vms.map((vm) => vm.host), ["a", "b"]);
 * ```
 */
export function applyMoves(
  inventory: Inventory,
  moves: readonly Pick<Move, "vm" | "from" | "to">[],
): Inventory {
  const dest = new Map(moves.map((m) => [m.vm, m]));
  return {
    ...inventory,
    vms: inventory.vms.map((vm) => {
      const m = dest.get(vm.name);
      return m && m.from === vm.host ? { ...vm, host: m.to } : vm;
    }),
  };
}

interface Placed {
  readonly c: Candidate;
  readonly to: string;
}

/**
 * Places a set of VMs, largest first, each on the destination with the most
 * room left after the move. Returns the placements, or the first VM that
 * fits nowhere.
 */
function _place(
  set: readonly Candidate[],
  source: string,
  state: {
    used: ReadonlyMap<string, number>;
    target: ReadonlyMap<string, number>;
    movesOn: ReadonlyMap<string, number>;
    perHostLimit: number;
  },
): Placed[] | { unplaced: string } {
  const used = new Map(state.used);
  const moves = new Map(state.movesOn);
  const order = [...set].sort((a, b) =>
    b.vm.memoryBytes - a.vm.memoryBytes || _cmp(a.vm.name, b.vm.name)
  );
  const out: Placed[] = [];
  for (const c of order) {
    let best: string | null = null;
    let bestRoom = -Infinity;
    for (const [h, t] of [...state.target].sort((a, b) => _cmp(a[0], b[0]))) {
      if (h === source || moves.get(h)! >= state.perHostLimit) continue;
      const room = t - used.get(h)! - c.vm.memoryBytes;
      if (room < 0) continue;
      if (room > bestRoom) {
        best = h;
        bestRoom = room;
      }
    }
    if (best === null) return { unplaced: c.vm.name };
    used.set(best, used.get(best)! + c.vm.memoryBytes);
    moves.set(best, moves.get(best)! + 1);
    out.push({ c, to: best });
  }
  // Run the moves in a stable order: by VM size, then name.
  return out.sort((a, b) =>
    a.c.vm.memoryBytes - b.c.vm.memoryBytes || _cmp(a.c.vm.name, b.c.vm.name)
  );
}

/**
 * The subset of `pool` freeing at least `need` bytes with the smallest total
 * cost (ties: fewer VMs, then names), at most `limit` VMs; branch and bound
 * over VMs ordered by cost, seeded with the greedy answer.
 */
function _cheapestSet(
  pool: readonly Candidate[],
  need: number,
  limit: number,
): Candidate[] | null {
  const items = [...pool].sort((a, b) =>
    a.cost - b.cost || a.vm.memoryBytes - b.vm.memoryBytes ||
    _cmp(a.vm.name, b.vm.name)
  );
  const n = items.length;
  // suffix[i]: the most bytes items[i..] can free with the largest VMs.
  const bySize = items.map((c) => c.vm.memoryBytes);
  let best: number[] | null = null;
  let bestCost = Infinity;
  const better = (pick: number[], cost: number): boolean => {
    if (best === null) return true;
    if (cost !== bestCost) return cost < bestCost;
    if (pick.length !== best.length) return pick.length < best.length;
    const a = pick.map((i) => items[i].vm.name).sort().join("\u0000");
    const b = best.map((i) => items[i].vm.name).sort().join("\u0000");
    return a < b;
  };
  // Greedy seed: a single VM that suffices, or the cheapest in order.
  const greedy: number[] = [];
  let freed = 0;
  let cost = 0;
  for (let i = 0; i < n && freed < need && greedy.length < limit; i++) {
    greedy.push(i);
    freed += bySize[i];
    cost += items[i].cost;
  }
  if (freed >= need) {
    best = greedy;
    bestCost = cost;
  }
  let budget = SEARCH_BUDGET;
  const pick: number[] = [];
  const maxFree = (from: number, k: number): number => {
    // Upper bound: the k largest sizes among items[from..].
    if (k <= 0) return 0;
    const rest = bySize.slice(from).sort((a, b) => b - a);
    let s = 0;
    for (let i = 0; i < Math.min(k, rest.length); i++) s += rest[i];
    return s;
  };
  const dfs = (i: number, freedNow: number, costNow: number): void => {
    if (budget-- <= 0) return;
    if (freedNow >= need) {
      if (better(pick, costNow)) {
        best = [...pick];
        bestCost = costNow;
      }
      return;
    }
    if (i >= n || pick.length >= limit) return;
    if (costNow + items[i].cost > bestCost) return; // items sorted by cost
    if (freedNow + maxFree(i, limit - pick.length) < need) return;
    pick.push(i);
    dfs(i + 1, freedNow + bySize[i], costNow + items[i].cost);
    pick.pop();
    dfs(i + 1, freedNow, costNow);
  };
  dfs(0, 0, 0);
  if (best === null) return null;
  return (best as number[]).map((i) => items[i]);
}

function _noSetReason(
  need: number,
  available: number,
  pool: readonly Candidate[],
  limit: number,
  excluded: ReadonlySet<string>,
  unmovableCount: number,
  heldCount: number,
): string {
  const poolBytes = pool.reduce((s, c) => s + c.vm.memoryBytes, 0);
  const parts: string[] = [];
  if (available < need) {
    parts.push(
      `it needs ${_mib(need)} moved off but its movable VMs hold only ${
        _mib(available)
      }${_notMovable(unmovableCount, heldCount)}`,
    );
  } else if (excluded.size > 0 && poolBytes < need) {
    parts.push(
      `it needs ${
        _mib(need)
      } moved off but no other host has room under the target for ${
        [...excluded].sort().map((v) => `"${v}"`).join(", ")
      }`,
    );
  } else if (Number.isFinite(limit)) {
    parts.push(
      `no ${limit} of its VMs free the ${
        _mib(need)
      } needed within the move limits`,
    );
  } else {
    parts.push(`no set of its VMs frees the ${_mib(need)} needed`);
  }
  return parts.join("; ");
}

function _notMovable(unmovable: number, held: number): string {
  const parts: string[] = [];
  if (unmovable > 0) {
    parts.push(`${unmovable} VM${unmovable === 1 ? " is" : "s are"} unmovable`);
  }
  if (held > 0) {
    parts.push(
      `${held} VM${held === 1 ? " is" : "s are"} excluded or in their cooldown`,
    );
  }
  return parts.length > 0 ? ` (${parts.join(", ")})` : "";
}

function _cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function _pct(used: number, capacity: number): string {
  return `${((used / capacity) * 100).toFixed(1)}%`;
}

function _mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes % 2 ** 20 === 0 ? 0 : 1)} MiB`;
}
