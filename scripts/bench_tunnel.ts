/**
 * The QEMU tunnel's own cost, without guests competing for the CPU: replays a
 * captured QEMU migration stream (a 1 GiB memcached lab guest under load,
 * captured once with `migrate "exec:cat > FILE"` and cached) through
 * `scripts/tunnel.ts qemu send` → loopback → `... receive`, side by side
 * with a plain Deno copy of the same bytes through the same two-process,
 * stdin → TCP → stdout shape. The bench hashes what every receiver writes
 * to its stdout and fails unless it is the captured stream, byte for byte
 * (SHA-256), the plain copy included; every tunnel run must also end with the
 * tunnel's own digest comparison (`verified`). A `zstd -1` row compresses the
 * same stream with the command-line tool, for the bytes a whole-stream
 * compressor reaches and the time one core takes to do it. Each process's
 * CPU time (user + system, from `/usr/bin/time`) is summed per replay: on a
 * machine shared with other work it varies far less than wall time.
 *
 * ```sh
 * deno run -A scripts/bench_tunnel.ts [--runs 3] [--chains zero;zero,lz4;zero,zstd;zero,dedup,lz4]
 *     [--mem 1024] [--stream FILE | --tcg-guest] [--out out/bench-tunnel.json] [--against DIR] [--channels N]
 * ```
 * `--tcg-guest` makes a stream where the lab is not built: a throw-away
 * QEMU (TCG) guest of `--mem` MiB that fills part of its memory with random,
 * text and binary data in tmpfs (`TCG_GUEST_SCRIPT`), captured once with
 * `migrate "exec:cat > FILE"` and cached beside the lab's captures; it needs
 * qemu-system-x86, busybox, cpio and a kernel in /boot.
 * `--against DIR` adds the same chains run by another checkout's tunnel
 * (e.g. `git worktree add /tmp/old HEAD~1`), interleaved in the same run, so
 * a change to the tunnel is measured side by side.
 * Prints a table of medians and writes the JSON. Capturing needs the QEMU lab
 * (scripts/lab/qemu_guest.ts); `--stream FILE` replays any captured stream.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Option } from "@commander-js/extra-typings";
import Table from "cli-table3";
import { QmpClient } from "../engine/qemu/qmp.ts";
import { captureStream } from "../engine/qemu/stream/_capture.ts";
import {
  buildLab,
  freePort,
  labDir,
  labUnavailable,
  startGuest,
} from "./lab/qemu_guest.ts";
import { median } from "./_median.ts";
import { qemuTunnelCommand } from "./_tunnel_command.ts";
import { MAX_CHANNELS } from "../engine/plan.ts";
import { codecChains, integer } from "./_cli/options.ts";
import { cliProgram, parseOrExit } from "./_cli/program.ts";

const ROOT = new URL("../", import.meta.url).pathname;
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

/**
 * The floor (`_bench_floor.ts`): a Deno tunnel that only compresses 1 MiB
 * chunks with `zstd -1` — what the codec and the two hops cost.
 */
const FLOOR = `${ROOT}scripts/_bench_floor.ts`;
const FLOOR_MODE = "floor: Deno, zstd -1 per MiB, no parsing";

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
  /** CPU seconds (user + system) of the sending and the receiving process together; NaN without `/usr/bin/time`. */
  readonly cpuS: number;
  readonly verified: boolean | null;
  /** SHA-256 (hex) of what the receiver wrote to its stdout. */
  readonly outputSha256: string;
}

function lastJson(text: string): Record<string, unknown> {
  const line = text.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  if (!line) throw new Error(`No JSON stats line in: ${text.slice(-500)}`);
  return JSON.parse(line);
}

const TIME = "/usr/bin/time";
const HAS_TIME = (() => {
  try {
    return Deno.statSync(TIME).isFile;
  } catch {
    return false;
  }
})();

/** `cmd args`, under `/usr/bin/time` writing "user system" seconds to `file` when there is one. */
function timedArgs(
  cmd: string,
  args: string[],
  file: string,
): [string, string[]] {
  return HAS_TIME
    ? [TIME, ["-f", "%U %S", "-o", file, cmd, ...args]]
    : [cmd, args];
}

/** User + system seconds `/usr/bin/time` wrote to `file`, or NaN. */
async function cpuSeconds(file: string): Promise<number> {
  const text = await Deno.readTextFile(file).catch(() => "");
  await Deno.remove(file).catch(() => {});
  const m = /(\d+(?:\.\d+)?) (\d+(?:\.\d+)?)\s*$/.exec(text);
  return m ? Number(m[1]) + Number(m[2]) : NaN;
}

/** Replays `stream` once through `mode`'s receiver and sender. */
async function replay(mode: Mode, stream: string): Promise<Run> {
  const addr = `127.0.0.1:${freePort()}`;
  const recvTime = await Deno.makeTempFile({ prefix: "hakobu-cpu-" });
  const sendTime = await Deno.makeTempFile({ prefix: "hakobu-cpu-" });
  const [recvCmd, recvArgs] = timedArgs(DENO, mode.recv(addr), recvTime);
  const [sendCmd, sendArgs] = timedArgs(DENO, mode.send(addr), sendTime);
  const recv = new Deno.Command(recvCmd, {
    args: recvArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Check what comes out, for every mode alike: a copy that drops or
  // changes bytes must fail the bench.
  const hash = createHash("sha256");
  const stderrText = new Response(recv.stderr).text();
  const drained = recv.stdout.pipeTo(
    new WritableStream({ write: (c) => void hash.update(c) }),
  );
  const input = await Deno.open(stream);
  const t0 = performance.now();
  const send = new Deno.Command(sendCmd, {
    args: sendArgs,
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const fed = input.readable.pipeTo(send.stdin);
  const [s, r] = await Promise.all([
    send.output(),
    recv.status,
    fed,
    drained,
  ]);
  const wallMs = performance.now() - t0;
  const recvErr = await stderrText;
  const dec = new TextDecoder();
  if (!s.success || !r.success) {
    throw new Error(
      `${mode.name} failed: send ${s.code} ${
        dec.decode(s.stderr)
      }; receive ${r.code} ${recvErr}`,
    );
  }
  const ss = lastJson(dec.decode(s.stderr));
  const rs = lastJson(recvErr);
  return {
    wallMs,
    sendMs: Number(ss.durationMs),
    recvMs: Number(rs.durationMs),
    wireBytes: Number(ss.wireBytes),
    cpuS: (await cpuSeconds(sendTime)) + (await cpuSeconds(recvTime)),
    verified: "verified" in rs ? rs.verified === true : null,
    outputSha256: hash.digest("hex"),
  };
}

/**
 * Whether the checkout at `root` has the tunnel's `--insecure-plain` flag
 * (one from before authentication has none, and refuses it; one from after
 * needs it to run over plain TCP).
 */
async function knowsInsecurePlain(root: string): Promise<boolean> {
  const file = `${root.replace(/\/$/, "")}/scripts/_cli/security_options.ts`;
  const text = await Deno.readTextFile(file).catch(() => "");
  return text.includes("--insecure-plain");
}

/** SHA-256 (hex) of a file. */
async function fileSha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  await (await Deno.open(path)).readable.pipeTo(
    new WritableStream({ write: (c) => void hash.update(c) }),
  );
  return hash.digest("hex");
}

/**
 * `zstd -1` of the whole stream: its size, the time one core took to
 * compress it, and the CPU seconds (user + system, `/usr/bin/time`) of
 * compressing it and of `zstd -d` decompressing it again — the codec alone,
 * in C, with no hop (NaN without `/usr/bin/time`).
 */
async function zstdCli(
  path: string,
): Promise<{ ms: number; bytes: number; cpuS: number }> {
  const compressed = await Deno.makeTempFile({ prefix: "hakobu-zstd-" });
  const cTime = await Deno.makeTempFile({ prefix: "hakobu-cpu-" });
  const dTime = await Deno.makeTempFile({ prefix: "hakobu-cpu-" });
  try {
    const run = async (args: string[], time: string) => {
      const [cmd, cmdArgs] = timedArgs("zstd", args, time);
      const t0 = performance.now();
      const out = await new Deno.Command(cmd, {
        args: cmdArgs,
        stdout: "null",
        stderr: "piped",
      }).output();
      const ms = performance.now() - t0;
      if (!out.success) {
        throw new Error(
          `zstd ${args.join(" ")} failed (apt-get install zstd): ${
            new TextDecoder().decode(out.stderr)
          }`,
        );
      }
      return ms;
    };
    const ms = await run(["-1", "-f", "-q", path, "-o", compressed], cTime);
    await run(["-d", "-f", "-q", "-c", compressed], dTime);
    return {
      ms,
      bytes: (await Deno.stat(compressed)).size,
      cpuS: (await cpuSeconds(cTime)) + (await cpuSeconds(dTime)),
    };
  } finally {
    await Deno.remove(compressed).catch(() => {});
  }
}

/**
 * What the `--tcg-guest` guest runs before its stream is captured: 24 MiB of
 * random bytes (incompressible), `seq` text (compressible) and three copies
 * of busybox in tmpfs, ≈ 190 MB of non-zero pages in all; the rest of its
 * memory is zero pages, as most of an idle guest's is.
 */
export const TCG_GUEST_SCRIPT = `
dd if=/dev/urandom of=/dev/shm/r bs=1M count=24 2>/dev/null
seq 1 9000000 > /dev/shm/s
cat /bin/busybox /bin/busybox /bin/busybox > /dev/shm/b
`;

/** Captures (once) the migration stream of a throw-away TCG guest running {@link TCG_GUEST_SCRIPT}. */
async function tcgGuestStream(memMiB: number): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(TCG_GUEST_SCRIPT),
  );
  const tag = Array.from(
    new Uint8Array(digest).subarray(0, 6),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const dir = `${labDir()}/streams`;
  const path = `${dir}/tcg-guest-${tag}-${memMiB}m.stream`;
  try {
    if ((await Deno.stat(path)).size > 0) return path;
  } catch { /* not captured yet */ }
  await Deno.mkdir(dir, { recursive: true });
  console.error(
    `capturing a ${memMiB} MiB TCG guest's stream → ${path} (a minute or so)`,
  );
  const stream = await captureStream({
    script: TCG_GUEST_SCRIPT,
    memMiB,
  });
  await Deno.writeFile(`${path}.part`, stream);
  await Deno.rename(`${path}.part`, path);
  return path;
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
  const values = parseOrExit(
    cliProgram("bench_tunnel.ts", { usageExitCode: 2 })
      .description(
        "Replays a captured QEMU migration stream through the tunnel's two processes over loopback, beside a plain copy and zstd -1.",
      )
      .option("--runs <n>", "runs per mode (medians)", integer({ min: 1 }), 3)
      .addOption(
        new Option(
          "--chains <list>",
          'codec chains: ";" between chains, "," between codecs',
        ).argParser(codecChains(";", ",")).default(
          [["zero"], ["zero", "lz4"], ["zero", "zstd"], [
            "zero",
            "dedup",
            "lz4",
          ]],
          "zero;zero,lz4;zero,zstd;zero,dedup,lz4",
        ),
      )
      .option(
        "--mem <MiB>",
        "memory of the lab guest whose stream is captured",
        integer({ min: 1 }),
        1024,
      )
      .option("--stream <file>", "replay this captured stream instead")
      .option(
        "--tcg-guest",
        "capture (once) and replay a throw-away TCG guest's stream instead of the lab's",
      )
      .option("--out <file>", "JSON output", `${ROOT}out/bench-tunnel.json`)
      .option(
        "--against <dir>",
        "also run these chains through another checkout's tunnel",
      )
      .option(
        "--channels <n>",
        "the tunnel's channels (default: the core count)",
        integer({ min: 1, max: MAX_CHANNELS }),
      ),
    Deno.args,
  );
  const { runs } = values;
  const stream = values.stream ??
    (values.tcgGuest
      ? await tcgGuestStream(values.mem)
      : await capturedStream(values.mem));
  const streamBytes = (await Deno.stat(stream)).size;
  const chains = values.chains.map((c) => c.join(","));
  const channelsFlag = values.channels === undefined
    ? []
    : ["--channels", String(values.channels)];
  // Plain TCP on loopback, as the copies it is compared with; an --against
  // checkout from before authentication knows no such flag.
  const tunnelModes = (
    label: string,
    main: string[],
    security: string[],
  ): Mode[] =>
    chains.map((chain) => ({
      name: `${label} ${chain}`,
      recv: (
        a,
      ) => ["run", "-A", ...main, "receive", "--listen", a, ...security],
      send: (a) => [
        "run",
        "-A",
        ...main,
        "send",
        "--to",
        a,
        "--codecs",
        chain,
        ...(main.length > 1 ? channelsFlag : []),
        ...security,
      ],
    }));
  const TUNNEL = (await qemuTunnelCommand(ROOT))!;
  const against = values.against
    ? await qemuTunnelCommand(values.against)
    : null;
  if (values.against && !against) {
    console.error(
      `--against ${values.against}: no scripts/tunnel.ts or engine/qemu/tunnel_main.ts, so not a hakobu checkout`,
    );
    Deno.exit(2);
  }
  const modes: Mode[] = [
    {
      name: "plain Deno copy",
      recv: (a) => ["eval", COPY_RECV, a],
      send: (a) => ["eval", COPY_SEND, a],
    },
    {
      name: FLOOR_MODE,
      recv: (a) => ["run", "-A", FLOOR, "receive", a],
      send: (a) => ["run", "-A", FLOOR, "send", a],
    },
    ...tunnelModes("hakobu tunnel", TUNNEL, ["--insecure-plain"]),
    ...(against
      ? tunnelModes(
        `tunnel at ${values.against}`,
        against,
        await knowsInsecurePlain(values.against!) ? ["--insecure-plain"] : [],
      )
      : []),
  ];
  console.error(
    `replaying ${stream} (${
      (streamBytes / 1e6).toFixed(1)
    } MB), ${runs} runs per mode, modes interleaved`,
  );
  const expected = await fileSha256(stream);
  const results = new Map<string, Run[]>(modes.map((m) => [m.name, []]));
  const zstdRuns: { ms: number; bytes: number; cpuS: number }[] = [];
  for (let i = 0; i < runs; i++) {
    zstdRuns.push(await zstdCli(stream));
    for (const mode of modes) {
      const r = await replay(mode, stream);
      if (r.outputSha256 !== expected) {
        throw new Error(
          `${mode.name}: the receiver wrote other bytes than the stream (SHA-256 ${r.outputSha256}, expected ${expected})`,
        );
      }
      if (r.verified === false) {
        throw new Error(`${mode.name}: the receiver did not verify the stream`);
      }
      results.get(mode.name)!.push(r);
      console.error(
        `run ${i + 1}/${runs} ${mode.name}: wall ${
          r.wallMs.toFixed(0)
        } ms, send ${r.sendMs.toFixed(0)} ms, receive ${
          r.recvMs.toFixed(0)
        } ms, wire ${(r.wireBytes / 1e6).toFixed(1)} MB, CPU ${
          r.cpuS.toFixed(2)
        } s`,
      );
    }
  }
  const base = median(results.get(modes[0].name)!.map((r) => r.sendMs));
  const baseWall = median(results.get(modes[0].name)!.map((r) => r.wallMs));
  const baseCpu = median(results.get(modes[0].name)!.map((r) => r.cpuS));
  const rows = modes.map((m) => {
    const rs = results.get(m.name)!;
    const sendMs = median(rs.map((r) => r.sendMs));
    const wallMs = median(rs.map((r) => r.wallMs));
    const cpuS = median(rs.map((r) => r.cpuS));
    return {
      mode: m.name,
      wallMs,
      sendMs,
      recvMs: median(rs.map((r) => r.recvMs)),
      streamMBps: streamBytes / 1e3 / sendMs,
      wireBytes: median(rs.map((r) => r.wireBytes)),
      vsCopy: sendMs / base,
      vsCopyWall: wallMs / baseWall,
      cpuS,
      vsCopyCpu: cpuS / baseCpu,
      verified: rs.every((r) => r.verified !== false),
      outputChecked: true,
    };
  });
  const zstdMs = median(zstdRuns.map((r) => r.ms));
  rows.push({
    mode: "zstd -1 (CLI, whole stream, one core; CPU: -1 and -d)",
    wallMs: zstdMs,
    sendMs: zstdMs,
    recvMs: NaN,
    streamMBps: streamBytes / 1e3 / zstdMs,
    wireBytes: median(zstdRuns.map((r) => r.bytes)),
    vsCopy: zstdMs / base,
    vsCopyWall: zstdMs / baseWall,
    cpuS: median(zstdRuns.map((r) => r.cpuS)),
    vsCopyCpu: median(zstdRuns.map((r) => r.cpuS)) / baseCpu,
    verified: false,
    outputChecked: false,
  });
  const table = new Table({
    head: [
      "mode",
      "wall s",
      "in-process s",
      "stream MB/s",
      "wire MB",
      "x copy (in-process)",
      "x copy (wall)",
      "CPU s",
      "x copy (CPU)",
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
      r.vsCopyWall.toFixed(2),
      Number.isNaN(r.cpuS) ? "" : r.cpuS.toFixed(2),
      Number.isNaN(r.vsCopyCpu) ? "" : r.vsCopyCpu.toFixed(2),
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
        streamSha256: expected,
        runs,
        medians: rows,
      },
      null,
      2,
    ) + "\n",
  );
  console.error(`written to ${values.out}`);
}
