/**
 * Where an inventory comes from. Today a JSON file ({@link fileInventory})
 * or an inventory in memory ({@link staticInventory}); a source that asks
 * the hosts themselves (libvirt: node info and domain stats) implements the
 * same interface with `live: true`, and `rebalanceOnce` then reads it again
 * after the moves to check that each VM runs where the plan sent it.
 *
 * @module
 */

import { type Inventory, loadInventory } from "./inventory.ts";

/** A source of inventories. */
export interface InventorySource {
  /** What it reads, for people, e.g. `file examples/inventory.json`. */
  readonly description: string;
  /**
   * Whether `read()` reports where VMs run now (it asks the hosts), so that
   * reading it after a run checks the moves. A file is not live: it says
   * what someone wrote.
   */
  readonly live: boolean;
  /** Reads and checks the inventory. */
  read(): Promise<Inventory>;
}

/**
 * An inventory JSON file (`loadInventory`), read afresh on every `read()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileInventory } from "./mod.ts";
 *
 * const source = fileInventory("examples/inventory.json");
 * assert.equal(source.live, false);
 * assert.equal(source.description, "file examples/inventory.json");
 * assert.equal((await source.read()).hosts.length, 3);
 * ```
 */
export function fileInventory(path: string): InventorySource {
  return {
    description: `file ${path}`,
    live: false,
    read: () => loadInventory(path),
  };
}

/**
 * An inventory already in memory (tests, programs that build their own).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseInventory, staticInventory } from "./mod.ts";
 *
 * const inventory = parseInventory({ hosts: [{ name: "h1", memory: "1GiB" }], vms: [] });
 * const source = staticInventory(inventory);
 * assert.equal(await source.read(), inventory);
 * ```
 */
export function staticInventory(
  inventory: Inventory,
  description: string = "inventory in memory",
): InventorySource {
  return {
    description,
    live: false,
    read: () => Promise.resolve(inventory),
  };
}
