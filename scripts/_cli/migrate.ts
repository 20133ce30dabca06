import { MigrationError } from "../../engine/errors.ts";
import { migrate } from "../../engine/precopy.ts";
import type { MigrationReport } from "../../engine/report.ts";
import { formatRoundTable, formatSummary } from "../../engine/report_table.ts";
import { SimVm } from "../../engine/sim/mod.ts";
import type { Plan } from "../../engine/plan.ts";
import { parseAddress } from "./address.ts";
import { ProgressView } from "./progress.ts";
import { writeHtmlReport } from "./report.ts";

/** Options of `hakobu migrate`. */
export interface MigrateCommandOptions {
  from: string;
  memoryBytes: number;
  seed: number;
  dirtyRate?: number;
  to: string;
  plan: Plan;
  report?: string;
  /** Write the HTML report with charts to this file. */
  html?: string;
  json?: boolean;
  quiet?: boolean;
}

/** Parses `sim:WORKLOAD`, the only source kind of this release. */
export function parseSource(text: string): { kind: "sim"; workload: string } {
  const m = /^sim:([a-z0-9_-]+)$/.exec(text);
  if (!m) {
    throw new Error(
      `Cannot parse source "${text}": expected sim:WORKLOAD, e.g. sim:memcached (see "hakobu workloads")`,
    );
  }
  return { kind: "sim", workload: m[1] };
}

/**
 * Runs one migration from a simulated VM to a receiver, with progress, a
 * round table and totals. Returns the report and the exit code.
 */
export async function migrateCommand(
  opts: MigrateCommandOptions,
): Promise<{ code: number; report?: MigrationReport }> {
  const src = parseSource(opts.from);
  const to = parseAddress(opts.to, "destination");
  const log = (s: string) => {
    if (!opts.quiet) console.error(s);
  };
  log(
    `creating sim VM: ${src.workload}, ${opts.memoryBytes} bytes, seed ${opts.seed}`,
  );
  const vm = await SimVm.create({
    memoryBytes: opts.memoryBytes,
    workload: src.workload,
    seed: opts.seed,
    ...(opts.dirtyRate === undefined ? {} : { dirtyRate: opts.dirtyRate }),
  });
  const controller = new AbortController();
  const onSignal = () => controller.abort("interrupted (SIGINT)");
  Deno.addSignalListener("SIGINT", onSignal);
  const progress = new ProgressView();
  try {
    log(`${vm.description}: connecting to ${to.hostname}:${to.port}`);
    const conn = await Deno.connect({ hostname: to.hostname, port: to.port })
      .catch((e) => {
        throw new MigrationError(
          `Cannot connect to receiver "${opts.to}": ${
            e instanceof Error ? e.message : e
          }`,
        );
      });
    const report = await migrate({
      plan: opts.plan,
      source: vm,
      conn,
      signal: controller.signal,
      onProgress: opts.quiet ? undefined : (p) => progress.update(p),
    }).finally(() => progress.done());
    try {
      conn.close();
    } catch { /* closed by the receiver */ }
    if (opts.report) {
      await Deno.mkdir(dirOf(opts.report), { recursive: true });
      await Deno.writeTextFile(
        opts.report,
        JSON.stringify(report, null, 2) + "\n",
      );
    }
    if (opts.html) await writeHtmlReport(report, opts.html);
    if (opts.json) console.log(JSON.stringify(report));
    else {
      console.log(formatRoundTable(report));
      console.log(formatSummary(report));
      if (opts.report) console.log(`report written to ${opts.report}`);
      if (opts.html) console.log(`HTML report written to ${opts.html}`);
    }
    return { code: report.verified ? 0 : 1, report };
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await vm.close();
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "." : path.slice(0, i);
}
