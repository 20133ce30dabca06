/**
 * The stream tunnel's command line, one for every format: QEMU's `exec:`
 * migration transport and xl's `migrate -s`. Also `hakobu tunnel ...`.
 *
 * ```sh
 * # QEMU, destination: its stdout feeds `-incoming "exec:..."`
 * deno run -A scripts/tunnel.ts qemu receive --listen 127.0.0.1:4444
 * # QEMU, source: QMP `migrate "exec:deno run -A scripts/tunnel.ts qemu send --to 127.0.0.1:4444"`
 * deno run -A scripts/tunnel.ts qemu send --to 127.0.0.1:4444 --codecs zero,zstd [--channels N]
 *
 * # Xen, destination dom0: listen, then run xl migrate-receive with the stream
 * deno run -A scripts/tunnel.ts xen receive --listen 10.0.0.2:4445 -- xl migrate-receive
 * # Xen, source dom0: xl runs `<-s command> DST xl migrate-receive` and pipes through it
 * xl migrate -s "deno run -A scripts/tunnel.ts xen send --to DST:4445 --codecs zero,lz4 --" DOMU DST
 * ```
 *
 * Resident (QEMU): started once per host, they serve one migration after
 * another, so a migration pays no Deno start:
 *
 * ```sh
 * # destination: sessions from the network into QEMU's `migrate-incoming "unix:PATH"` socket
 * deno run -A scripts/tunnel.ts qemu receive --listen 0.0.0.0:4444 --to-qemu unix:/run/hakobu/in.sock
 * # source: QEMU `migrate "unix:/run/hakobu/out.sock"`; each connection is one migration
 * deno run -A scripts/tunnel.ts qemu send --serve unix:/run/hakobu/out.sock --to DST:4444 --codecs zero,zstd
 * ```
 * Resident modes print one JSON line per migration on stdout and run until
 * killed.
 *
 * `send` reads the stream on stdin (xl's replies go to stdout); `receive`
 * writes the rebuilt stream to stdout (QEMU) or to the stdin of the command
 * after `--` (Xen; default `xl migrate-receive`), whose stdout goes back to
 * the source. For `xen send`, the words after `--` (xl's `DST xl
 * migrate-receive ...`) are ignored, and without `--to` the first of them is
 * the host, with `--port` (default 4445). Statistics go to stderr as one
 * JSON line; any failure exits non-zero, and `receive` then never writes
 * the stream's end.
 *
 * @module
 */

import { acceptNext } from "../engine/transport/accept.ts";
import { connectRetrying, parseAddress } from "../engine/transport/address.ts";
import { codecByName } from "../engine/codecs/registry.ts";
import { largeReads } from "../engine/transport/read_stream.ts";
import { growPipe } from "../engine/transport/pipe_size.ts";
import {
  bandwidthFlag,
  codecList,
  runTunnelMain,
  tunnelFlags,
} from "../engine/transport/tunnel_cli.ts";
import type { StreamFormat } from "../engine/stream/format.ts";
import { qemuFormat } from "../engine/stream/qemu_format.ts";
import { DEFAULT_MAX_PAGES, xenFormat } from "../engine/stream/xen_format.ts";
import { sendStream, type StreamStats } from "../engine/stream/send.ts";
import { receiveStream } from "../engine/stream/receive.ts";

function positive(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`Bad --${name} "${value}": expected a positive integer`);
  }
  return n;
}

/** What `--help` prints. */
export const TUNNEL_USAGE =
  `Usage: tunnel.ts qemu|xen send|receive [flags] [-- words]

Carries a hypervisor's migration stream through hakobu's channels and codecs;
the receiver rebuilds it byte for byte and both sides compare its SHA-256.

  qemu send    --to HOST:PORT [--codecs zero,zstd] [--channels N] [--batch-pages N]
               [--bandwidth BYTES_PER_S]           stream on stdin (QEMU "exec:")
  qemu send    --serve unix:PATH --to HOST:PORT ... resident: each connection
                                                   on PATH (QEMU "migrate unix:PATH") is one migration
  qemu receive --listen HOST:PORT                  rebuilt stream on stdout (QEMU -incoming "exec:")
  qemu receive --listen HOST:PORT --to-qemu unix:PATH
                                                   resident: each session into QEMU's
                                                   migrate-incoming socket
  xen send     [--to HOST:PORT | -- HOST ...] [--port 4445] [--codecs ...] [--max-pages N]
                                                   as xl migrate -s "<this> --" DOMU HOST
  xen receive  [--listen 127.0.0.1:4445] [-- xl migrate-receive]

Codecs: raw, zero, rle, delta, dedup, lz4, zstd (a chain, first claimant wins;
raw is added last). Channels default to the core count. Statistics go to
stderr as one JSON line (resident modes: one line per migration on stdout);
any failure exits 1.
`;

/** Whether `args` (before any `--`) ask for help. */
export function wantsHelp(args: readonly string[]): boolean {
  const dash = args.indexOf("--");
  return (dash >= 0 ? args.slice(0, dash) : args).some((a) =>
    a === "--help" || a === "-h"
  );
}

/** Runs `FORMAT send|receive ...`; returns the stats. */
export async function tunnelMain(args: string[]): Promise<StreamStats> {
  const dash = args.indexOf("--");
  const own = dash >= 0 ? args.slice(0, dash) : args;
  const tail = dash >= 0 ? args.slice(dash + 1) : [];
  const [formatName, mode, ...rest] = own;
  if (formatName !== "qemu" && formatName !== "xen") {
    throw new Error(
      `Unknown stream format "${formatName ?? ""}": expected "qemu" or "xen"`,
    );
  }
  if (mode === "send") {
    const f = tunnelFlags(rest, [
      "to",
      "codecs",
      "bandwidth",
      "channels",
      "batch-pages",
      ...(formatName === "xen" ? ["port", "max-pages"] : ["serve"]),
    ]);
    let format: StreamFormat = qemuFormat;
    let to = f.to;
    if (formatName === "xen") {
      format = xenFormat(
        positive("max-pages", f["max-pages"]) ?? DEFAULT_MAX_PAGES,
      );
      to ??= tail[0] ? `${tail[0]}:${f.port ?? "4445"}` : undefined;
    }
    if (!to) {
      throw new Error(
        formatName === "xen"
          ? `Missing --to HOST:PORT (or xl's host after "--")`
          : "Missing --to HOST:PORT",
      );
    }
    const address = parseAddress(to, "--to");
    const options = {
      format,
      // every name known before anything connects
      codecs: codecList(f.codecs).map((c) => (codecByName(c.name), c)),
      bandwidth: bandwidthFlag(f.bandwidth),
      channels: positive("channels", f.channels),
      batchPages: positive("batch-pages", f["batch-pages"]),
    };
    if (f.serve !== undefined) {
      if (formatName !== "qemu") {
        throw new Error(
          "--serve is for QEMU streams (xl runs its tunnel itself)",
        );
      }
      return await serve(endpoint(f.serve, "--serve"), async (qemu) => {
        const conn = await connectRetrying(address, 20_000);
        return await sendStream(largeReads(qemu), conn, options);
      });
    }
    const conn = await connectRetrying(address, 20_000);
    // QEMU's or xl's pipe: up to 1 MiB per read instead of 64 KiB
    growPipe(0);
    return await sendStream(largeReads(Deno.stdin), conn, {
      ...options,
      ...(formatName === "xen" ? { back: Deno.stdout.writable } : {}),
    });
  }
  if (mode === "receive") {
    const f = tunnelFlags(
      rest,
      formatName === "qemu" ? ["listen", "to-qemu"] : ["listen"],
    );
    if (formatName === "qemu" && f["to-qemu"] !== undefined) {
      const qemuAt = endpoint(f["to-qemu"], "--to-qemu");
      return await serve(
        { transport: "tcp", ...parseAddress(f.listen ?? "", "--listen") },
        async (conn) => {
          // QEMU listens once `migrate-incoming` was issued: wait for it.
          const qemu = await connectEndpoint(qemuAt, 20_000);
          try {
            return await receiveStream(conn, {
              format: "qemu",
              out: qemu.writable,
            });
          } finally {
            try {
              qemu.close();
            } catch { /* closed with its stream */ }
          }
        },
      );
    }
    if (formatName === "qemu") {
      const at = parseAddress(f.listen ?? "", "--listen");
      const listener = Deno.listen(at);
      const conn = await acceptNext(listener, reportAcceptFailure);
      listener.close();
      growPipe(1);
      return await receiveStream(conn, {
        format: "qemu",
        out: Deno.stdout.writable,
      });
    }
    const at = parseAddress(f.listen ?? "127.0.0.1:4445", "--listen");
    const cmd = tail.length > 0 ? tail : ["xl", "migrate-receive"];
    const listener = Deno.listen(at);
    const conn = await acceptNext(listener, reportAcceptFailure);
    listener.close();
    const child = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // xl talks between its messages: the stream goes through as it comes.
    return await receiveStream(conn, {
      format: "xen",
      out: child.stdin,
      back: child.stdout,
      holdLast: false,
      exited: child.status.then((s) => s.code),
    });
  }
  throw new Error(
    `Unknown mode "${
      mode ?? ""
    }": expected "${formatName} send" or "${formatName} receive"`,
  );
}

function reportAcceptFailure(e: Error): void {
  console.error(`accept failed, still listening: ${e.message}`);
}

/** A socket address: `unix:PATH` or `HOST:PORT`. */
type Endpoint =
  | { transport: "unix"; path: string }
  | { transport: "tcp"; hostname: string; port: number };

function endpoint(text: string, what: string): Endpoint {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path) throw new Error(`Bad ${what} "${text}": unix: needs a path`);
    return { transport: "unix", path };
  }
  return { transport: "tcp", ...parseAddress(text, what) };
}

async function connectEndpoint(
  at: Endpoint,
  timeoutMs: number,
): Promise<Deno.Conn> {
  if (at.transport === "tcp") return await connectRetrying(at, timeoutMs);
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      return await Deno.connect({ transport: "unix", path: at.path });
    } catch (e) {
      if (performance.now() > deadline) {
        throw new Error(
          `Cannot connect to "unix:${at.path}" within ${timeoutMs} ms: ${
            (e as Error).message
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Resident: accepts connections on `at` for ever and runs `session` on each
 * (concurrently), printing one JSON line per session on stdout. A failed
 * session is a line with `ok: false`; the server goes on.
 */
async function serve(
  at: Endpoint,
  session: (conn: Deno.Conn) => Promise<StreamStats>,
): Promise<never> {
  if (at.transport === "unix") {
    await Deno.remove(at.path).catch(() => {});
  }
  const listener = at.transport === "unix"
    ? Deno.listen({ transport: "unix", path: at.path })
    : Deno.listen({ hostname: at.hostname, port: at.port });
  console.error(
    `serving on ${
      at.transport === "unix" ? `unix:${at.path}` : `${at.hostname}:${at.port}`
    }`,
  );
  let n = 0;
  for (;;) {
    // A connection reset while it waited is no reason to stop serving.
    const conn = await acceptNext<Deno.Conn>(listener, reportAcceptFailure);
    const id = ++n;
    session(conn).then(
      (stats) =>
        console.log(JSON.stringify({ ok: true, session: id, ...stats })),
      (e) =>
        console.log(
          JSON.stringify({
            ok: false,
            session: id,
            error: String((e as Error).message ?? e),
          }),
        ),
    ).finally(() => {
      try {
        conn.close();
      } catch { /* closed with its streams */ }
    });
  }
}

if (import.meta.main) {
  if (wantsHelp(Deno.args)) {
    console.log(TUNNEL_USAGE);
    Deno.exit(0);
  }
  await runTunnelMain(tunnelMain);
}
