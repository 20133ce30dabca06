import { MigrationError } from "../../engine/errors.ts";
import { migrate } from "../../engine/precopy.ts";
import type { MigrationReport } from "../../engine/report.ts";
import {
  formatRoundTable,
  formatSummary,
  ProgressView,
} from "../../report/mod.ts";
import { SimVm } from "../../engine/sim/mod.ts";
import { PAGE_SIZE, type Plan } from "../../engine/plan.ts";
import { parseAddress } from "../../engine/transport/address.ts";
import {
  connectChannel,
  connectSecurityFromFlags,
  type SecurityFlags,
} from "../../engine/transport/secure/mod.ts";
import { writeHtmlReport } from "./report.ts";
import { writeText } from "./_write_text.ts";

/** Options of `hakobu migrate`. */
export interface MigrateCommandOptions {
  from: string;
  memoryBytes: number;
  seed: number;
  dirtyRate?: number;
  to: string;
  /** TLS credentials, or plain TCP (asked for by name); a QEMU source's tunnel gets the same. */
  security: SecurityFlags;
  plan: Plan;
  report?: string;
  /** Write the HTML report with charts to this file. */
  html?: string;
  json?: boolean;
  quiet?: boolean;
}

/** A parsed `--from`: a simulated VM, or a running QEMU reached through its QMP socket. */
export type Source =
  | { kind: "sim"; workload: string }
  | { kind: "qemu"; socket: string };

/** Parses `sim:WORKLOAD` or `qemu:QMP_SOCKET`. */
export function parseSource(text: string): Source {
  const sim = /^sim:([a-z0-9_-]+)$/.exec(text);
  if (sim) return { kind: "sim", workload: sim[1] };
  const qemu = /^qemu:(.+)$/.exec(text);
  if (qemu) return { kind: "qemu", socket: qemu[1] };
  throw new Error(
    `Cannot parse source "${text}": expected sim:WORKLOAD, e.g. sim:memcached (see "hakobu workloads"), or qemu:QMP_SOCKET`,
  );
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
  if (src.kind === "qemu") {
    return await migrateQemuCommand(src.socket, to, opts);
  }
  const log = (s: string) => {
    if (!opts.quiet) console.error(s);
  };
  // Credentials are read before the VM is made: a bad --tls-dir fails at once.
  const security = await connectSecurityFromFlags(opts.security);
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
  // Either signal aborts in any phase: the engine races every wait with it,
  // resumes the VM and tells the receiver (ABORT, best effort).
  const onInt = () => controller.abort("interrupted (SIGINT)");
  const onTerm = () => controller.abort("terminated (SIGTERM)");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  const progress = new ProgressView();
  try {
    log(`${vm.description}: connecting to ${to.hostname}:${to.port}`);
    const conn = await connectChannel(to, security).catch((e) => {
      throw new MigrationError(
        `Cannot connect to receiver "${opts.to}": ${
          e instanceof Error ? e.message : e
        }`,
      );
    });
    if (conn.identity !== null) {
      log(`authenticated receiver "${conn.identity}" over TLS`);
    } else log(`connected to receiver ${conn.remote} over plain TCP`);
    const report = await migrate({
      plan: opts.plan,
      source: vm,
      conn,
      signal: controller.signal,
      onProgress: opts.quiet ? undefined : (p) => progress.update(p),
    }).finally(() => progress.done());
    conn.close();
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
    return { code: report.verified ? 0 : 1, report };
  } finally {
    Deno.removeSignalListener("SIGINT", onInt);
    Deno.removeSignalListener("SIGTERM", onTerm);
    await vm.close();
  }
}

/**
 * Migrates a running QEMU guest through the hakobu tunnel: QEMU's own
 * migration stream goes to `scripts/tunnel.ts qemu send` (QMP `migrate
 * "exec:..."`), which runs the plan's round-0 codec chain (names only: each
 * codec with its default options) on the plan's channels over the paced link
 * to the destination's `tunnel.ts qemu receive`; the plan steers QEMU's
 * rounds and switchover through QMP.
 */
async function migrateQemuCommand(
  socket: string,
  to: { hostname: string; port: number },
  opts: MigrateCommandOptions,
): Promise<{ code: number; report?: MigrationReport }> {
  const { QmpClient, migrateQemu, execTunnel } = await import(
    "../../engine/qemu/mod.ts"
  );
  const qmp = await QmpClient.connect(socket, { timeoutMs: 5000 });
  try {
    const tunnel = await execTunnel({
      to: `${to.hostname}:${to.port}`,
      // the tunnel takes codec names: options stay at their defaults
      codecs: opts.plan.codecsFor(ROUND0(opts.plan)).map((c) => c.name),
      bandwidth: opts.plan.bandwidth,
      channels: opts.plan.channels,
      security: opts.security,
    });
    if (!opts.quiet) {
      console.error(
        `qemu:${socket}: migrating through the hakobu tunnel to ${to.hostname}:${to.port}`,
      );
    }
    // QEMU waits for its exec: child after it reports completion; the
    // verdict is the tunnel sender's own comparison of both digests.
    const report = await migrateQemu({
      plan: opts.plan,
      source: qmp,
      uri: tunnel.uri,
      vm: `qemu:${socket}`,
      verify: () => tunnel.verdict(),
    });
    await Deno.remove(tunnel.statsFile).catch(() => {});
    const stats = tunnel.stats;
    if (opts.report) {
      await writeText(
        opts.report,
        JSON.stringify({ ...report, tunnel: stats }, null, 2) + "\n",
      );
    }
    if (opts.html) await writeHtmlReport(report, opts.html);
    if (opts.json) console.log(JSON.stringify({ ...report, tunnel: stats }));
    else {
      console.log(formatRoundTable(report));
      console.log(formatSummary(report));
      if (stats) {
        console.log(
          `tunnel      ${stats.wireBytes} bytes on the hakobu wire for a ${stats.streamBytes}-byte QEMU stream ` +
            `(${stats.pages} pages, ${stats.zeroPages} zero)`,
        );
      } else {
        console.log("tunnel      no statistics (the tunnel did not finish)");
      }
      if (opts.report) console.log(`report written to ${opts.report}`);
      if (opts.html) console.log(`HTML report written to ${opts.html}`);
    }
    return { code: report.verified ? 0 : 1, report };
  } finally {
    qmp.close();
  }
}

/** The stats a plan's codec chooser sees before round 0. */
function ROUND0(plan: Plan): Parameters<Plan["codecsFor"]>[0] {
  return {
    round: 0,
    dirtyPages: 0,
    remainingBytes: 0,
    dirtyRate: 0,
    sendRate: 0,
    wireRate: plan.bandwidth ?? 0,
    elapsedMs: 0,
    bytesSent: 0,
    rawBytesSent: 0,
    memoryBytes: 0,
    pageSize: PAGE_SIZE,
  };
}
