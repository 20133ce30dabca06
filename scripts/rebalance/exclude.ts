/**
 * Exclusion: VMs too heavy or too important to move, named (exactly or by
 * a glob) or tagged. Excluded VMs stay where they are and still count for
 * their host's load; the plan lists them with the rule that held them.
 *
 * @module
 */

import { HakobuError } from "../../engine/errors.ts";
import type { VmSpec } from "./inventory.ts";

/** Which VMs never move. */
export interface ExcludeRules {
  /** VM names or globs (`*` any run of characters, `?` one character), e.g. `"db-*"`. */
  readonly names?: readonly string[];
  /** Tags: a VM carrying any of them stays. */
  readonly tags?: readonly string[];
}

/**
 * An exclusion rule is malformed (`field` is `"names"` or `"tags"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { excludeReason, ExcludeRuleError } from "./mod.ts";
 *
 * assert.throws(
 *   () => excludeReason({ name: "a", tags: [] }, { names: [""] }),
 *   ExcludeRuleError,
 * );
 * ```
 */
export class ExcludeRuleError extends HakobuError {
  /**
   * Makes the error.
   *
   * @param field `"names"` or `"tags"`.
   * @param message What is wrong with the rule, in quotes.
   * @param options Standard error options, e.g. `{ cause }`.
   */
  constructor(
    field: "names" | "tags",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, field });
  }
}

/**
 * Why `vm` is excluded by `rules`, in words, or `null` when it is not: the
 * first name rule that matches, else the first tag it carries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { excludeReason } from "./mod.ts";
 *
 * const rules = { names: ["db-*"], tags: ["pinned"] };
 * assert.equal(
 *   excludeReason({ name: "db-main" }, rules),
 *   'excluded: its name matches "db-*"',
 * );
 * assert.equal(
 *   excludeReason({ name: "web1", tags: ["pinned"] }, rules),
 *   'excluded: it is tagged "pinned"',
 * );
 * assert.equal(excludeReason({ name: "web2" }, rules), null);
 * ```
 *
 * @throws {ExcludeRuleError} when a rule is empty.
 */
export function excludeReason(
  vm: Pick<VmSpec, "name" | "tags">,
  rules: ExcludeRules,
): string | null {
  for (const pattern of rules.names ?? []) {
    if (_glob(pattern).test(vm.name)) {
      return pattern === vm.name
        ? `excluded by name "${pattern}"`
        : `excluded: its name matches "${pattern}"`;
    }
  }
  for (const tag of rules.tags ?? []) {
    if (tag === "") {
      throw new ExcludeRuleError(
        "tags",
        `Invalid exclusion tag "": expected a tag such as "pinned"`,
      );
    }
    if (vm.tags?.includes(tag)) return `excluded: it is tagged "${tag}"`;
  }
  return null;
}

const _globs = new Map<string, RegExp>();

/** A glob as an anchored RegExp: `*` any run, `?` one character, the rest literal. */
function _glob(pattern: string): RegExp {
  let re = _globs.get(pattern);
  if (re) return re;
  if (pattern === "") {
    throw new ExcludeRuleError(
      "names",
      `Invalid exclusion "": expected a VM name or a glob such as "db-*"`,
    );
  }
  const body = [...pattern].map((ch) =>
    ch === "*"
      ? ".*"
      : ch === "?"
      ? "."
      : ch.replace(/[.+^${}()|[\]\\/]/g, "\\$&")
  ).join("");
  re = new RegExp(`^${body}$`, "u");
  _globs.set(pattern, re);
  return re;
}
