/**
 * `hakobu xen dirty-rate DOMID [--interval 1s] [--json]`: measures a Xen
 * domain's dirty rate through log-dirty CLEAN/PEEK; `hakobu xen migrate
 * DOMU --policy FILE [--receiver CMD]`: live-migrates it with libxenguest's
 * save loop under the policy (the `xen` backend, `engine/backend/xen.ts`).
 * Both need a dom0 and root.
 *
 * @module
 */

import { loadPolicy } from "../../dsl/mod.ts";
import { xenBackend } from "../../engine/backend/xen.ts";
import { measureDirtyRate } from "../../engine/xen/dirty_rate.ts";
import { exitCodeOfError, runMigration } from "./migrate.ts";

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
  /** Print the report as JSON. */
  json?: boolean;
  /** Write the JSON report to this file. */
  report?: string;
  /** Write the HTML report to this file. */
  html?: string;
  /** No progress output. */
  quiet?: boolean;
}

/**
 * Runs `hakobu xen migrate` (the `xen` backend, as `hakobu migrate --from
 * xen:DOMU --to exec:RECEIVER` runs it): the same progress, round table,
 * summary and reports as every migration. Returns the exit code (0
 * migrated, 1 failed and the domain runs on at the source, 2 the policy
 * did not load, 3 failed in the final handshake: check both ends).
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
  const receiver = options.receiver ?? "xl migrate-receive";
  try {
    const backend = xenBackend.open(domain, { live: options.live ?? true });
    const { code } = await runMigration(
      backend,
      plan,
      receiver === "xl migrate-receive" ? "localhost" : `exec:${receiver}`,
      {
        report: options.report,
        html: options.html,
        json: options.json,
        quiet: options.quiet,
      },
    );
    return code;
  } catch (e) {
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return exitCodeOfError(e);
  }
}
