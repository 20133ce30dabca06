/**
 * loadPolicy(): imports a policy file, takes its default export and compiles it.
 *
 * @module
 */

import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Plan } from "../engine/plan.ts";
import { _isBranded } from "./_brand.ts";
import { compile } from "./compile.ts";
import { PolicyError } from "./errors.ts";

function _isPlanLike(value: unknown): value is Plan {
  return typeof value === "object" && value !== null &&
    typeof (value as Plan).codecsFor === "function" &&
    typeof (value as Plan).decide === "function";
}

function _kind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}

/**
 * Imports a policy file (a path relative to the working directory, or
 * absolute) and compiles its default export: a policy builder, or a plan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadPolicy } from "@hakobu/hakobu";
 *
 * // A path relative to the current directory (here: the repository root).
 * const plan = await loadPolicy("examples/policies/default.ts");
 * assert.equal(plan.name, "default");
 * ```
 *
 * @throws {PolicyError} field `"file"` when the file is missing or throws
 * while importing (the error is the `cause`), field `"default export"` when it
 * has no usable default export, or the field that fails to compile.
 */
export async function loadPolicy(path: string): Promise<Plan> {
  const absolute = isAbsolute(path) ? path : resolve(Deno.cwd(), path);
  let stat: Deno.FileInfo;
  try {
    stat = await Deno.stat(absolute);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new PolicyError(
        "file",
        `Cannot load policy "${path}": file not found`,
        { cause: e },
      );
    }
    throw new PolicyError(
      "file",
      `Cannot load policy "${path}": ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  if (!stat.isFile) {
    throw new PolicyError(
      "file",
      `Cannot load policy "${path}": not a file: pass a .ts policy file`,
    );
  }
  let module: Record<string, unknown>;
  try {
    module = await import(pathToFileURL(absolute).href);
  } catch (e) {
    throw new PolicyError(
      "file",
      `Cannot load policy "${path}": importing it failed: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
  if (!("default" in module) || module.default === undefined) {
    throw new PolicyError(
      "default export",
      `Invalid policy file "${path}": it has no default export: add export default policy("name")...`,
    );
  }
  const value = module.default;
  if (!_isBranded(value) && !_isPlanLike(value)) {
    throw new PolicyError(
      "default export",
      `Invalid policy file "${path}": the default export must be a policy or a plan, got "${
        _kind(value)
      }": write export default policy("name")...`,
    );
  }
  return compile(value);
}
