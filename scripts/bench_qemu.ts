/**
 * QEMU migration modes side by side on the same guest and the same link:
 * a memcached guest under load (lab image), source in netns `hkb-src`,
 * destination in `hkb-dst`, veth shaped to 1 Gbit/s by tc. Each mode boots a
 * fresh pair, lets the load run, migrates under the same hakobu policy
 * (engine/qemu/policy_driver.ts) and checks the data on the destination.
 *
 * Modes: QEMU plain (tcp), QEMU xbzrle, QEMU multifd+zstd (tcp channels),
 * and hakobu through `exec:` into the tunnel with a few codec chains, and
 * through the resident tunnel (`unix:` sockets into processes started once
 * for the run, so a migration pays no Deno start). And the floor
 * (`floor-zstd`, `_bench_floor.ts` through `exec:`): a Deno pipe that only
 * compresses 1 MiB chunks with `zstd -1`, no parsing and no digest — what
 * any tunnel between QEMU's plain stream and the link costs at least.
 *
 * Every row is timed on the same clock (`lab/migration_clock.ts`): from the
 * source accepting `migrate` to the destination guest running (QMP
 * `RESUME`), so a tunnel's draining and checks count; downtime from the
 * source's `STOP` to the destination's `RESUME`. Then each destination's
 * data is checked by the guest's checker, and each tunnel row must end with
 * the tunnel's own digest comparison (`verification: "stream-digest"`).
 * QEMU's own `total-time` and `downtime`, which stop before QEMU waits for
 * an `exec:` child, are kept in the JSON for reference. Each row also says
 * where the CPU went over the migration (`lab/cpu_budget.ts`): the whole
 * machine's busy CPU-seconds, the guest's vCPUs', QEMU's other threads' (both
 * ends), and the rest (the tunnels, the kernel's network path, the bench) —
 * on a machine of few cores the migration is as fast as the CPU it gets.
 *
 * ```sh
 * deno run -A scripts/bench_qemu.ts [--app memcached|postgres] [--mem 1024] [--rate 1gbit]
 *     [--modes plain,xbzrle,multifd-zstd,zero-raw,...] [--out FILE] [--rounds N] [--churn MiB/s]
 *     [--warmup s] [--repeat N] [--against DIR] [--tunnel-channels N[,N...]]
 * ```
 * Writes `out/bench-qemu.json` and prints a table. Needs root (netns).
 * `--repeat N` runs the whole list of modes N times, interleaved, and the
 * table shows each mode's medians (every run is in the JSON). `--against DIR`
 * adds the two tunnel modes run by another checkout's tunnel (e.g. a `git
 * worktree` of an older commit), so a tunnel change is measured side by side.
 *
 * @module
 */

import { InvalidArgumentError, Option } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { policy } from "../dsl/policy.ts";
import { when } from "../dsl/conditions.ts";
import { MiB } from "../dsl/units.ts";
import { migrateQemu } from "../engine/qemu/policy_driver.ts";
import type { QmpMigrationParameters } from "../engine/qemu/qmp.ts";
import { LAB_NET, linkCounters, netDown, netUp } from "./lab/netns.ts";
import { startPair } from "./lab/qemu_pair.ts";
import { buildLab, labUnavailable, qemuPid } from "./lab/qemu_guest.ts";
import { type CpuBudget, cpuBudget, sampleCpu } from "./lab/cpu_budget.ts";
import { watchMigration } from "./lab/migration_clock.ts";
import { execTunnel } from "../engine/qemu/exec_tunnel.ts";
import {
  securityArgs,
  type SecurityFlags,
} from "../engine/transport/secure/security.ts";
import {
  type ResidentReceiver,
  type ResidentSender,
  startResidentReceiver,
  startResidentSender,
} from "../engine/qemu/resident_tunnel.ts";
import { median } from "./_median.ts";
import { qemuTunnelCommand } from "./_tunnel_command.ts";
import { integer, nameList } from "./_cli/options.ts";
import { cliProgram, parseOrExit } from "./_cli/program.ts";

interface Mode {
  readonly name: string;
  readonly capabilities?: Record<string, boolean>;
  readonly parameters?: QmpMigrationParameters;
  /** Both sides need these before listening (multifd). */
  readonly both?: boolean;
  /**
   * hakobu's tunnel: its codec chain, the command before `send|receive`,
   * and whether it authenticates (false: a checkout from before TLS).
   */
  readonly tunnel?: { codecs: string[]; command: string[]; tls?: boolean };
  /** hakobu's resident tunnel (started once for the run): its codec chain. */
  readonly resident?: { codecs: string[] };
  /** Channels of hakobu's tunnels in this mode (absent: their default, the core count). */
  readonly channels?: number;
  /**
   * The floor (`scripts/_bench_floor.ts`): the command before
   * `send|receive` of a Deno pipe that only compresses 1 MiB chunks with
   * `zstd -1` — no parsing, no digest; what a tunnel cannot go below.
   */
  readonly floor?: readonly string[];
}

/** One row of the bench. */
export interface BenchRow {
  readonly mode: string;
  readonly status: string;
  readonly dataIntact: boolean;
  readonly checker: string;
  /** What hakobu compared: `"stream-digest"` for tunnel rows, `"none"` for QEMU's transports. */
  readonly verification: string;
  /** Tunnel rows: the tunnel's digest comparison matched. */
  readonly verified: boolean;
  /** Source `migrate` accepted → destination `RESUME` (QMP event times). */
  readonly totalTimeMs: number;
  /** Source `STOP` → destination `RESUME`. */
  readonly downtimeMs: number;
  /** Source `STOP`, epoch ms (QMP's time): lines a `HAKOBU_TRACE_TUNNEL` trace up with the switchover. */
  readonly stopAtMs: number;
  /** Destination `RESUME`, epoch ms (QMP's time). */
  readonly resumeAtMs: number;
  /** QEMU's own `total-time` (stops before an exec: child is waited for). */
  readonly qemuTotalTimeMs: number;
  /** QEMU's own `downtime`. */
  readonly qemuDowntimeMs: number;
  readonly rounds: number;
  readonly qemuTransferred: number;
  readonly linkBytes: number;
  readonly sourceCpuSeconds: number;
  /** CPU-seconds over the migration: the machine, the guest's vCPUs, QEMU's other threads, the rest (tunnels, network, bench). */
  readonly cpu: CpuBudget;
  readonly error: string | null;
}

/**
 * `--tunnel-channels`: distinct channel counts from 1 to 64, comma-separated.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelCounts } from "./bench_qemu.ts";
 *
 * assert.deepEqual(channelCounts("1,2"), [1, 2]);
 * assert.throws(() => channelCounts("1,1"), /distinct/);
 * ```
 */
export function channelCounts(text: string): number[] {
  const one = integer({ min: 1, max: 64 });
  const counts = text.split(",").map((t) => one(t));
  if (new Set(counts).size !== counts.length) {
    throw new InvalidArgumentError(
      `expected distinct channel counts, got "${text}"`,
    );
  }
  return counts;
}

/** The command line; `--help` lists the flags. */
function command() {
  return cliProgram("bench_qemu.ts", { usageExitCode: 2 })
    .description(
      "QEMU's migration modes and the hakobu tunnel side by side on the same lab guest and link (needs root: netns).",
    )
    .addOption(
      new Option("--app <name>", "the guest's app").choices(
        ["memcached", "postgres"] as const,
      ).default("memcached" as const),
    )
    .option("--mem <MiB>", "guest memory in MiB", integer({ min: 1 }), 1024)
    .option("--rate <rate>", "the veth's tc rate, e.g. 1gbit", "1gbit")
    .option(
      "--modes <list>",
      "only the modes ending in these names, e.g. plain,zero-raw",
      nameList({ what: "mode" }),
    )
    .option("--out <file>", "JSON output (default: out/bench-qemu.json)")
    .option(
      "--rounds <n>",
      "switch over after exactly N rounds (default 0: remaining < 32 MiB or 10 rounds)",
      integer(),
      0,
    )
    .option("--churn <MiB/s>", "the guest's write churn", integer(), 4)
    .option(
      "--tunnel-channels <list>",
      "channels of hakobu's tunnels, e.g. 1 or 1,2: several make one mode per count, side by side (default: theirs, the core count)",
      channelCounts,
    )
    .option(
      "--warmup <s>",
      "seconds of load before migrating",
      integer(),
      5,
    )
    .option(
      "--repeat <n>",
      "run the list of modes N times, interleaved; medians in the table",
      integer({ min: 1 }),
      1,
    )
    .option(
      "--against <dir>",
      "also run the tunnel modes with another checkout's tunnel",
    );
}

/** The parsed flags. */
type BenchQemuOptions = ReturnType<ReturnType<typeof command>["opts"]>;

async function main(o: BenchQemuOptions): Promise<number> {
  const why = await labUnavailable();
  if (why) {
    console.error(`Cannot run the QEMU bench: ${why}`);
    return 2;
  }
  const memMiB = o.mem;
  const rate = o.rate;
  const warmupS = o.warmup;
  const churn = o.churn;
  const root = new URL("..", import.meta.url).pathname;
  const app = o.app;
  const deno = Deno.execPath();
  const ownTunnel = (await qemuTunnelCommand(root))!;
  const modes: Mode[] = [
    { name: "qemu-plain" },
    {
      name: "qemu-xbzrle",
      capabilities: { xbzrle: true },
      parameters: { "xbzrle-cache-size": 64 * 1024 * 1024 },
    },
    {
      name: "qemu-multifd-zstd",
      capabilities: { multifd: true },
      parameters: { "multifd-channels": 2, "multifd-compression": "zstd" },
      both: true,
    },
    {
      name: "floor-zstd",
      floor: [
        deno,
        "run",
        "-A",
        new URL("./_bench_floor.ts", import.meta.url).pathname,
      ],
    },
  ];
  const chains: [string, string[]][] = [
    ["hakobu-zero-raw", ["zero", "raw"]],
    ["hakobu-zero-dedup-lz4", ["zero", "dedup", "lz4"]],
    ["hakobu-zero-zstd", ["zero", "zstd"]],
    ["hakobu-zero-lz4", ["zero", "lz4"]],
  ];
  // One tunnel mode per channel count asked for, side by side in the run
  // (`hakobu-1ch-zero-zstd`, ...); one count, or none, keeps the plain names.
  const counts = o.tunnelChannels ?? [];
  const perCount = counts.length > 1
    ? counts.map((n) => ({ tag: `${n}ch-`, channels: n }))
    : [{ tag: "", channels: counts[0] }];
  const withChannels = (n: number | undefined) =>
    n === undefined ? {} : { channels: n };
  for (const { tag, channels } of perCount) {
    for (const [name, codecs] of chains) {
      modes.push({
        name: name.replace("hakobu-", `hakobu-${tag}`),
        tunnel: { codecs, command: [deno, "run", "-A", ...ownTunnel] },
        ...withChannels(channels),
      });
    }
    for (const [name, codecs] of chains.slice(1)) {
      modes.push({
        name: name.replace("hakobu-", `hakobu-resident-${tag}`),
        resident: { codecs },
        ...withChannels(channels),
      });
    }
  }
  const against = o.against;
  if (against) {
    const theirs = await qemuTunnelCommand(against);
    if (!theirs) {
      console.error(
        `--against ${against}: no scripts/tunnel.ts or engine/qemu/tunnel_main.ts, so not a hakobu checkout`,
      );
      return 2;
    }
    // A checkout since tunnels authenticate refuses to run without
    // --insecure-plain (or TLS flags); an older one knows no such flag.
    const secure = (await Deno.stat(`${against}/engine/transport/secure`)
      .catch(() => null))?.isDirectory === true;
    for (const [name, codecs] of chains) {
      modes.push({
        name: `against-${name}`,
        tunnel: {
          codecs,
          command: [deno, "run", "-A", ...theirs],
          tls: secure ? undefined : false,
        },
      });
    }
  }
  const only = o.modes;
  const selected = only
    ? modes.filter((m) => only.some((name) => m.name.endsWith(name)))
    : modes;

  const img = await buildLab(app, { log: console.error });
  console.error(
    `lab image: ${img.built ? `built in ${img.buildMs} ms` : "cached"}`,
  );
  await netUp({ rate });
  // Plain TCP, as QEMU's own rows run (and as the README's figures were
  // measured); bench:secure measures what TLS costs.
  const security: SecurityFlags = { insecurePlain: true };
  const fixedRounds = o.rounds;
  const plan = policy("bench")
    .switchover(
      fixedRounds > 0
        ? when.rounds(fixedRounds)
        : when.any(when.remainingBelow(MiB(32)), when.rounds(10)),
    )
    .compile();
  const repeat = o.repeat;
  const rows: BenchRow[] = [];
  // Resident tunnels: started once per mode and kept for every run of it.
  const residents = new Map<
    string,
    { sender: ResidentSender; receiver: ResidentReceiver }
  >();
  const residentFor = async (mode: Mode) => {
    let r = residents.get(mode.name);
    if (!r) {
      const dir = await Deno.makeTempDir({ prefix: "hakobu-resident-" });
      const port = 4446 + residents.size;
      const receiver = await startResidentReceiver({
        listen: `${LAB_NET.dstAddr}:${port}`,
        incoming: `${dir}/in.sock`,
        wrap: ["ip", "netns", "exec", LAB_NET.dst],
        security,
      });
      const sender = await startResidentSender({
        socket: `${dir}/out.sock`,
        to: `${LAB_NET.dstAddr}:${port}`,
        codecs: mode.resident!.codecs,
        ...withChannels(mode.channels),
        wrap: ["ip", "netns", "exec", LAB_NET.src],
        security,
      });
      r = { sender, receiver };
      residents.set(mode.name, r);
    }
    return r;
  };
  try {
    for (const mode of Array.from({ length: repeat }, () => selected).flat()) {
      console.error(`--- ${mode.name}`);
      // the receiving tunnel's stats line goes to a file (kept only in the
      // row's error when the migration failed)
      const recvLog = await Deno.makeTempFile({ prefix: "hakobu-bench-recv-" });
      const recv = mode.tunnel
        ? `exec:${
          [
            ...mode.tunnel.command,
            "receive",
            "--listen",
            `${LAB_NET.dstAddr}:4445`,
            ...(mode.tunnel.tls === false
              ? []
              : securityArgs(security, "receiver")),
          ].join(" ")
        } 2>${recvLog}`
        : mode.floor
        ? `exec:${
          [...mode.floor, "receive", `${LAB_NET.dstAddr}:4445`].join(" ")
        } 2>${recvLog}`
        : undefined;
      const resident = mode.resident ? await residentFor(mode) : null;
      const pair = await startPair({
        app,
        memMiB,
        netns: true,
        churnMiB: churn,
        warmupS,
        capabilities: mode.both ? mode.capabilities : undefined,
        destinationParameters: mode.both ? mode.parameters : undefined,
        incomingUri: recv ?? resident?.receiver.incomingUri,
      });
      const tunnel = mode.tunnel
        ? await execTunnel({
          to: `${LAB_NET.dstAddr}:4445`,
          codecs: mode.tunnel.codecs,
          command: mode.tunnel.command,
          ...withChannels(mode.channels),
          security: mode.tunnel.tls === false ? null : security,
        })
        : null;
      try {
        const pid = await qemuPid(pair.source.qmpPath);
        const dstPid = await qemuPid(pair.destination.qmpPath);
        const before = await linkCounters("src");
        const cpuBefore = await sampleCpu(pid, dstPid);
        const clock = watchMigration(pair.src, pair.dst);
        const report = await migrateQemu({
          plan,
          source: pair.src,
          destination: pair.dst,
          uri: tunnel?.uri ?? resident?.sender.uri ??
            (mode.floor
              ? `exec:${
                [...mode.floor, "send", `${LAB_NET.dstAddr}:4445`].join(" ")
              } 2>/dev/null`
              : pair.uri),
          capabilities: mode.capabilities,
          parameters: mode.parameters,
          sourcePids: [
            ...(pid ? [pid] : []),
            ...(resident ? [resident.sender.pid] : []),
          ],
          vm: `lab ${app} ${memMiB} MiB`,
          timeoutMs: 300_000,
          ...(tunnel
            ? { verify: () => tunnel.verdict(60_000) }
            : resident
            ? { verify: () => resident.sender.verdict(60_000) }
            : {}),
        });
        const times = report.status === "completed"
          ? await clock.result(60_000).catch((e) => {
            console.error(`  ${e.message}`);
            return null;
          })
          : null;
        clock.close();
        const cpu = cpuBudget(cpuBefore, await sampleCpu(pid, dstPid));
        const after = await linkCounters("src");
        const checker = report.status === "completed"
          ? await pair.destination.check()
          : "not migrated";
        const row: BenchRow = {
          mode: mode.name,
          status: report.status,
          dataIntact: checker.startsWith("ok"),
          checker,
          verification: report.verification,
          verified: report.verified,
          totalTimeMs: times?.totalMs ?? NaN,
          downtimeMs: times?.downtimeMs ?? NaN,
          stopAtMs: times?.stopMs ?? NaN,
          resumeAtMs: times?.resumeMs ?? NaN,
          qemuTotalTimeMs: report.totalTimeMs,
          qemuDowntimeMs: report.downtimeMs,
          rounds: report.rounds.length,
          qemuTransferred: report.wireBytes,
          linkBytes: after.txBytes - before.txBytes,
          sourceCpuSeconds: report.sourceCpuSeconds,
          cpu,
          error: report.error ??
            ((mode.tunnel || mode.resident) && !report.verified
              ? `${report.outcome}; receiver: ${
                (await Deno.readTextFile(recvLog).catch(() => "")).trim()
              }`
              : null),
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      } finally {
        if (tunnel) await Deno.remove(tunnel.statsFile).catch(() => {});
        await Deno.remove(recvLog).catch(() => {});
        await pair.close();
      }
    }
  } finally {
    for (const r of residents.values()) {
      await r.sender.close();
      await r.receiver.close();
    }
    await netDown();
  }
  const result = {
    date: new Date().toISOString(),
    guest: `${app} under load, ${memMiB} MiB, TCG 1 vCPU, churn ${churn} MiB/s`,
    clock:
      "total: source MIGRATION setup -> destination RESUME; downtime: source STOP -> destination RESUME (QMP event times)",
    link: `veth hkb-src <-> hkb-dst, tc tbf ${rate}`,
    policy: fixedRounds > 0
      ? `switchover after ${fixedRounds} rounds; unpaced`
      : "switchover when remaining < 32 MiB or 10 rounds; unpaced",
    rows,
  };
  await Deno.mkdir(`${root}out`, { recursive: true });
  const outPath = o.out ?? `${root}out/bench-qemu.json`;
  await Deno.writeTextFile(
    outPath,
    JSON.stringify(result, null, 2) + "\n",
  );
  const t = new Table({
    head: [
      "mode",
      "status",
      "data",
      "checked",
      "total s",
      "downtime ms",
      "rounds",
      "link MiB",
      "src CPU s",
      "CPU s: all",
      "guest",
      "QEMU",
      "rest",
    ],
  });
  for (const mode of selected) {
    const rs = rows.filter((r) => r.mode === mode.name);
    if (rs.length === 0) continue;
    const statuses = [...new Set(rs.map((r) => r.status))].join("/");
    t.push([
      mode.name,
      statuses,
      rs.every((r) => r.dataIntact)
        ? "intact"
        : `BAD ${rs.filter((r) => !r.dataIntact).length}/${rs.length}`,
      rs[0].verification === "none"
        ? "guest checker"
        : rs.every((r) => r.verified)
        ? "stream digest"
        : `DIGEST BAD ${rs.filter((r) => !r.verified).length}/${rs.length}`,
      (median(rs.map((r) => r.totalTimeMs)) / 1000).toFixed(2),
      median(rs.map((r) => r.downtimeMs)).toFixed(0),
      median(rs.map((r) => r.rounds)),
      (median(rs.map((r) => r.linkBytes)) / 2 ** 20).toFixed(1),
      median(rs.map((r) => r.sourceCpuSeconds)).toFixed(2),
      median(rs.map((r) => r.cpu.machineS)).toFixed(2),
      median(rs.map((r) => r.cpu.guestS)).toFixed(2),
      median(rs.map((r) => r.cpu.qemuS)).toFixed(2),
      median(rs.map((r) => r.cpu.otherS)).toFixed(2),
    ]);
  }
  if (repeat > 1) console.log(`medians of ${repeat} runs per mode`);
  console.log(`${result.guest}; ${result.link}`);
  console.log(t.toString());
  console.log(`written to ${outPath}`);
  return rows.every((r) =>
      r.dataIntact && Number.isFinite(r.totalTimeMs) &&
      (r.verification === "none" || r.verified)
    )
    ? 0
    : 1;
}

if (import.meta.main) {
  Deno.exit(await main(parseOrExit(command(), Deno.args)));
}
