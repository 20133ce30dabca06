/**
 * QEMU migration modes side by side on the same guest and the same link:
 * a memcached guest under load (lab image), source in netns `hkb-src`,
 * destination in `hkb-dst`, veth shaped to 1 Gbit/s by tc. Each mode boots a
 * fresh pair, lets the load run, migrates under the same hakobu policy
 * (engine/qemu/policy_driver.ts) and checks the data on the destination.
 *
 * Modes: QEMU plain (tcp), QEMU xbzrle, QEMU multifd+zstd (tcp channels),
 * and, when `engine/qemu/tunnel.ts` exists, hakobu through `exec:` into the
 * tunnel with two codec chains (see `--tunnel-send` / `--tunnel-recv`).
 *
 * ```sh
 * deno run -A scripts/bench_qemu.ts [--mem 1024] [--rate 1gbit] [--modes plain,xbzrle,multifd-zstd]
 *     [--out FILE] [--rounds N] [--churn MiB/s] [--warmup s] [--tunnel-send CMD] [--tunnel-recv CMD]
 *     [--repeat N] [--against DIR]
 * ```
 * Writes `out/bench-qemu.json` and prints a table. Needs root (netns).
 * `--repeat N` runs the whole list of modes N times, interleaved, and the
 * table shows each mode's medians (every run is in the JSON). `--against DIR`
 * adds the two tunnel modes run by another checkout's tunnel (e.g. a `git
 * worktree` of an older commit), so a tunnel change is measured side by side.
 *
 * @module
 */

import Table from "cli-table3";
import { policy } from "../dsl/policy.ts";
import { when } from "../dsl/conditions.ts";
import { MiB } from "../dsl/units.ts";
import { migrateQemu } from "../engine/qemu/policy_driver.ts";
import type { QmpMigrationParameters } from "../engine/qemu/qmp.ts";
import { linkCounters, netDown, netUp } from "./lab/netns.ts";
import { startPair } from "./lab/qemu_pair.ts";
import { buildLab, labUnavailable, qemuPid } from "./lab/qemu_guest.ts";
import { median } from "./_median.ts";

interface Mode {
  readonly name: string;
  readonly capabilities?: Record<string, boolean>;
  readonly parameters?: QmpMigrationParameters;
  /** Both sides need these before listening (multifd). */
  readonly both?: boolean;
  /** exec: tunnel commands, `{dst}` replaced by the destination address. */
  readonly tunnel?: { send: string; recv: string };
}

/** One row of the bench. */
export interface BenchRow {
  readonly mode: string;
  readonly status: string;
  readonly dataIntact: boolean;
  readonly checker: string;
  readonly totalTimeMs: number;
  readonly downtimeMs: number;
  readonly rounds: number;
  readonly qemuTransferred: number;
  readonly linkBytes: number;
  readonly sourceCpuSeconds: number;
  readonly error: string | null;
}

function arg(name: string, dflt: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : dflt;
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

async function main(): Promise<number> {
  const why = await labUnavailable();
  if (why) {
    console.error(`Cannot run the QEMU bench: ${why}`);
    return 2;
  }
  const memMiB = Number(arg("mem", "1024"));
  const rate = arg("rate", "1gbit");
  const warmupS = Number(arg("warmup", "5"));
  const churn = Number(arg("churn", "4"));
  const root = new URL("..", import.meta.url).pathname;
  const tunnelPath = `${root}engine/qemu/tunnel_main.ts`;
  const haveTunnel = await exists(tunnelPath);
  const deno = Deno.execPath();
  const sendT = arg(
    "tunnel-send",
    `${deno} run -A ${tunnelPath} send --to {dst}:4445 --codecs {codecs}`,
  );
  const recvT = arg(
    "tunnel-recv",
    `${deno} run -A ${tunnelPath} receive --listen {dst}:4445`,
  );
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
  ];
  if (haveTunnel) {
    for (
      const [name, codecs] of [
        ["hakobu-zero-raw", "zero,raw"],
        ["hakobu-zero-dedup-lz4", "zero,dedup,lz4"],
      ]
    ) {
      const fill = (t: string) =>
        t.replaceAll("{dst}", "10.77.0.2").replaceAll("{codecs}", codecs);
      modes.push({ name, tunnel: { send: fill(sendT), recv: fill(recvT) } });
    }
    const against = arg("against", "");
    if (against) {
      const main = `${against.replace(/\/$/, "")}/engine/qemu/tunnel_main.ts`;
      if (!(await exists(main))) {
        console.error(
          `--against ${against}: no ${main}, so not a hakobu checkout`,
        );
        return 2;
      }
      for (const m of modes.filter((m) => m.tunnel)) {
        const swap = (t: string) => t.replaceAll(tunnelPath, main);
        modes.push({
          name: `against-${m.name}`,
          tunnel: { send: swap(m.tunnel!.send), recv: swap(m.tunnel!.recv) },
        });
      }
    }
  } else {
    console.error(
      `note: ${tunnelPath} not found; hakobu tunnel modes skipped`,
    );
  }
  const only = arg("modes", "");
  const selected = only
    ? modes.filter((m) => only.split(",").some((o) => m.name.endsWith(o)))
    : modes;

  const img = await buildLab("memcached", { log: console.error });
  console.error(
    `lab image: ${img.built ? `built in ${img.buildMs} ms` : "cached"}`,
  );
  await netUp({ rate });
  const fixedRounds = Number(arg("rounds", "0"));
  const plan = policy("bench")
    .switchover(
      fixedRounds > 0
        ? when.rounds(fixedRounds)
        : when.any(when.remainingBelow(MiB(32)), when.rounds(10)),
    )
    .compile();
  const repeat = Number(arg("repeat", "1"));
  if (!Number.isInteger(repeat) || repeat < 1) {
    console.error(
      `--repeat takes a positive integer, got "${arg("repeat", "")}"`,
    );
    return 2;
  }
  const rows: BenchRow[] = [];
  try {
    for (const mode of Array.from({ length: repeat }, () => selected).flat()) {
      console.error(`--- ${mode.name}`);
      const pair = await startPair({
        app: "memcached",
        memMiB,
        netns: true,
        churnMiB: churn,
        warmupS,
        capabilities: mode.both ? mode.capabilities : undefined,
        destinationParameters: mode.both ? mode.parameters : undefined,
        incomingUri: mode.tunnel ? `exec:${mode.tunnel.recv}` : undefined,
      });
      try {
        const pid = await qemuPid(pair.source.qmpPath);
        const before = await linkCounters("src");
        const report = await migrateQemu({
          plan,
          source: pair.src,
          destination: pair.dst,
          uri: mode.tunnel ? `exec:${mode.tunnel.send}` : pair.uri,
          capabilities: mode.capabilities,
          parameters: mode.parameters,
          sourcePids: pid ? [pid] : [],
          vm: `lab memcached ${memMiB} MiB`,
          timeoutMs: 300_000,
        });
        const after = await linkCounters("src");
        const checker = report.status === "completed"
          ? await pair.destination.check()
          : "not migrated";
        const row: BenchRow = {
          mode: mode.name,
          status: report.status,
          dataIntact: checker.startsWith("ok"),
          checker,
          totalTimeMs: report.totalTimeMs,
          downtimeMs: report.downtimeMs,
          rounds: report.rounds.length,
          qemuTransferred: report.wireBytes,
          linkBytes: after.txBytes - before.txBytes,
          sourceCpuSeconds: report.sourceCpuSeconds,
          error: report.error,
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      } finally {
        await pair.close();
      }
    }
  } finally {
    await netDown();
  }
  const result = {
    date: new Date().toISOString(),
    guest:
      `memcached under load, ${memMiB} MiB, TCG 1 vCPU, churn ${churn} MiB/s`,
    link: `veth hkb-src <-> hkb-dst, tc tbf ${rate}`,
    policy: fixedRounds > 0
      ? `switchover after ${fixedRounds} rounds; unpaced`
      : "switchover when remaining < 32 MiB or 10 rounds; unpaced",
    rows,
  };
  await Deno.mkdir(`${root}out`, { recursive: true });
  const outPath = arg("out", `${root}out/bench-qemu.json`);
  await Deno.writeTextFile(
    outPath,
    JSON.stringify(result, null, 2) + "\n",
  );
  const t = new Table({
    head: [
      "mode",
      "status",
      "data",
      "total s",
      "downtime ms",
      "rounds",
      "link MiB",
      "src CPU s",
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
      (median(rs.map((r) => r.totalTimeMs)) / 1000).toFixed(2),
      median(rs.map((r) => r.downtimeMs)),
      median(rs.map((r) => r.rounds)),
      (median(rs.map((r) => r.linkBytes)) / 2 ** 20).toFixed(1),
      median(rs.map((r) => r.sourceCpuSeconds)).toFixed(2),
    ]);
  }
  if (repeat > 1) console.log(`medians of ${repeat} runs per mode`);
  console.log(`${result.guest}; ${result.link}`);
  console.log(t.toString());
  console.log(`written to ${outPath}`);
  return rows.every((r) => r.dataIntact) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
