/**
 * Two "hosts" on one machine: network namespaces `hkb-src` and `hkb-dst`
 * joined by a veth pair (10.77.0.1/24 ↔ 10.77.0.2/24), shaped with `tc`
 * (a token bucket at a chosen rate, optional `netem` delay) so a migration
 * crosses a link of known speed. Traffic between the two stays inside these
 * namespaces: neither has a route out, and the host's interfaces are not
 * touched. Needs root (CAP_NET_ADMIN).
 *
 * ```sh
 * deno run -A scripts/lab/netns.ts up --rate 1gbit --delay 1ms
 * deno run -A scripts/lab/netns.ts stats
 * deno run -A scripts/lab/netns.ts down
 * ```
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { cliProgram, runCli } from "../_cli/program.ts";
import { sh } from "./_sh.ts";

/** Names and addresses of the lab link. */
export const LAB_NET = Object.freeze({
  src: "hkb-src",
  dst: "hkb-dst",
  srcIf: "hkb-veth-s",
  dstIf: "hkb-veth-d",
  srcAddr: "10.77.0.1",
  dstAddr: "10.77.0.2",
  prefix: 24,
});

/** Options of {@link netUp}. */
export interface NetOptions {
  /** tc rate, e.g. `"1gbit"`, `"100mbit"` (default `"1gbit"`); `null` for an unshaped link. */
  readonly rate?: string | null;
  /** One-way delay added with netem on both ends, e.g. `"1ms"` (default none). */
  readonly delay?: string | null;
}

/** Byte and packet counters of one veth end. */
export interface LinkCounters {
  readonly txBytes: number;
  readonly rxBytes: number;
  readonly txPackets: number;
  readonly rxPackets: number;
}

/** The argv prefix that runs a command inside namespace `ns`. */
export function inNetns(ns: string, argv: readonly string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/** True when both lab namespaces exist. */
export async function netExists(): Promise<boolean> {
  const list = await sh(["ip", "netns", "list"], { allowFail: true });
  const names = list.split("\n").map((l) => l.split(" ")[0]);
  return names.includes(LAB_NET.src) && names.includes(LAB_NET.dst);
}

/**
 * Creates (or recreates) the two namespaces, the veth pair and the shaping.
 *
 * @example
 * ```ts
 * import { netDown, netUp } from "./netns.ts";
 *
 * // Needs root (CAP_NET_ADMIN) and changes the host's namespaces: the doc
 * // tests type-check this function and do not call it.
 * async function withLabLink(run: () => Promise<void>) {
 *   await netUp({ rate: "1gbit" });
 *   try {
 *     await run();
 *   } finally {
 *     await netDown();
 *   }
 * }
 * ```
 */
export async function netUp(options: NetOptions = {}): Promise<void> {
  await netDown();
  const n = LAB_NET;
  const rate = options.rate === undefined ? "1gbit" : options.rate;
  await sh(["ip", "netns", "add", n.src]);
  await sh(["ip", "netns", "add", n.dst]);
  await sh([
    "ip",
    "link",
    "add",
    n.srcIf,
    "netns",
    n.src,
    "type",
    "veth",
    "peer",
    "name",
    n.dstIf,
    "netns",
    n.dst,
  ]);
  for (
    const [ns, dev, addr] of [
      [n.src, n.srcIf, n.srcAddr],
      [n.dst, n.dstIf, n.dstAddr],
    ] as const
  ) {
    await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await sh([
      "ip",
      "-n",
      ns,
      "addr",
      "add",
      `${addr}/${n.prefix}`,
      "dev",
      dev,
    ]);
    await sh(["ip", "-n", ns, "link", "set", dev, "up"]);
    await shape(ns, dev, rate, options.delay ?? null);
  }
}

async function shape(
  ns: string,
  dev: string,
  rate: string | null,
  delay: string | null,
): Promise<void> {
  const base = [
    "ip",
    "netns",
    "exec",
    ns,
    "tc",
    "qdisc",
    "replace",
    "dev",
    dev,
  ];
  if (delay && rate) {
    await sh([...base, "root", "handle", "1:", "netem", "delay", delay]);
    await sh([
      ...base,
      "parent",
      "1:1",
      "handle",
      "10:",
      ...tbfArgs(rate),
    ]);
  } else if (delay) {
    await sh([...base, "root", "netem", "delay", delay]);
  } else if (rate) {
    await sh([...base, "root", ...tbfArgs(rate)]);
  }
}

function tbfArgs(rate: string): string[] {
  // burst: about 1 ms at the rate, never under 64 KiB (tbf needs burst >= rate/HZ)
  const bits = parseRate(rate);
  const burst = Math.max(64 * 1024, Math.ceil(bits / 8 / 1000));
  return ["tbf", "rate", rate, "burst", String(burst), "latency", "50ms"];
}

/**
 * Bits per second of a tc rate like `"1gbit"`, `"100mbit"`, `"500kbit"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRate } from "./netns.ts";
 *
 * assert.equal(parseRate("1gbit"), 1e9); // bits per second
 * assert.equal(parseRate("500kbit"), 5e5);
 * assert.throws(() => parseRate("1 Gbps"), /expected a number and kbit/);
 * ```
 */
export function parseRate(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)?bit$/i.exec(rate.trim());
  if (!m) {
    throw new Error(
      `Cannot parse rate "${rate}": expected a number and kbit, mbit or gbit, e.g. 1gbit`,
    );
  }
  const mult = { k: 1e3, m: 1e6, g: 1e9 }[
    (m[2] ?? "").toLowerCase() as "k" | "m" | "g"
  ] ?? 1;
  return Number(m[1]) * mult;
}

/** Deletes both namespaces (and with them the veth pair); quiet when absent. */
export async function netDown(): Promise<void> {
  await sh(["ip", "netns", "del", LAB_NET.src], { allowFail: true });
  await sh(["ip", "netns", "del", LAB_NET.dst], { allowFail: true });
}

/** Counters of the source (`"src"`) or destination (`"dst"`) veth end. */
export async function linkCounters(side: "src" | "dst"): Promise<LinkCounters> {
  const ns = side === "src" ? LAB_NET.src : LAB_NET.dst;
  const dev = side === "src" ? LAB_NET.srcIf : LAB_NET.dstIf;
  const text = await sh([
    "ip",
    "-n",
    ns,
    "-s",
    "-j",
    "link",
    "show",
    "dev",
    dev,
  ]);
  const [info] = JSON.parse(text) as {
    stats64: {
      tx: { bytes: number; packets: number };
      rx: { bytes: number; packets: number };
    };
  }[];
  return {
    txBytes: info.stats64.tx.bytes,
    rxBytes: info.stats64.rx.bytes,
    txPackets: info.stats64.tx.packets,
    rxPackets: info.stats64.rx.packets,
  };
}

/** Takes the link down (`"down"`) or up again, to cut a migration mid-way. */
export async function setLink(state: "up" | "down"): Promise<void> {
  await sh(["ip", "-n", LAB_NET.src, "link", "set", LAB_NET.srcIf, state]);
}

/** The command line: `up`, `down`, `stats`; `--help` lists the flags. */
function command(): Command {
  const program = cliProgram("netns.ts", { usageExitCode: 2 }).description(
    `The lab link: namespaces ${LAB_NET.src} and ${LAB_NET.dst} joined by a shaped veth pair (needs root).`,
  );
  program.command("up")
    .description("create the namespaces and the link (again, if they exist)")
    .option(
      "--rate <rate>",
      'tc rate of the link, e.g. 1gbit, or "none" for no shaping',
      "1gbit",
    )
    .option("--delay <delay>", "netem delay each way, e.g. 1ms")
    .action(async (o) => {
      await netUp({
        rate: o.rate === "none" ? null : o.rate,
        delay: o.delay ?? null,
      });
      console.log(
        `${LAB_NET.src} (${LAB_NET.srcAddr}) <-> ${LAB_NET.dst} (${LAB_NET.dstAddr}) up, rate ${o.rate}${
          o.delay ? `, delay ${o.delay}` : ""
        }`,
      );
    });
  program.command("down")
    .description("remove the namespaces")
    .action(async () => {
      await netDown();
      console.log("lab namespaces removed");
    });
  program.command("stats")
    .description("the link's byte and packet counters on each side, as JSON")
    .action(async () => {
      console.log(JSON.stringify({
        src: await linkCounters("src"),
        dst: await linkCounters("dst"),
      }));
    });
  return program;
}

if (import.meta.main) Deno.exit(await runCli(command, Deno.args));
