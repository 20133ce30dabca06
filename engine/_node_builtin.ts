/**
 * Node built-in modules loaded on first use, synchronously. A static
 * `import "node:crypto"` (or `node:zlib`) costs every Deno isolate that
 * loads the file ≈ 15 ms of CPU at start, whether it hashes or not; the
 * stream tunnel starts two processes and a Worker per channel on each, and
 * most of them never use those modules. `process.getBuiltinModule` (Node
 * 22.3, in Deno 2) loads one when it is first asked for, and still returns
 * it synchronously, so the callers keep their synchronous API. Not part of
 * the public API.
 *
 * @module
 */

/** The built-ins loaded this way, by specifier. */
interface Builtins {
  readonly "node:crypto": typeof import("node:crypto");
  readonly "node:zlib": typeof import("node:zlib");
}

const loaded = new Map<keyof Builtins, unknown>();

/**
 * The built-in module `id`, loaded now if it is not yet.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nodeBuiltin } from "./_node_builtin.ts";
 *
 * const { createHash } = nodeBuiltin("node:crypto");
 * assert.equal(createHash("sha256").update("").digest("hex").slice(0, 8), "e3b0c442");
 * ```
 *
 * @throws {Error} When the runtime has no `process.getBuiltinModule`.
 */
export function nodeBuiltin<K extends keyof Builtins>(id: K): Builtins[K] {
  let mod = loaded.get(id);
  if (mod === undefined) {
    // Through globalThis, not `import process from "node:process"`: Deno
    // sets the global up on first read (a few ms), so only a caller that
    // needs a built-in pays for it.
    const process = (globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown };
    }).process;
    mod = process?.getBuiltinModule?.(id);
    if (mod === undefined) {
      throw new Error(
        `Cannot load "${id}": this runtime has no process.getBuiltinModule (Deno 2 or later has)`,
      );
    }
    loaded.set(id, mod);
  }
  return mod as Builtins[K];
}
