/**
 * `hakobu migrate --from SOURCE --to TARGET`: one migration through the
 * backend its source names (`engine/backend/`: `sim:WORKLOAD`,
 * `qemu:QMP_SOCKET`, `xen:DOMAIN`), with the same progress bar, round table,
 * summary, JSON report and HTML for every backend ({@link runMigration};
 * `hakobu xen migrate` prints through it too).
 *
 * @module
 */

import {
  type Backend,
  backendFactories,
  openBackend,
  type RemoteTunnelReceiver,
} from "../../engine/backend/mod.ts";
import { CommitUnknownError } from "../../engine/errors.ts";
import type { Plan } from "../../engine/plan.ts";
import { type MigrationReport, migrationStatus } from "../../engine/report.ts";
import type { SecurityFlags } from "../../engine/transport/secure/mod.ts";
import { XenMigrateError } from "../../engine/xen/migrate_domain.ts";
import {
  formatRoundTable,
  formatSummary,
  ProgressView,
} from "../../report/mod.ts";
import { writeHtmlReport } from "./report.ts";
import { writeText } from "./_write_text.ts";

/** Options of `hakobu migrate`. */
export interface MigrateCommandOptions {
  /** The source: `sim:WORKLOAD`, `qemu:QMP_SOCKET`, `xen:DOMAIN` or `libvirt:URI/DOMAIN`. */
  from: string;
  /** `sim`: memory of the VM. */
  memoryBytes: number;
  /** `sim`: workload seed. */
  seed: number;
  /** `sim`: override of the workload's dirty rate, pages/s. */
  dirtyRate?: number;
  /** `xen`: pre-copy (default true). */
  live?: boolean;
  /** `libvirt`: hakobu's stream tunnel in libvirt's migration (`--tunnel`). */
  tunnel?: boolean;
  /** `sim`: each channel on a connection of its own (`--channel-connections`). */
  channelConnections?: boolean;
  /** `libvirt`: the tunnel's receiving end on the destination host (`--tunnel-receiver`). */
  tunnelReceiver?: RemoteTunnelReceiver;
  /** The target, in the form the source's backend takes. */
  to: string;
  /** TLS credentials, or plain TCP (asked for by name), for hakobu's link (receiver or tunnel); the backend refuses a target on that link without it. */
  security?: SecurityFlags;
  plan: Plan;
  report?: string;
  /** Write the HTML report with charts to this file. */
  html?: string;
  json?: boolean;
  quiet?: boolean;
}

/** The source forms `--from` takes, for help: `sim:WORKLOAD, qemu:QMP_SOCKET, xen:DOMAIN or libvirt:URI/DOMAIN`. */
export function sourceFormsHelp(): string {
  const forms = backendFactories().map((b) => b.sourceForm);
  return `${forms.slice(0, -1).join(", ")} or ${forms.at(-1)}`;
}

/**
 * Runs one migration from `--from` to `--to` with progress, a round table
 * and totals. Returns the report and the exit code ({@link exitCodeOf}).
 */
export async function migrateCommand(
  opts: MigrateCommandOptions,
): Promise<{ code: number; report?: MigrationReport }> {
  const backend = openBackend(opts.from, {
    memoryBytes: opts.memoryBytes,
    seed: opts.seed,
    ...(opts.dirtyRate === undefined ? {} : { dirtyRate: opts.dirtyRate }),
    ...(opts.live === undefined ? {} : { live: opts.live }),
    ...(opts.tunnel === undefined ? {} : { tunnel: opts.tunnel }),
    ...(opts.channelConnections === undefined
      ? {}
      : { channelConnections: opts.channelConnections }),
    ...(opts.tunnelReceiver === undefined
      ? {}
      : { tunnelReceiver: opts.tunnelReceiver }),
  });
  return await runMigration(backend, opts.plan, opts.to, opts);
}

/** Where {@link runMigration} writes, and how. */
export interface RunMigrationOptions {
  /** hakobu's link security, for backends that cross one. */
  readonly security?: SecurityFlags;
  /** Write the JSON report to this file. */
  readonly report?: string;
  /** Write the HTML report to this file. */
  readonly html?: string;
  /** Print the report as JSON instead of tables. */
  readonly json?: boolean;
  /** No progress output. */
  readonly quiet?: boolean;
}

/**
 * Migrates `backend`'s VM to `target` under `plan`: SIGINT and SIGTERM
 * abort it (the source runs on), progress goes to stderr, then the round
 * table and summary (or `--json`) to stdout, and the JSON and HTML reports
 * to their files. A failure the backend throws is printed as
 * `hakobu: message` with its exit code ({@link exitCodeOfError}).
 */
export async function runMigration(
  backend: Backend,
  plan: Plan,
  target: string,
  opts: RunMigrationOptions,
): Promise<{ code: number; report?: MigrationReport }> {
  const log = (s: string) => {
    if (!opts.quiet) console.error(s);
  };
  const controller = new AbortController();
  // Either signal aborts in any phase: the backend races its waits with
  // it, and the source runs on.
  const onInt = () => controller.abort("interrupted (SIGINT)");
  const onTerm = () => controller.abort("terminated (SIGTERM)");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const progress = new ProgressView();
  let report: MigrationReport;
  try {
    report = await backend.migrate(plan, target, {
      security: opts.security,
      signal: controller.signal,
      onProgress: opts.quiet ? undefined : (p) => progress.update(p),
      log,
    }).finally(() => progress.done());
  } catch (e) {
    const code = exitCodeOfError(e);
    if (code === 1) throw e; // runCli prints it, exit 1
    console.error(`hakobu: ${e instanceof Error ? e.message : String(e)}`);
    return { code };
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
  if (opts.report) {
    await writeText(opts.report, JSON.stringify(report, null, 2) + "\n");
  }
  if (opts.html) await writeHtmlReport(report, opts.html);
  if (opts.json) console.log(JSON.stringify(report));
  else {
    console.log(formatRoundTable(report));
    console.log(formatSummary(report));
    if (opts.report) console.log(`report written to ${opts.report}`);
    if (opts.html) console.log(`HTML report written to ${opts.html}`);
  }
  return { code: exitCodeOf(report), report };
}

/**
 * The exit code of a migration that ended with a report: 0 when it was
 * verified, or completed where nothing could be compared (a hypervisor's
 * own transport: `migrationStatus` "unchecked"); 1 when it failed, was
 * aborted or what was compared differed.
 */
export function exitCodeOf(report: MigrationReport): number {
  const status = migrationStatus(report);
  return status === "verified" || status === "unchecked" ? 0 : 1;
}

/**
 * The exit code of a migration that failed with `error`: 3 when the source
 * may not run on — Xen: the final handshake failed after "go"; hakobu's
 * commit protocol: COMMIT was sent and whether the receiver committed is
 * unknown, so the VM stays paused at the source (check both ends) — else 1.
 */
export function exitCodeOfError(error: unknown): number {
  if (error instanceof CommitUnknownError) return 3;
  return error instanceof XenMigrateError && !error.resumed ? 3 : 1;
}
