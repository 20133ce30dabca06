/**
 * What authentication and encryption cost: the same migrations over plain
 * TCP and over TLS (client certificate; pre-shared key), side by side in one
 * run, plus the channel alone.
 *
 * ```sh
 * deno run -A scripts/bench_secure.ts [--runs 3] [--mem 1GiB] [--channel-mem 512MiB] [--only channels] [--out out/bench-secure.json]
 * ```
 *
 * - **Link**: `--bytes` (default 1 GiB) written in 1 MiB chunks through a
 *   loopback connection in this process, plain and TLS, to a reader that
 *   drains them: the channel's throughput with nothing else to do.
 * - **Migrations**: `hakobu receive --once --json` in a second process and
 *   `hakobu migrate` in a third, exactly as a user runs them, for two guests:
 *   `memcached` under the default policy (zero, raw; 1 Gbit/s link: mostly
 *   zero pages) and `random` (incompressible: every byte is encrypted) on an
 *   unpaced link. Total time and downtime are the source's report; every
 *   migration must verify on both sides.
 * - **Channels**: `random` (incompressible) on an unpaced link with 1 and 2
 *   channels, plain and TLS (client certificate), every channel inside one
 *   connection (written and encrypted by the main thread) or on a
 *   connection of its own (`--channel-connections`: each channel's Worker
 *   writes and encrypts it, and a Worker of the receiver's decrypts it).
 *   The figure is round 0's aggregate rate (every page once, wire bytes /
 *   the round's time, all channels together), as the source reports it;
 *   `--channel-mem` sets the guest size. `--only channels` runs these rows
 *   alone.
 * - Each run measures every mode, in a rotated order; figures are medians,
 *   and **ratio** is the median over runs of (mode / plain) in the same run.
 *
 * @module
 */

import { Command } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { parseSize } from "../dsl/units.ts";
import {
  connectChannel,
  type ConnectSecurity,
  connectSecurityFromDir,
  INSECURE_PLAIN,
  listenChannel,
  type ListenSecurity,
  listenSecurityFromDir,
} from "../engine/transport/secure/mod.ts";
import { generateCredentials } from "../engine/transport/secure/generate.ts";
import { median } from "./_median.ts";
import { ReceiverProcess } from "./_receiver_process.ts";
import type { LinkWorkerRequest } from "./_bench_link_worker.ts";

const cli = new Command("bench_secure")
  .option("--runs <n>", "runs (each measures every mode)", "3")
  .option("--mem <size>", "guest memory of each migration", "1GiB")
  .option("--bytes <size>", "bytes through the link alone", "1GiB")
  .option(
    "--channel-mem <size>",
    "guest memory of each channels row's migration",
    "512MiB",
  )
  .option("--only <rows>", 'run only these rows: "channels"')
  .option("--out <file>", "JSON results", "out/bench-secure.json")
  .parse(Deno.args, { from: "user" })
  .opts();
const runs = Number(cli.runs);
if (!Number.isInteger(runs) || runs < 1) {
  throw new Error(`--runs: expected a positive integer, got "${cli.runs}"`);
}
const memBytes = parseSize(cli.mem);
const channelMemBytes = parseSize(cli.channelMem);
if (cli.only !== undefined && cli.only !== "channels") {
  throw new Error(`--only: expected "channels", got "${cli.only}"`);
}
const onlyChannels = cli.only === "channels";
const linkBytes = parseSize(cli.bytes);
const HAKOBU = new URL("./hakobu.ts", import.meta.url).pathname;

const dir = await Deno.makeTempDir({ prefix: "hakobu-bench-tls-" });
await generateCredentials(dir, { sourceIdentity: "bench" });
const pskDir = `${dir}/psk`;
await Deno.mkdir(pskDir);
for (const f of ["ca-cert.pem", "keys.psk"]) {
  await Deno.copyFile(`${dir}/${f}`, `${pskDir}/${f}`);
}

type Mode = "plain" | "tls-cert" | "tls-psk";
const MODES: Mode[] = ["plain", "tls-cert", "tls-psk"];
const listenFlags = (m: Mode) =>
  m === "plain" ? ["--insecure-plain"] : ["--tls-dir", dir];
const connectFlags = (m: Mode) =>
  m === "plain"
    ? ["--insecure-plain"]
    : ["--tls-dir", m === "tls-cert" ? dir : pskDir];

async function linkOnce(mode: Mode): Promise<number> {
  const listen: ListenSecurity = mode === "plain"
    ? INSECURE_PLAIN
    : await listenSecurityFromDir(dir);
  const connect: ConnectSecurity = mode === "plain"
    ? INSECURE_PLAIN
    : await connectSecurityFromDir(mode === "tls-cert" ? dir : pskDir);
  const listener = await listenChannel(
    { hostname: "127.0.0.1", port: 0 },
    listen,
  );
  const chunk = new Uint8Array(1 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const [server, client] = await Promise.all([
    listener.accept(),
    connectChannel(
      { hostname: "127.0.0.1", port: listener.addr.port },
      connect,
    ),
  ]);
  const t0 = performance.now();
  const drained = (async () => {
    let n = 0;
    for await (const c of server.readable) n += c.length;
    return n;
  })();
  const w = client.writable.getWriter();
  for (let sent = 0; sent < linkBytes; sent += chunk.length) {
    await w.write(chunk);
  }
  await w.close();
  const n = await drained;
  const ms = performance.now() - t0;
  server.close();
  client.close();
  listener.close();
  if (n < linkBytes) {
    throw new Error(`link ${mode}: ${n} of ${linkBytes} bytes arrived`);
  }
  return linkBytes / 1e6 / (ms / 1000);
}

/** One connection's end as a Worker reports it (`_bench_link_worker.ts`). */
interface EndRun {
  bytes: number;
  ms: number;
  cpuMs: number;
}

/**
 * `k` connections at once, each end in a Worker of its own (as per-channel
 * connections run): the aggregate MB/s, and MB per CPU-second of the
 * busiest writer and reader threads (the cost of one connection's
 * encryption or decryption on one core, whatever else loads the machine).
 */
async function connectionsOnce(
  mode: "plain" | "tls-cert",
  k: number,
): Promise<{ mbps: number; writeMBperCpuS: number; readMBperCpuS: number }> {
  const listen: ListenSecurity = mode === "plain"
    ? INSECURE_PLAIN
    : await listenSecurityFromDir(dir);
  const connect: ConnectSecurity = mode === "plain"
    ? INSECURE_PLAIN
    : await connectSecurityFromDir(dir);
  const url = new URL("./_bench_link_worker.ts", import.meta.url);
  const workers: Worker[] = [];
  const start = (req: LinkWorkerRequest) => {
    const w = new Worker(url, { type: "module" });
    workers.push(w);
    const replies: unknown[] = [];
    let wake: (() => void) | null = null;
    w.onmessage = (e) => {
      replies.push(e.data);
      wake?.();
    };
    w.postMessage(req);
    return async <T>(): Promise<T> => {
      while (replies.length === 0) await new Promise<void>((r) => wake = r);
      return replies.shift() as T;
    };
  };
  try {
    const readers = Array.from(
      { length: k },
      () => start({ role: "reader", security: listen }),
    );
    const ports = await Promise.all(
      readers.map(async (next) => (await next<{ port: number }>()).port),
    );
    const t0 = performance.now();
    const writers = ports.map((port) =>
      start({ role: "writer", security: connect, port, bytes: linkBytes })
    );
    const [w, r] = await Promise.all([
      Promise.all(writers.map((next) => next<EndRun>())),
      Promise.all(readers.map((next) => next<EndRun>())),
    ]);
    const ms = performance.now() - t0;
    if (r.some((x) => x.bytes < linkBytes)) {
      throw new Error(`connections ${mode} x${k}: bytes went missing`);
    }
    const perCpu = (ends: EndRun[]) =>
      Math.min(...ends.map((x) => x.bytes / 1e6 / (x.cpuMs / 1000)));
    return {
      mbps: (k * linkBytes) / 1e6 / (ms / 1000),
      writeMBperCpuS: perCpu(w),
      readMBperCpuS: perCpu(r),
    };
  } finally {
    for (const w of workers) w.terminate();
  }
}

interface MigrationRun {
  totalMs: number;
  downtimeMs: number;
  wireBytes: number;
}

async function migrationOnce(
  mode: Mode,
  workload: string,
  bandwidth: string,
  extra: { channels?: number; channelConnections?: boolean; mem?: number } = {},
): Promise<MigrationRun & { round0MBps: number; perChannel: boolean }> {
  await using receiver = await ReceiverProcess.start([
    "--once",
    ...listenFlags(mode),
  ]);
  const mig = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      HAKOBU,
      "migrate",
      "--from",
      `sim:${workload}`,
      "--mem",
      String(extra.mem ?? memBytes),
      ...(extra.channels ? ["--channels", String(extra.channels)] : []),
      ...(extra.channelConnections ? ["--channel-connections"] : []),
      "--to",
      `127.0.0.1:${receiver.port}`,
      "--bandwidth",
      bandwidth,
      "--quiet",
      "--json",
      ...connectFlags(mode),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(mig.stdout);
  if (!mig.success) {
    throw new Error(
      `${mode} ${workload}: migrate failed: ${
        new TextDecoder().decode(mig.stderr)
      }`,
    );
  }
  const verdict = JSON.parse((await receiver.verdict()).line || "{}");
  const report = JSON.parse(stdout);
  if (
    !report.verified || !verdict.verified || verdict.digest !== report.digest
  ) {
    throw new Error(`${mode} ${workload}: did not verify on both sides`);
  }
  if (extra.channelConnections && report.channelConnections !== true) {
    throw new Error(
      `${mode} ${workload}: the receiver did not grant channel connections`,
    );
  }
  const r0 = report.rounds[0];
  return {
    totalMs: report.totalTimeMs,
    downtimeMs: report.downtimeMs,
    wireBytes: report.wireBytes,
    round0MBps: r0.wireBytes / 1e6 / (r0.durationMs / 1000),
    perChannel: report.channelConnections === true,
  };
}

/** The channels rows: 1 and 2 channels, one connection or one each, plain and TLS. */
const CHANNEL_ROWS = [1, 2].flatMap((channels) =>
  [false, true].flatMap((own) =>
    (["plain", "tls-cert"] as const).map((mode) => ({
      name: `${channels} channel${channels > 1 ? "s" : ""}, ${
        own ? "a connection each" : "one connection"
      }`,
      key: `${channels}:${own ? "own" : "one"}:${mode}`,
      channels,
      own,
      mode,
    }))
  )
);
const chan: Record<string, number[]> = {};
for (const row of CHANNEL_ROWS) chan[row.key] = [];

const CASES = [
  { name: "memcached, 1 Gbit/s", workload: "memcached", bandwidth: "1Gbit" },
  { name: "random, unpaced", workload: "random", bandwidth: "unlimited" },
];
const link: Record<Mode, number[]> = {
  plain: [],
  "tls-cert": [],
  "tls-psk": [],
};
const mig: Record<string, Record<Mode, MigrationRun[]>> = {};
for (const c of CASES) {
  mig[c.name] = { plain: [], "tls-cert": [], "tls-psk": [] };
}

const loads: number[] = [];
const CONN_ROWS = [1, 2].flatMap((k) =>
  (["plain", "tls-cert"] as const).map((mode) => ({
    k,
    mode,
    key: `${k}:${mode}`,
  }))
);
const conns: Record<
  string,
  { mbps: number; writeMBperCpuS: number; readMBperCpuS: number }[]
> = {};
for (const row of CONN_ROWS) conns[row.key] = [];
for (let r = 0; r < runs; r++) {
  for (const row of CONN_ROWS) {
    loads.push(Deno.loadavg()[0]);
    conns[row.key].push(await connectionsOnce(row.mode, row.k));
  }
  const order = MODES.map((_, i) => MODES[(i + r) % MODES.length]);
  if (!onlyChannels) {
    for (const m of order) link[m].push(await linkOnce(m));
    for (const c of CASES) {
      for (const m of order) {
        mig[c.name][m].push(await migrationOnce(m, c.workload, c.bandwidth));
      }
    }
  }
  const rows = CHANNEL_ROWS.map((_, i) =>
    CHANNEL_ROWS[(i + r) % CHANNEL_ROWS.length]
  );
  for (const row of rows) {
    loads.push(Deno.loadavg()[0]);
    const run = await migrationOnce(row.mode, "random", "unlimited", {
      channels: row.channels,
      channelConnections: row.own,
      mem: channelMemBytes,
    });
    chan[row.key].push(run.round0MBps);
  }
  console.error(`run ${r + 1}/${runs} done`);
}
await Deno.remove(dir, { recursive: true });

const ratio = (xs: number[], base: number[]) =>
  median(xs.map((x, i) => x / base[i]));
const table = new Table({ head: ["what", "mode", "median", "ratio to plain"] });
if (!onlyChannels) {
  for (const m of MODES) {
    table.push([
      "link alone, MB/s",
      m,
      median(link[m]).toFixed(0),
      ratio(link[m], link.plain).toFixed(2) + "x",
    ]);
  }
  for (const c of CASES) {
    for (const m of MODES) {
      const runsOf = mig[c.name][m];
      const base = mig[c.name].plain;
      table.push([
        `${c.name}: total / downtime ms`,
        m,
        `${median(runsOf.map((x) => x.totalMs)).toFixed(0)} / ${
          median(runsOf.map((x) => x.downtimeMs)).toFixed(0)
        }`,
        `${
          ratio(runsOf.map((x) => x.totalMs), base.map((x) => x.totalMs))
            .toFixed(
              2,
            )
        }x / ${
          ratio(runsOf.map((x) => x.downtimeMs), base.map((x) => x.downtimeMs))
            .toFixed(2)
        }x`,
      ]);
    }
  }
}
if (!onlyChannels) {
  console.log(
    `guest memory ${cli.mem}, ${runs} runs, medians; every migration verified on both sides`,
  );
  console.log(table.toString());
}
const connsTable = new Table({
  head: [
    "connections alone, a Worker per end",
    "aggregate MB/s",
    "x 1 connection",
    "MB per CPU-second: writer / reader thread",
  ],
});
for (const row of CONN_ROWS) {
  const xs = conns[row.key];
  connsTable.push([
    `${row.k} ${row.mode} connection${row.k > 1 ? "s" : ""}`,
    median(xs.map((x) => x.mbps)).toFixed(0),
    ratio(xs.map((x) => x.mbps), conns[`1:${row.mode}`].map((x) => x.mbps))
      .toFixed(2) + "x",
    `${median(xs.map((x) => x.writeMBperCpuS)).toFixed(0)} / ${
      median(xs.map((x) => x.readMBperCpuS)).toFixed(0)
    }`,
  ]);
}
const tlsOne = conns["1:tls-cert"];
const encCost = 1 / median(tlsOne.map((x) => x.writeMBperCpuS));
const decCost = 1 / median(tlsOne.map((x) => x.readMBperCpuS));
const channelsTable = new Table({
  head: ["random, unpaced: round 0 MB/s", "plain", "tls-cert", "tls / plain"],
});
for (const row of CHANNEL_ROWS.filter((r) => r.mode === "plain")) {
  const plain = chan[row.key];
  const tls = chan[row.key.replace(":plain", ":tls-cert")];
  channelsTable.push([
    row.name,
    median(plain).toFixed(0),
    median(tls).toFixed(0),
    ratio(tls, plain).toFixed(2) + "x",
  ]);
}
const scaling = (own: boolean, mode: string) =>
  ratio(
    chan[`2:${own ? "own" : "one"}:${mode}`],
    chan[`1:${own ? "own" : "one"}:${mode}`],
  );
console.log(
  `channels rows: guest memory ${cli.channelMem} (random), ${runs} runs, medians, ${navigator.hardwareConcurrency} cores, load average at each start ${
    median(loads).toFixed(1)
  } (median, ${Math.min(...loads).toFixed(1)}-${
    Math.max(...loads).toFixed(1)
  }); every migration verified on both sides`,
);
console.log(connsTable.toString());
console.log(
  `by the TLS writer's and reader's thread CPU: 1.25 GB/s (10 Gbit/s) of TLS needs ${
    (1250 * encCost).toFixed(1)
  } cores encrypting and ${
    (1250 * decCost).toFixed(1)
  } decrypting (the link alone; encoding and decoding pages come on top)`,
);
console.log(channelsTable.toString());
console.log(
  `1 -> 2 channels: ${
    scaling(false, "tls-cert").toFixed(2)
  }x over one TLS connection, ${
    scaling(true, "tls-cert").toFixed(2)
  }x with a TLS connection each (plain: ${
    scaling(false, "plain").toFixed(2)
  }x, ${scaling(true, "plain").toFixed(2)}x)`,
);
await Deno.mkdir(new URL("../out/", import.meta.url), { recursive: true })
  .catch(() => {});
await Deno.writeTextFile(
  cli.out,
  JSON.stringify(
    {
      runs,
      memBytes,
      linkBytes,
      link,
      migrations: mig,
      channelMemBytes,
      channelsRound0MBps: chan,
      connections: conns,
      loadAverages: loads,
    },
    null,
    2,
  ) + "\n",
);
console.log(`results written to ${cli.out}`);
