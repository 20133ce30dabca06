/**
 * The rebalancer's memory between cron runs: which VMs it moved, from where
 * to where, and when, kept in a small JSON file so that a VM moved recently
 * is not moved again (the cooldown: without it, VMs can bounce between two
 * hosts run after run, as users of other balancers report).
 *
 * ```json
 * { "version": 1,
 *   "moves": [{ "vm": "web1", "from": "h1", "to": "h3", "at": "2025-06-01T10:00:00.000Z", "moved": true }] }
 * ```
 *
 * A missing file is an empty history (the first run); a file that is not
 * this shape is an error that names the file and the field, since guessing
 * would silently drop the cooldowns. {@link saveState} writes a temporary
 * file and renames it over the old one, so a crash or a concurrent reader
 * never sees half a file.
 *
 * @module
 */

import { HakobuError } from "../../engine/errors.ts";
import { writeFileAtomic } from "./_atomic_write.ts";

/** Default cooldown: 30 minutes (as Xen Orchestra's load balancer waits between moves of a VM). */
export const DEFAULT_COOLDOWN_MS = 30 * 60_000;

/** How long records are kept when the cooldown is shorter: a week. */
export const STATE_KEEP_MS = 7 * 24 * 3600_000;

/** One migration the rebalancer attempted. */
export interface MoveRecord {
  /** VM name. */
  readonly vm: string;
  /** Host it was on. */
  readonly from: string;
  /** Host it was sent to. */
  readonly to: string;
  /** When the attempt ended, ISO 8601 (UTC). */
  readonly at: string;
  /** Whether the VM ended on `to`; only moves that happened start a cooldown. */
  readonly moved: boolean;
}

/** The rebalancer's history. */
export interface RebalanceState {
  /** Attempts, oldest first. */
  readonly moves: readonly MoveRecord[];
}

/** A VM in its cooldown. */
export interface Cooldown {
  /** The move that started it. */
  readonly move: MoveRecord;
  /** When the VM may move again. */
  readonly until: Date;
}

/**
 * The state file is unreadable or malformed. `field` names what failed,
 * e.g. `"moves[2].at"`, or `"file"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseState, StateError } from "./mod.ts";
 *
 * assert.throws(
 *   () => parseState({ version: 1, moves: [{ vm: "a" }] }),
 *   (e) => e instanceof StateError && e.field === "moves[0].from",
 * );
 * ```
 */
export class StateError extends HakobuError {
  /** The field path that failed, or `"file"`. */
  declare readonly field: string;
  /**
   * Makes the error.
   *
   * @param field The field path that failed, or `"file"`.
   * @param message What went wrong and how to fix it.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, { ...options, field });
  }
}

/**
 * Checks a parsed state file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseState } from "./mod.ts";
 *
 * const s = parseState({
 *   version: 1,
 *   moves: [{ vm: "a", from: "h1", to: "h2", at: "2025-06-01T10:00:00Z", moved: true }],
 * });
 * assert.equal(s.moves[0].to, "h2");
 * ```
 *
 * @throws {StateError} naming the field that failed.
 */
export function parseState(value: unknown): RebalanceState {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new StateError(
      "",
      `Invalid rebalance state: expected an object { "version": 1, "moves": [...] }`,
    );
  }
  const o = value as Record<string, unknown>;
  if (o.version !== 1) {
    throw new StateError(
      "version",
      `Invalid rebalance state version "${
        _describe(o.version)
      }": this hakobu reads version 1`,
    );
  }
  if (!Array.isArray(o.moves)) {
    throw new StateError(
      "moves",
      `Invalid rebalance state: "moves" must be an array`,
    );
  }
  const moves = o.moves.map((m: unknown, i): MoveRecord => {
    const path = `moves[${i}]`;
    if (typeof m !== "object" || m === null || Array.isArray(m)) {
      throw new StateError(path, `Invalid ${path}: expected an object`);
    }
    const r = m as Record<string, unknown>;
    for (const key of ["vm", "from", "to"] as const) {
      if (typeof r[key] !== "string" || r[key] === "") {
        throw new StateError(
          `${path}.${key}`,
          `Invalid ${path}.${key} "${_describe(r[key])}": expected a name`,
        );
      }
    }
    if (typeof r.at !== "string" || Number.isNaN(Date.parse(r.at))) {
      throw new StateError(
        `${path}.at`,
        `Invalid ${path}.at "${
          _describe(r.at)
        }": expected an ISO 8601 time such as "2025-06-01T10:00:00Z"`,
      );
    }
    if (typeof r.moved !== "boolean") {
      throw new StateError(
        `${path}.moved`,
        `Invalid ${path}.moved "${_describe(r.moved)}": expected true or false`,
      );
    }
    return {
      vm: r.vm as string,
      from: r.from as string,
      to: r.to as string,
      at: r.at,
      moved: r.moved,
    };
  });
  return { moves };
}

function _describe(value: unknown): string {
  return typeof value === "string"
    ? value
    : JSON.stringify(value) ?? String(value);
}

/**
 * Reads the state file; a missing file is an empty history.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadState, saveState } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const path = `${dir}/state.json`;
 * assert.deepEqual(await loadState(path), { moves: [] }); // first run
 * await saveState(path, {
 *   moves: [{ vm: "a", from: "h1", to: "h2", at: "2025-06-01T10:00:00.000Z", moved: true }],
 * });
 * assert.equal((await loadState(path)).moves.length, 1);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @throws {StateError} (field `"file"`) when the file cannot be read or is
 * not JSON, or the field that failed.
 */
export async function loadState(path: string): Promise<RebalanceState> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { moves: [] };
    throw new StateError(
      "file",
      `Cannot read rebalance state "${path}": ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new StateError(
      "file",
      `Cannot parse rebalance state "${path}": ${
        e instanceof Error ? e.message : String(e)
      }; fix it, or delete it to forget the move history (cooldowns start over)`,
      { cause: e },
    );
  }
  try {
    return parseState(value);
  } catch (e) {
    if (e instanceof StateError) {
      throw new StateError(
        e.field,
        `${path}: ${e.message}; fix it, or delete it to forget the move history (cooldowns start over)`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * Writes the state file atomically (a temporary file renamed over it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { saveState } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await saveState(`${dir}/sub/state.json`, { moves: [] }); // makes the folder
 * const text = await Deno.readTextFile(`${dir}/sub/state.json`);
 * assert.deepEqual(JSON.parse(text), { version: 1, moves: [] });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveState(
  path: string,
  state: RebalanceState,
): Promise<void> {
  await writeFileAtomic(
    path,
    JSON.stringify({ version: 1, moves: state.moves }, null, 2) + "\n",
  );
}

/** Options of {@link recordMoves}. */
export interface RecordMovesOptions {
  /** The time now. */
  readonly now: Date;
  /** Records older than this many milliseconds are dropped (default {@link STATE_KEEP_MS}). */
  readonly keepMs?: number;
}

/**
 * The state with `records` appended and records older than `keepMs`
 * dropped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { recordMoves } from "./mod.ts";
 *
 * const now = new Date("2025-06-08T10:00:00Z");
 * const old = { vm: "a", from: "h1", to: "h2", at: "2025-06-01T09:00:00Z", moved: true };
 * const fresh = { vm: "b", from: "h1", to: "h2", at: now.toISOString(), moved: true };
 * const s = recordMoves({ moves: [old] }, [fresh], { now });
 * assert.deepEqual(s.moves.map((m) => m.vm), ["b"]); // a week and an hour: dropped
 * ```
 */
export function recordMoves(
  state: RebalanceState,
  records: readonly MoveRecord[],
  options: RecordMovesOptions,
): RebalanceState {
  const oldest = options.now.getTime() - (options.keepMs ?? STATE_KEEP_MS);
  return {
    moves: [...state.moves, ...records].filter((m) =>
      Date.parse(m.at) >= oldest
    ),
  };
}

/** Options of {@link cooldowns}. */
export interface CooldownOptions {
  /** The time now. */
  readonly now: Date;
  /** How long a moved VM stays put, in milliseconds (default {@link DEFAULT_COOLDOWN_MS}). */
  readonly cooldownMs?: number;
}

/**
 * The VMs still in their cooldown at `now`, by name: each VM's last move
 * that happened, if it ended less than `cooldownMs` ago.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cooldowns } from "./mod.ts";
 *
 * const state = {
 *   moves: [
 *     { vm: "a", from: "h1", to: "h2", at: "2025-06-01T10:00:00Z", moved: true },
 *     { vm: "b", from: "h1", to: "h2", at: "2025-06-01T10:00:00Z", moved: false },
 *   ],
 * };
 * const now = new Date("2025-06-01T10:20:00Z");
 * const held = cooldowns(state, { now, cooldownMs: 30 * 60_000 });
 * assert.deepEqual([...held.keys()], ["a"]); // b's attempt failed: no cooldown
 * assert.equal(held.get("a")!.until.toISOString(), "2025-06-01T10:30:00.000Z");
 * ```
 */
export function cooldowns(
  state: RebalanceState,
  options: CooldownOptions,
): Map<string, Cooldown> {
  const ms = options.cooldownMs ?? DEFAULT_COOLDOWN_MS;
  const now = options.now.getTime();
  const out = new Map<string, Cooldown>();
  for (const move of state.moves) {
    if (!move.moved) continue;
    const until = Date.parse(move.at) + ms;
    const prev = out.get(move.vm);
    if (until > now && (!prev || until > prev.until.getTime())) {
      out.set(move.vm, { move, until: new Date(until) });
    }
  }
  return out;
}
