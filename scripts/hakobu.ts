/**
 * `hakobu`: the command line.
 *
 *   hakobu tls init DIR [--name HOST,IP] [--identity SOURCE]
 *   hakobu receive  --listen 127.0.0.1:7700 --tls-dir DIR [--tls-authz SOURCE] [--once] [--gpu auto|gpu|cpu]
 *   hakobu migrate  --from sim:memcached --mem 1GiB --to 127.0.0.1:7700 --tls-dir DIR --policy FILE [--report out.json]
 *   hakobu migrate  --from qemu:QMP_SOCKET|xen:DOMAIN --to ... (one backend per source scheme: engine/backend/)
 *   (--insecure-plain instead of --tls-dir: plain TCP, on a trusted network only)
 *   hakobu report   out.json [--html out.html] [--svg out.svg]
 *   hakobu plan     --policy FILE
 *   hakobu workloads
 *   hakobu rebalance --inventory inventory.json --policy FILE [--dry-run] [--state FILE] [--exclude NAME]
 *   hakobu rebalance --hosts libvirt:URI,libvirt:URI --policy FILE [--dry-run] (live libvirt hosts)
 *   hakobu xen dirty-rate DOMID [--interval 1s]
 *   hakobu xen migrate DOMU --policy FILE [--receiver "ssh HOST xl migrate-receive"] [--report out.json] [--html out.html]
 *   hakobu tunnel qemu|xen send|receive ...   (the stream tunnel, as scripts/tunnel.ts)
 *
 * Run it with `deno task hakobu <command> --help` for each command's options.
 *
 * @module
 */

import { type Command, Option } from "@commander-js/extra-typings";
import { explain, loadPolicy } from "../dsl/mod.ts";
import type { Plan } from "../engine/plan.ts";
import { workloadByName, workloadNames } from "../engine/sim/mod.ts";
import { MAX_CHANNELS } from "../engine/plan.ts";
import { migrateCommand, sourceFormsHelp } from "./_cli/migrate.ts";
import {
  address,
  bandwidth,
  duration,
  integer,
  interval,
  percent,
  size,
} from "./_cli/options.ts";
import { cliProgram, runCli } from "./_cli/program.ts";
import { DEFAULT_MAX_SESSIONS, receiveCommand } from "./_cli/receive.ts";
import {
  DEFAULT_FRAME_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_RESUME_GRACE_MS,
} from "../engine/receiver.ts";
import { reportCommand } from "./_cli/report.ts";
import {
  insecurePlainOption,
  listenSecurityFrom,
  securityFlagsFrom,
  tlsAuthzOption,
  tlsDirOption,
  tlsIdentityOption,
  tlsNameOption,
} from "./_cli/security_options.ts";
import { tlsInitCommand } from "./_cli/tls_init.ts";
import { tunnelCommand } from "./_cli/tunnel_cli.ts";

/** The policy used when `--policy` is not given. */
export const DEFAULT_POLICY: string =
  new URL("../examples/policies/default.ts", import.meta.url).pathname;

async function planFrom(
  path: string | undefined,
  rate: number | null | undefined,
  channels?: number,
): Promise<Plan> {
  let plan = await loadPolicy(path ?? DEFAULT_POLICY);
  if (rate !== undefined) plan = { ...plan, bandwidth: rate };
  if (channels !== undefined) plan = { ...plan, channels };
  return plan;
}

/** Builds the command tree; `main` parses argv with it. Exported for tests. */
export function buildCli(setExit: (code: number) => void): Command {
  const program = cliProgram("hakobu")
    .description("Scriptable live migration of big-memory VMs")
    .showHelpAfterError()
    .configureHelp({ showGlobalOptions: true });

  program.command("receive")
    .description(
      "listen for migrations and receive each VM's memory (simulated destination)",
    )
    .requiredOption(
      "--listen <host:port>",
      "address to listen on (port 0 picks one)",
    )
    .option(
      "--once",
      "exit after one migration (exit code 0 only if it verified)",
    )
    .addOption(
      new Option("--max-mem <size>", "largest VM memory to accept")
        .argParser(size).default(64 * 2 ** 30, "64GiB"),
    )
    .option(
      "--max-total-mem <size>",
      "memory, decoder state and TLS read buffers all sessions in progress may hold together (default --max-mem)",
      size,
    )
    .option(
      "--max-sessions <n>",
      "most migrations received at once; more connections are refused",
      integer({ min: 1 }),
      DEFAULT_MAX_SESSIONS,
    )
    .option(
      "--handshake-timeout <ms>",
      "most milliseconds from connecting to a whole HELLO",
      integer(),
      DEFAULT_HANDSHAKE_TIMEOUT_MS,
    )
    .option(
      "--frame-timeout <ms>",
      "most milliseconds a source may take for each next frame",
      integer(),
      DEFAULT_FRAME_TIMEOUT_MS,
    )
    .option(
      "--resume-grace <ms>",
      "most milliseconds a migration whose link was lost during pre-copy is kept for its source to resume (0: none is resumable)",
      integer(),
      DEFAULT_MAX_RESUME_GRACE_MS,
    )
    .addOption(
      new Option(
        "--gpu <mode>",
        "decode rle and delta pages on the GPU: auto (a hardware GPU only), gpu (any adapter, software ones too), cpu (never)",
      ).choices(["auto", "gpu", "cpu"]).default("cpu"),
    )
    .option(
      "--gpu-require",
      "fail each migration instead of decoding on the CPU when --gpu finds no adapter it takes",
    )
    .addOption(tlsDirOption())
    .addOption(tlsAuthzOption())
    .addOption(insecurePlainOption())
    .option("--json", "print each result as one JSON line")
    .action(async (o) => {
      setExit(
        await receiveCommand({
          gpu: { prefer: o.gpu, require: o.gpuRequire === true },
          listen: o.listen,
          security: await listenSecurityFrom(o),
          once: o.once,
          maxMemoryBytes: o.maxMem,
          maxTotalMemoryBytes: o.maxTotalMem,
          maxSessions: o.maxSessions,
          handshakeTimeoutMs: o.handshakeTimeout,
          frameTimeoutMs: o.frameTimeout,
          resumeGraceMs: o.resumeGrace,
          json: o.json,
        }),
      );
    });

  program.command("migrate")
    .description("migrate a VM live to a receiver with a policy")
    .requiredOption(
      "--from <source>",
      `the VM to migrate: ${sourceFormsHelp()} (see 'hakobu workloads' for sim)`,
    )
    .requiredOption(
      "--to <target>",
      "where to: HOST:PORT of a hakobu receiver (sim) or tunnel receiver (qemu, xen); xen also takes HOST (ssh HOST xl migrate-receive) or exec:COMMAND; libvirt: libvirt:URI of the destination host",
    )
    .addOption(
      new Option("--mem <size>", "memory of a sim VM, e.g. 1GiB")
        .argParser(size).default(2 ** 30, "1GiB"),
    )
    .option("--seed <n>", "seed of the sim workload", integer(), 1)
    .option(
      "--dirty-rate <pages/s>",
      "override the sim workload's dirty rate",
      integer(),
    )
    .option(
      "--policy <file>",
      "policy file (default: examples/policies/default.ts)",
    )
    .option(
      "--bandwidth <rate>",
      "override the policy's link pacing, e.g. 1Gbit or unlimited",
      bandwidth,
    )
    .option(
      "--channels <n>",
      `override the policy's channels (Workers encoding in parallel, 1 to ${MAX_CHANNELS}; default one per core)`,
      integer({ min: 1, max: MAX_CHANNELS }),
    )
    .option(
      "--channel-connections",
      "sim: each channel on a TCP/TLS connection of its own, written and encrypted by its own Worker (encryption spreads over cores); a receiver that does not grant them gets the one connection; with a policy that resumes, a lost channel connection resumes as the session's does",
    )
    .option(
      "--tunnel",
      "libvirt: put hakobu's stream tunnel (the policy's codecs, verified) in libvirt's migration",
    )
    .option(
      "--tunnel-receiver <host:port>",
      "libvirt, two hosts: the tunnel's receiving end already runs on the destination (tunnel.ts qemu receive --listen HOST:PORT --to-qemu ADDR:PORT --return-path); only the sending end starts here (implies --tunnel)",
      address,
    )
    .option(
      "--migration-port <port>",
      "with --tunnel-receiver: the destination QEMU's migration port, the port of that receiver's --to-qemu",
      integer({ min: 1, max: 65535 }),
    )
    .option(
      "--listen-address <addr>",
      "with --tunnel-receiver: where the destination QEMU listens, the host of that receiver's --to-qemu",
      "127.0.0.1",
    )
    .option("--report <file>", "write the JSON report to this file")
    .option("--html <file>", "write the HTML report with charts to this file")
    .option("--json", "print the report as JSON instead of tables")
    .option("--quiet", "no progress output")
    .addOption(tlsDirOption())
    .addOption(tlsNameOption())
    .addOption(tlsIdentityOption())
    .addOption(insecurePlainOption())
    .action(async (o, cmd) => {
      if (o.tunnelReceiver !== undefined && o.migrationPort === undefined) {
        cmd.error(
          "--tunnel-receiver: give --migration-port too, the port of that receiver's --to-qemu (the destination QEMU listens there)",
        );
      }
      if (o.tunnelReceiver === undefined && o.migrationPort !== undefined) {
        cmd.error(
          "--migration-port: only with --tunnel-receiver (a tunnel started here picks a free port itself)",
        );
      }
      const plan = await planFrom(o.policy, o.bandwidth, o.channels);
      // Only a target on hakobu's link needs a security choice (the backend
      // says so when it gets none): xen's xl receivers do not.
      const chosen = o.insecurePlain ||
        [o.tlsDir, o.tlsName, o.tlsIdentity].some((v) => v !== undefined);
      const { code } = await migrateCommand({
        from: o.from,
        to: o.to,
        security: chosen ? securityFlagsFrom(o) : undefined,
        memoryBytes: o.mem,
        seed: o.seed,
        dirtyRate: o.dirtyRate,
        ...(o.tunnel ? { tunnel: true } : {}),
        ...(o.channelConnections ? { channelConnections: true } : {}),
        ...(o.tunnelReceiver === undefined ? {} : {
          tunnelReceiver: {
            at: `${o.tunnelReceiver.hostname}:${o.tunnelReceiver.port}`,
            migrationPort: o.migrationPort!,
            listenAddress: o.listenAddress,
          },
        }),
        plan,
        report: o.report,
        html: o.html,
        json: o.json,
        quiet: o.quiet,
      });
      setExit(code);
    });

  const tlsCommand = program.command("tls").description(
    "TLS credentials for authenticated, encrypted migrations",
  );
  tlsCommand.command("init")
    .description(
      "write a CA, a receiver certificate, a source client certificate and a pre-shared key into DIR",
    )
    .argument(
      "<dir>",
      "directory to write (created; existing files are never overwritten)",
    )
    .option(
      "--name <names>",
      "comma-separated DNS names and IPs of the receiver",
      "localhost,127.0.0.1,::1",
    )
    .option(
      "--identity <id>",
      "the source's identity (CN and PSK identity)",
      "hakobu-source",
    )
    .option("--days <n>", "validity in days", integer({ min: 1 }), 365)
    .action(async (dir, o) => {
      await tlsInitCommand({
        dir,
        receiverNames: o.name.split(",").map((s) => s.trim()).filter((s) => s),
        sourceIdentity: o.identity,
        days: o.days,
      });
    });

  // The tunnel's own tree (scripts/tunnel.ts runs it too): its usage errors
  // and its ending are one JSON line on stderr, as its callers read them.
  program.addCommand(
    tunnelCommand("tunnel", setExit, { invokedAs: "hakobu tunnel" }).summary(
      "carry a hypervisor's migration stream through hakobu's channels and codecs (QEMU exec:, xl migrate -s); 'hakobu tunnel qemu send --help' lists the flags",
    ),
  );

  program.command("report")
    .description(
      "turn a migration's JSON report into HTML/SVG with charts, or print its tables",
    )
    .argument("<report.json>", "the JSON written by 'hakobu migrate --report'")
    .option("--html <file>", "write the HTML report (summary, rounds, charts)")
    .option("--svg <file>", "write the charts as one standalone SVG")
    .action(async (file, o) => {
      setExit(await reportCommand(file, { html: o.html, svg: o.svg }));
    });

  program.command("plan")
    .description("compile a policy and explain it in words")
    .option(
      "--policy <file>",
      "policy file (default: examples/policies/default.ts)",
    )
    .action(async (o) => {
      const plan = await loadPolicy(o.policy ?? DEFAULT_POLICY);
      console.log(explain(plan));
    });

  program.command("workloads")
    .description("list the simulated workloads and what each models")
    .option("--json", "print as JSON")
    .action((o) => {
      const all = workloadNames().map((name) => workloadByName(name));
      if (o.json) {
        console.log(
          JSON.stringify(
            all.map((w) => ({
              name: w.name,
              summary: w.summary,
              models: w.models,
            })),
          ),
        );
        return;
      }
      for (const w of all) console.log(`${w.name.padEnd(10)} ${w.summary}`);
    });

  program.command("rebalance")
    .description(
      "plan the moves that bring every host under its memory target, and run them (sim hosts, or live libvirt hosts)",
    )
    .option("--inventory <file>", "inventory JSON: hosts, VMs, targets")
    .option(
      "--hosts <list>",
      "live libvirt hosts instead of --inventory: libvirt:URI[,NAME=libvirt:URI...]",
    )
    .option(
      "--host-memory <size>",
      "with --hosts: memory VMs may use, SIZE (every host) or NAME=SIZE (default: the node's; repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .addOption(
      new Option(
        "--dirty-rate-sample <duration>",
        "with --hosts: measure each domain's dirty rate this long first (0s: the last measurement)",
      ).argParser(duration),
    )
    .option(
      "--sample-pages <n>",
      "with --hosts: pages of each domain to read (virDomainMemoryPeek, a multiple of 8) to measure its zero pages and compression for predictions (default 256; 0: none, costed as incompressible)",
      integer({ min: 0, max: 65536 }),
    )
    .requiredOption("--policy <file>", "migration policy file")
    .option(
      "--dry-run",
      "print the plan and every step a run would take; change nothing",
    )
    .option(
      "--state <file>",
      "move history (JSON, written after each run): VMs moved within --cooldown stay put",
    )
    .addOption(
      new Option(
        "--cooldown <duration>",
        "how long a moved VM is not moved again, e.g. 30m (0s: no cooldown)",
      ).argParser(duration).default(30 * 60_000, "30m"),
    )
    .option(
      "--exclude <name>",
      "a VM name or glob (*, ?) that never moves (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      "--exclude-tag <tag>",
      "VMs with this inventory tag never move (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      "--max-concurrent <n>",
      "most migrations at once",
      integer({ min: 1 }),
      2,
    )
    .addOption(
      new Option("--timeout <duration>", "limit per migration, e.g. 5m")
        .argParser(duration).default(5 * 60_000, "5m"),
    )
    .option(
      "--bandwidth <rate>",
      "override the policy's link rate, e.g. 10Gbit",
      bandwidth,
    )
    .option(
      "--target <percent>",
      "override the inventory's memory target",
      percent,
    )
    .option(
      "--max-moves <n>",
      "override the inventory's move limit",
      integer({ min: 1 }),
    )
    .option("--json", "print the plan and results as JSON")
    .option("--write-inventory <file>", "write the updated inventory here")
    .action(async (o) => {
      const { rebalanceCommand } = await import("./_cli/rebalance.ts");
      setExit(
        await rebalanceCommand({
          inventory: o.inventory,
          hosts: o.hosts,
          hostMemory: o.hostMemory,
          dirtyRateSeconds: o.dirtyRateSample === undefined
            ? undefined
            : o.dirtyRateSample / 1000,
          samplePages: o.samplePages,
          plan: await loadPolicy(o.policy),
          bandwidth: o.bandwidth,
          dryRun: o.dryRun,
          maxConcurrent: o.maxConcurrent,
          timeoutMs: o.timeout,
          maxHostMemoryPercent: o.target,
          maxMoves: o.maxMoves,
          json: o.json,
          writeInventory: o.writeInventory,
          state: o.state,
          cooldownMs: o.cooldown,
          exclude: o.exclude,
          excludeTags: o.excludeTag,
        }),
      );
    });

  const xen = program.command("xen").description(
    "Xen tools (run on a dom0 as root)",
  );
  xen.command("dirty-rate")
    .description("measure a domain's dirty rate through log-dirty CLEAN/PEEK")
    .argument("<domid>", "domain id", integer({ min: 0, max: 0x7fef }))
    .addOption(
      new Option(
        "--interval <duration>",
        "how long to measure, e.g. 1s or 500ms",
      )
        .argParser(interval).default(1000, "1s"),
    )
    .option("--json", "print JSON")
    .action(async (domid, o) => {
      const { xenDirtyRateCli } = await import("./_cli/xen.ts");
      setExit(
        await xenDirtyRateCli(domid, { intervalMs: o.interval, json: o.json }),
      );
    });

  xen.command("migrate")
    .description(
      "live-migrate a PV/PVH domain: libxenguest's save loop under the policy, to xl migrate-receive",
    )
    .argument("<domain>", "domain name or id")
    .option("--policy <file>", "policy whose decide() answers each round")
    .option(
      "--receiver <command>",
      'shell command speaking xl migrate-receive on stdin/stdout (e.g. "ssh HOST xl migrate-receive", or hakobu\'s Xen tunnel)',
      "xl migrate-receive",
    )
    .option("--no-live", "suspend first and copy once (no pre-copy)")
    .option("--report <file>", "write the JSON report to this file")
    .option("--html <file>", "write the HTML report with charts to this file")
    .option("--json", "print the report as JSON instead of tables")
    .option("--quiet", "no progress output")
    .action(async (domain, o) => {
      const { xenMigrateCli } = await import("./_cli/xen.ts");
      setExit(
        await xenMigrateCli(domain, {
          ...o,
          policy: o.policy ?? DEFAULT_POLICY,
        }),
      );
    });

  return program;
}

/** Runs the CLI on `args`; returns the exit code. */
export function main(args: readonly string[]): Promise<number> {
  return runCli(buildCli, args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
