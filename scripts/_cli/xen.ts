/**
 * `hakobu xen dirty-rate DOMID [--interval 1s] [--json]`: measures a Xen
 * domain's dirty rate through log-dirty CLEAN/PEEK; `hakobu xen migrate
 * DOMU --policy FILE [--receiver CMD]`: live-migrates it with libxenguest's
 * save loop under the policy. Both need a dom0 and root.
 *
 * @module
 */

import { PAGE_SIZE } from "../../engine/plan.ts";
import { loadPolicy } from "../../dsl/mod.ts";
import { measureDirtyRate } from "../../engine/xen/dirty_rate.ts";
import {
  migrateXenDomain,
  XenMigrateError,
  type XenMigrateResult,
} from "../../engine/xen/migrate_domain.ts";
import { XgsPolicy } from "../../ffi/xen/xenguest.ts";

/** Options of `hakobu xen dirty-rate`. */
export interface XenDirtyRateOptions {
  /** How long to measure, in milliseconds (default 1000). */
  intervalMs?: number;
  /** Print JSON. */
  json?: boolean;
}

/**
 * Runs `hakobu xen dirty-rate` on domain `id` (its flags parsed by
 * `hakobu.ts`); returns the exit code.
 *
 * @example
 * ```ts
 * await xenDirtyRateCli(7, { intervalMs: 1000 }); // prints "domain 7: 1234 pages/s (4.8 MiB/s) over 1.00 s"
 * ```
 */
export async function xenDirtyRateCli(
  id: number,
  options: XenDirtyRateOptions,
): Promise<number> {
  try {
    const r = await measureDirtyRate(id, {
      intervalMs: options.intervalMs ?? 1000,
    });
    if (options.json) console.log(JSON.stringify(r));
    else {
      console.log(
        `domain ${id}: ${Math.round(r.pagesPerSecond)} pages/s (${
          (r.bytesPerSecond / 2 ** 20).toFixed(1)
        } MiB/s) over ${
          (r.intervalMs / 1000).toFixed(2)
        } s, ${r.dirtyPages} of ${r.pfns} pfns dirty`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

/** Options of `hakobu xen migrate`. */
export interface XenMigrateCliOptions {
  /** Policy file. */
  policy: string;
  /** Receiver command (default `xl migrate-receive`). */
  receiver?: string;
  /** Pre-copy (commander's `--no-live` sets false). */
  live?: boolean;
  /** Print JSON. */
  json?: boolean;
}

const ANSWER: Record<number, string> = {
  [XgsPolicy.ABORT]: "abort",
  [XgsPolicy.CONTINUE_PRECOPY]: "continue",
  [XgsPolicy.STOP_AND_COPY]: "stop and copy",
};

/**
 * Runs `hakobu xen migrate`; returns the exit code (0 migrated, 1 failed
 * and the domain runs on at the source, 3 failed in the final handshake:
 * check both ends).
 *
 * @example
 * ```ts
 * await xenMigrateCli("vm1", { policy: "examples/policies/default.ts" });
 * ```
 */
export async function xenMigrateCli(
  domain: string,
  options: XenMigrateCliOptions,
): Promise<number> {
  let plan;
  try {
    plan = await loadPolicy(options.policy);
  } catch (e) {
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return 2;
  }
  const mib = (pages: number) => (pages * PAGE_SIZE / 2 ** 20).toFixed(1);
  let r: XenMigrateResult;
  try {
    r = await migrateXenDomain({
      domain,
      plan,
      receiver: options.receiver,
      live: options.live ?? true,
      log: (line) => console.error(`hakobu: ${line}`),
      onCall: (c) => {
        if (c.stats.dirtyCount < 0) return; // the after-send call: no decision
        if (c.stats.iteration === 0) {
          // libxc counts the whole pfn space (holes too) as dirty at first
          console.error(
            `hakobu: round 0: first pass over ${c.stats.dirtyCount} pfns → ${
              ANSWER[c.answer] ?? c.answer
            }`,
          );
          return;
        }
        console.error(
          `hakobu: round ${c.stats.iteration}: ${c.stats.dirtyCount} pages dirty (${
            mib(c.stats.dirtyCount)
          } MiB), ${c.stats.totalWritten} sent so far → ${
            ANSWER[c.answer] ?? c.answer
          }`,
        );
      },
    });
  } catch (e) {
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof XenMigrateError && !e.resumed ? 3 : 1;
  }
  if (options.json) {
    console.log(JSON.stringify(r));
  } else {
    console.log(
      `migrated domain ${r.domid} ("${r.name}", ${r.type}) with policy "${r.policy}": ` +
        `${r.rounds} rounds, ${
          r.imageBytes === null ? "?" : (r.imageBytes / 2 ** 20).toFixed(1)
        } MiB image, ` +
        `${
          (r.totalMs / 1000).toFixed(2)
        } s, downtime ${r.downtimeMs} ms (suspend ${r.suspendMs} ms)`,
    );
  }
  return 0;
}
