/**
 * Xen helpers for the REPL (`deno task repl`), for experiments on a dom0:
 * measure a running domain's dirty rate, then migrate it under a policy
 * written at the prompt. Both need a Xen dom0 and root; elsewhere they fail
 * with the bindings' "Not a Xen dom0" / "Cannot migrate domain" errors.
 *
 * @example
 * ```ts ignore
 * const d = await xenDirtyRate(7, "2s"); // { dirtyPages, bytesPerSecond, ... }
 * const p = policy("p").switchover(when.any(when.remainingBelow(MiB(8)), when.rounds(6)));
 * const r = await xenMigrate("vm1", p, { receiver: "ssh host2 xl migrate-receive" });
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
  type XenMigrateResult,
} from "../engine/xen/migrate_domain.ts";
import { parseInterval } from "./_cli/options.ts";

/**
 * A domain's dirty rate over `interval` (`"1s"`, `"500ms"`), through
 * log-dirty CLEAN/PEEK.
 *
 * @example
 * ```ts ignore
 * (await xenDirtyRate(7, "2s")).bytesPerSecond;
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
 * ```ts ignore
 * const r = await xenMigrate("vm1", policy("p").switchover(when.rounds(3)));
 * r.downtimeMs;
 * ```
 * @throws {PolicyError} when the policy does not compile (before the domain
 *   is touched); {@link XenMigrateError} when the migration fails.
 */
export async function xenMigrate(
  domain: string | number,
  policyOrPlan: Policy | Plan,
  options: Omit<XenMigrateOptions, "domain" | "plan" | "saver" | "resume"> = {},
): Promise<XenMigrateResult> {
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
