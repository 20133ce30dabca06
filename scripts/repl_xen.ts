/**
 * Xen helpers for the REPL (`deno task repl`), for experiments on a dom0:
 * measure a running domain's dirty rate, then migrate it under a policy
 * written at the prompt. Both need a Xen dom0 and root; elsewhere they fail
 * with the bindings' "Not a Xen dom0" / "Cannot migrate domain" errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MiB, policy, PolicyError, when } from "@hakobu/hakobu";
 * import { xenDirtyRate, xenMigrate } from "./repl_xen.ts";
 *
 * // At the prompt, on a dom0 (root, xl): not run by the doc tests.
 * async function onDom0() {
 *   const d = await xenDirtyRate(7, "2s"); // { dirtyPages, bytesPerSecond, ... }
 *   const p = policy("p").switchover(
 *     when.any(when.remainingBelow(MiB(8)), when.rounds(6)),
 *   );
 *   return await xenMigrate("vm1", p, {
 *     receiver: "ssh host2 xl migrate-receive",
 *   });
 * }
 * // Anywhere: what is wrong at the prompt is refused before Xen is touched.
 * await assert.rejects(xenDirtyRate(7, "soon"), RangeError);
 * await assert.rejects(xenMigrate("vm1", policy("p")), PolicyError);
 * ```
 *
 * @module
 */

import { compile } from "../dsl/compile.ts";
import type { Policy } from "../dsl/policy.ts";
import type { Plan } from "../engine/plan.ts";
import { type DirtyRate, measureDirtyRate } from "../engine/xen/dirty_rate.ts";
import {
  migrateXenDomain,
  type XenMigrateOptions,
  type XenMigrationReport,
} from "../engine/xen/migrate_domain.ts";
import { parseInterval } from "./_cli/options.ts";

/**
 * A domain's dirty rate over `interval` (`"1s"`, `"500ms"`), through
 * log-dirty CLEAN/PEEK.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { xenDirtyRate } from "./repl_xen.ts";
 *
 * // On a dom0 (not run by the doc tests): a domain's rate over two seconds.
 * const rateOf = async (domid: number) =>
 *   (await xenDirtyRate(domid, "2s")).bytesPerSecond;
 * // A bad interval is refused before Xen is touched:
 * await assert.rejects(xenDirtyRate(7, "soon"), RangeError);
 * ```
 * @throws {XenError} off a dom0; {@link RangeError} on a bad interval (both as rejections).
 */
export async function xenDirtyRate(
  domid: number,
  interval: string = "1s",
): Promise<DirtyRate> {
  return await measureDirtyRate(domid, {
    intervalMs: parseInterval(interval),
  });
}

/**
 * `hakobu xen migrate` from the prompt: compiles the policy (a builder from
 * the DSL or a plan), prints progress, resolves with the result.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, PolicyError, when } from "@hakobu/hakobu";
 * import { xenMigrate } from "./repl_xen.ts";
 *
 * // On a dom0 (not run by the doc tests): migrate "vm1", then its downtime.
 * const migrateVm1 = async () =>
 *   (await xenMigrate("vm1", policy("p").switchover(when.rounds(3))))
 *     .downtimeMs;
 * // A policy that does not compile is refused before the domain is touched:
 * await assert.rejects(xenMigrate("vm1", policy("p")), PolicyError);
 * ```
 * @throws {PolicyError} when the policy does not compile (before the domain
 *   is touched); {@link XenMigrateError} when the migration fails.
 */
export async function xenMigrate(
  domain: string | number,
  policyOrPlan: Policy | Plan,
  options: Omit<XenMigrateOptions, "domain" | "plan" | "saver" | "resume"> = {},
): Promise<XenMigrationReport> {
  const plan = compile(policyOrPlan);
  return await migrateXenDomain({
    log: (line) => console.log(line),
    onCall: (c) => {
      if (c.decision !== null) {
        console.log(
          `round ${c.stats.iteration}: ${c.stats.dirtyCount} dirty → ${c.decision}`,
        );
      }
    },
    ...options,
    domain,
    plan,
  });
}
