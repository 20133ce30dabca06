/**
 * The QEMU tunnel's own cost, without guests competing for the CPU: replays a
 * captured QEMU migration stream (a 1 GiB memcached lab guest under load,
 * captured once with `migrate "exec:cat > FILE"` and cached) through
 * `tunnel_main.ts send` → loopback → `tunnel_main.ts receive`, side by side
 * with a plain Deno copy of the same bytes through the same two-process,
 * stdin → TCP → stdout shape. Every tunnel run must end `verified`.
 *
 * ```sh
 * deno run -A scripts/bench_tunnel.ts [--runs 3] [--chains zero;zero,lz4;zero,dedup,lz4]
 *     [--mem 1024] [--stream FILE] [--out out/bench-tunnel.json] [--against DIR]
 * ```
 * `--against DIR` adds the same chains run by another checkout's tunnel
 * (e.g. `git worktree add /tmp/old HEAD~1`), interleaved in the same run, so
 * a change to the tunnel is measured side by side.
 * Prints a table of medians and writes the JSON. Capturing needs the QEMU lab
 * (scripts/lab/qemu_guest.ts); `--stream FILE` replays any captured stream.
 *
 * @module
 */

import { parseArgs } from "node:util";
import Table from "cli-table3";
import { QmpClient } from "../engine/qemu/qmp.ts";
import {
  buildLab,
  freePort,
  labDir,
  labUnavailable,
  startGuest,
} from "./lab/qemu_guest.ts";
import { median } from "./_median.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TUNNEL = `${ROOT}engine/qemu/tunnel_main.ts`;
const DENO = Deno.execPath();

/** The plain-copy pair: same process shape as the tunnel, no parsing. */
const COPY_RECV = `
const [host, port] = Deno.args[0].split(":");
const l = Deno.listen({ hostname: host, port: Number(port) });
const c = await l.accept(); l.close();
const t0 = performance.now();
await c.readable.pipeTo(Deno.stdout.writable);
console.error(JSON.stringify({ ok: true, durationMs: performance.now() - t0 }));
`;
const COPY_SEND = `
const [host, port] = Deno.args[0].split(":");
let c;
for (let i = 0; ; i++) {
  try { c = await Deno.connect({ hostname: host, port: Number(port) }); break; }
  catch (e) { if (i > 200) throw e; await new Promise((r) => setTimeout(r, 50)); }
}
const t0 = performance.now();
let n = 0;
await Deno.stdin.readable.pipeThrough(new TransformStream({
  transform(chunk, ctl) { n += chunk.length; ctl.enqueue(chunk); },
})).pipeTo(c.writable);
console.error(JSON.stringify({ ok: true, streamBytes: n, wireBytes: n, durationMs: performance.now() - t0 }));
`;

/** One mode of the bench: a name and the two command lines. */
interface Mode {
  readonly name: string;
  readonly recv: (addr: string) => string[];
  readonly send: (addr: string) => string[];
}

/** One replay's measurements. */
interface Run {
  readonly wallMs: number;
  readonly sendMs: number;
  readonly recvMs: number;
  readonly wireBytes: number;
  readonly verified: boolean | null;
}

function lastJson(text: string): Record<string, unknown> {
  const line = text.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  if (!line) throw new Error(`No JSON stats line in: ${text.slice(-500)}`);
  return JSON.parse(line);
}

/** Replays `stream` once through `mode`'s receiver and sender. */
async function replay(mode: Mode, stream: string): Promise<Run> {
  const addr = `127.0.0.1:${freePort()}`;
  const recv = new Deno.Command(DENO, {
    args: mode.recv(addr),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const input = await Deno.open(stream);
  const t0 = performance.now();
  const send = new Deno.Command(DENO, {
    args: mode.send(addr),
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const fed = input.readable.pipeTo(send.stdin);
  const [s, r] = await Promise.all([send.output(), recv.output(), fed]);
  const wallMs = performance.now() - t0;
  const dec = new TextDecoder();
  if (!s.success || !r.success) {
    throw new Error(
      `${mode.name} failed: send ${s.code} ${
        dec.decode(s.stderr)
      }; receive ${r.code} ${dec.decode(r.stderr)}`,
    );
  }
  const ss = lastJson(dec.decode(s.stderr));
  const rs = lastJson(dec.decode(r.stderr));
  return {
    wallMs,
    sendMs: Number(ss.durationMs),
    recvMs: Number(rs.durationMs),
    wireBytes: Number(ss.wireBytes),
    verified: "verified" in rs ? rs.verified === true : null,
  };
}

/** Captures (once) the migration stream of a 1 GiB memcached lab guest. */
async function capturedStream(memMiB: number): Promise<string> {
  const why = await labUnavailable();
  if (why) {
    throw new Error(
      `No --stream given and the QEMU lab cannot capture one: ${why}`,
    );
  }
  const img = await buildLab("memcached", { log: console.error });
  const dir = `${labDir()}/streams`;
  const path = `${dir}/memcached-${img.hash}-${memMiB}m.stream`;
  try {
    if ((await Deno.stat(path)).size > 0) return path;
  } catch { /* not captured yet */ }
  await Deno.mkdir(dir, { recursive: true });
  console.error(`capturing a ${memMiB} MiB memcached guest's stream → ${path}`);
  const guest = await startGuest({
    app: "memcached",
    memMiB,
    churnMiB: 4,
    image: img,
  });
  try {
    const qmp = await QmpClient.connect(guest.qmpPath);
    try {
      await guest.waitReady();
      await new Promise((r) => setTimeout(r, 3000));
      const partial = `${path}.part`;
      await qmp.migrate(`exec:cat > ${partial}`);
      for (;;) {
        const m = await qmp.queryMigrate();
        if (m.status === "completed") break;
        if (m.status === "failed" || m.status === "cancelled") {
          throw new Error(`Capture migration ${m.status}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      await Deno.rename(partial, path);
    } finally {
      qmp.close();
    }
  } finally {
    await guest.kill();
  }
  return path;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      runs: { type: "string", default: "3" },
      chains: { type: "string", default: "zero;zero,lz4;zero,dedup,lz4" },
      mem: { type: "string", default: "1024" },
      stream: { type: "string" },
      out: { type: "string", default: `${ROOT}out/bench-tunnel.json` },
      against: { type: "string" },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`--runs takes a positive integer, got "${values.runs}"`);
    Deno.exit(2);
  }
  const stream = values.stream ?? await capturedStream(Number(values.mem));
  const streamBytes = (await Deno.stat(stream)).size;
  const chains = values.chains.split(";").filter(Boolean);
  const tunnelModes = (label: string, main: string): Mode[] =>
    chains.map((chain) => ({
      name: `${label} ${chain}`,
      recv: (a) => ["run", "-A", main, "receive", "--listen", a],
      send: (a) => ["run", "-A", main, "send", "--to", a, "--codecs", chain],
    }));
  const against = values.against
    ? `${values.against.replace(/\/$/, "")}/engine/qemu/tunnel_main.ts`
    : null;
  if (against && !(await Deno.stat(against).catch(() => null))?.isFile) {
    console.error(
      `--against ${values.against}: no ${against}, so not a hakobu checkout`,
    );
    Deno.exit(2);
  }
  const modes: Mode[] = [
    {
      name: "plain Deno copy",
      recv: (a) => ["eval", COPY_RECV, a],
      send: (a) => ["eval", COPY_SEND, a],
    },
    ...tunnelModes("hakobu tunnel", TUNNEL),
    ...(against ? tunnelModes(`tunnel at ${values.against}`, against) : []),
  ];
  console.error(
    `replaying ${stream} (${
      (streamBytes / 1e6).toFixed(1)
    } MB), ${runs} runs per mode, modes interleaved`,
  );
  const results = new Map<string, Run[]>(modes.map((m) => [m.name, []]));
  for (let i = 0; i < runs; i++) {
    for (const mode of modes) {
      const r = await replay(mode, stream);
      if (r.verified === false) {
        throw new Error(`${mode.name}: the receiver did not verify the stream`);
      }
      results.get(mode.name)!.push(r);
      console.error(
        `run ${i + 1}/${runs} ${mode.name}: wall ${
          r.wallMs.toFixed(0)
        } ms, send ${r.sendMs.toFixed(0)} ms, receive ${
          r.recvMs.toFixed(0)
        } ms, wire ${(r.wireBytes / 1e6).toFixed(1)} MB`,
      );
    }
  }
  const base = median(results.get(modes[0].name)!.map((r) => r.sendMs));
  const rows = modes.map((m) => {
    const rs = results.get(m.name)!;
    const sendMs = median(rs.map((r) => r.sendMs));
    return {
      mode: m.name,
      wallMs: median(rs.map((r) => r.wallMs)),
      sendMs,
      recvMs: median(rs.map((r) => r.recvMs)),
      streamMBps: streamBytes / 1e3 / sendMs,
      wireBytes: median(rs.map((r) => r.wireBytes)),
      vsCopy: sendMs / base,
      verified: rs.every((r) => r.verified !== false),
    };
  });
  const table = new Table({
    head: [
      "mode",
      "wall s",
      "in-process s",
      "stream MB/s",
      "wire MB",
      "x plain copy",
    ],
  });
  for (const r of rows) {
    table.push([
      r.mode,
      (r.wallMs / 1000).toFixed(2),
      (r.sendMs / 1000).toFixed(2),
      r.streamMBps.toFixed(0),
      (r.wireBytes / 1e6).toFixed(1),
      r.vsCopy.toFixed(2),
    ]);
  }
  console.log(table.toString());
  await Deno.mkdir(new URL(".", `file://${values.out}`).pathname, {
    recursive: true,
  });
  await Deno.writeTextFile(
    values.out,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        stream,
        streamBytes,
        runs,
        medians: rows,
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`written to ${values.out}`);
}
