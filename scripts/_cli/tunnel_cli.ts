/**
 * The stream tunnel's command line, `FORMAT send|receive [flags] [-- words]`,
 * as one commander tree: `scripts/tunnel.ts` runs it as its program and
 * `hakobu tunnel` mounts it, so both take the same flags, print the same
 * help and fail the same way.
 *
 * Each run ends with one JSON line on stderr, which the labs and QEMU's
 * `exec:` callers read: `{"ok":true,...statistics}` and exit 0, or
 * `{"ok":false,"error":"..."}` and exit 1, a usage error included
 * (`--channels: expected a whole number from 1 to 64, got "x"`); nothing
 * connects before every flag has parsed.
 *
 * @module
 */

import {
  connectSecurityFrom,
  insecurePlainOption,
  listenSecurityFrom,
  tlsAuthzOption,
  tlsDirOption,
  tlsIdentityOption,
  tlsNameOption,
} from "./security_options.ts";
import {
  type Command,
  type CommandUnknownOpts,
  Option,
} from "@commander-js/extra-typings";
import { codecNames } from "../../engine/codecs/registry.ts";
import { DEFAULT_MAX_PAGES } from "../../engine/stream/xen_format.ts";
import { DEFAULT_MAX_LEAD_BYTES } from "../../engine/stream/stream_progress.ts";
import type { StreamStats } from "../../engine/stream/send.ts";
import type { Address } from "../../engine/transport/address.ts";
import { MAX_CHANNELS } from "../../engine/plan.ts";
import {
  address,
  codecChain,
  endpoint,
  integer,
  positiveNumber,
} from "./options.ts";
import { cliProgram } from "./program.ts";

/** Most pages in one channel batch (`sendStream` caps it there). */
const MAX_BATCH_PAGES = 7680;

/** `send --resume-grace`: how long a lost link may take to resume. */
function sendResumeOption() {
  return new Option(
    "--resume-grace <ms>",
    "resume a lost link within this many milliseconds: reconnect to the same receiving tunnel (which must take --resume-grace too) and send only what it lacks; 0: a lost link fails the migration",
  ).argParser(integer({ min: 0 })).default(0);
}

/** `receive --resume-grace`: how long a lost session is kept. */
function receiveResumeOption() {
  return new Option(
    "--resume-grace <ms>",
    "keep a session whose link was lost this many milliseconds for its source to resume (the hypervisor's pipe stays open; the listener too, for RESUMEs); 0: none is resumable",
  ).argParser(integer({ min: 0 })).default(0);
}

/** Options of {@link tunnelCommand}. */
export interface TunnelCliOptions {
  /** How the help's examples start (default: the command's name). */
  readonly invokedAs?: string;
  /** The one JSON line a run ends with (default: stderr). */
  readonly line?: (json: string) => void;
  /** Help text (default: stdout). */
  readonly out?: (text: string) => void;
}

/**
 * The tunnel's command tree under the name `name` (`"tunnel.ts"` as its own
 * program, `"tunnel"` under `hakobu`, invoked as `"hakobu tunnel"`). An
 * action passes its exit code to `setExit`; a usage error is reported as
 * the JSON line and thrown as commander's error (see `program.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const lines: string[] = [];
 * const cli = tunnelCommand("tunnel.ts", () => {}, { line: (l) => lines.push(l) });
 * await assert.rejects(
 *   cli.parseAsync(["qemu", "send", "--to", "127.0.0.1:9", "--channels", "0"], { from: "user" }),
 * );
 * assert.deepEqual(JSON.parse(lines[0]), {
 *   ok: false,
 *   error: `--channels: expected a whole number from 1 to 64, got "0"`,
 * });
 * ```
 */
export function tunnelCommand(
  name: string,
  setExit: (code: number) => void,
  output: TunnelCliOptions = {},
): Command {
  const line = output.line ?? ((json: string) => console.error(json));
  const fail = (error: string) => line(JSON.stringify({ ok: false, error }));
  const finish = async (run: () => Promise<StreamStats>) => {
    try {
      line(JSON.stringify({ ok: true, ...await run() }));
      setExit(0);
    } catch (e) {
      fail(e instanceof Error ? e.message : String(e));
      setExit(1);
    }
  };
  const runtime = () => import("./tunnel.ts");

  const root = cliProgram(name, { out: output.out, error: fail })
    .description(
      "Carries a hypervisor's migration stream through hakobu's channels and codecs; " +
        "the receiver rebuilds it byte for byte and both sides compare its XXH3-128.",
    )
    .addHelpText("after", footer(output.invokedAs ?? name));

  const qemu = root.command("qemu")
    .description(
      'QEMU\'s migration stream (migrate "exec:..." or, resident, "unix:...")',
    );
  qemu.command("send")
    .description(
      'source side: the stream on stdin (QEMU migrate "exec:<this>"), or with --serve each connection on a socket (QEMU migrate "unix:PATH"), one migration each',
    )
    .addOption(toOption().makeOptionMandatory())
    .addOption(codecsOption())
    .addOption(bandwidthOption())
    .addOption(channelsOption())
    .addOption(batchPagesOption())
    .addOption(maxLeadOption())
    .addOption(sendResumeOption())
    .addOption(
      new Option(
        "--serve <unix:path|host:port>",
        "resident: serve QEMU's migrate connections on this socket, one migration each, for ever",
      ).argParser(endpoint),
    )
    .addOption(tlsDirOption())
    .addOption(tlsNameOption())
    .addOption(tlsIdentityOption())
    .addOption(insecurePlainOption())
    .action(async (o) => {
      const { tunnelSend } = await runtime();
      await finish(async () =>
        tunnelSend({
          security: await connectSecurityFrom(o),
          format: "qemu",
          to: o.to,
          codecs: o.codecs,
          bandwidth: o.bandwidth,
          channels: o.channels,
          batchPages: o.batchPages,
          maxLeadBytes: o.maxLead,
          serve: o.serve,
          resumeGraceMs: o.resumeGrace,
        })
      );
    });
  qemu.command("receive")
    .description(
      'destination side: one connection, the rebuilt stream on stdout (QEMU -incoming "exec:<this>"), or with --to-qemu each session into QEMU\'s migrate-incoming socket',
    )
    .addOption(
      new Option(
        "--listen <host:port>",
        "where to listen for the sending tunnel",
      )
        .argParser(address).makeOptionMandatory(),
    )
    .addOption(
      new Option(
        "--to-qemu <unix:path|host:port>",
        'resident: feed each session into the destination QEMU\'s migrate-incoming "unix:PATH", for ever',
      ).argParser(endpoint),
    )
    .addOption(
      new Option(
        "--return-path",
        "with --to-qemu: carry QEMU's return path back to the source (libvirt turns it on); the stream's end is then not held until the digests compare",
      ),
    )
    .addOption(receiveResumeOption())
    .addOption(tlsDirOption())
    .addOption(tlsAuthzOption())
    .addOption(insecurePlainOption())
    .action(async (o) => {
      const { tunnelReceive } = await runtime();
      await finish(async () =>
        tunnelReceive({
          format: "qemu",
          listen: o.listen,
          toQemu: o.toQemu,
          returnPath: o.returnPath === true,
          resumeGraceMs: o.resumeGrace,
          security: await listenSecurityFrom(o),
        })
      );
    });

  const xen = root.command("xen")
    .description(
      'xl\'s migration stream (xl migrate -s "<this> --" DOMU HOST)',
    );
  xen.command("send")
    .description(
      'source dom0: xl\'s stream on stdin, the answers on stdout, as xl migrate -s "<this> --" DOMU HOST runs it',
    )
    .argument(
      "[xl-words...]",
      'after "--": xl\'s words (DST xl migrate-receive ...), ignored but for DST, the host when --to is absent',
    )
    .addOption(toOption())
    .addOption(
      new Option("--port <n>", "the port when the host comes from xl's words")
        .argParser(integer({ min: 1, max: 65535 })).default(4445),
    )
    .addOption(codecsOption())
    .addOption(bandwidthOption())
    .addOption(channelsOption())
    .addOption(batchPagesOption())
    .addOption(maxLeadOption())
    .addOption(sendResumeOption())
    .addOption(
      new Option(
        "--max-pages <n>",
        "the pfn bound: HELLO's memoryBytes is N x 4096 (holes included)",
      ).argParser(integer({ min: 1 })).default(DEFAULT_MAX_PAGES, "2^24"),
    )
    .addOption(tlsDirOption())
    .addOption(tlsNameOption())
    .addOption(tlsIdentityOption())
    .addOption(insecurePlainOption())
    .action(async (words, o, cmd) => {
      refuseWordsBeforeDash(cmd, words);
      const to: Address = o.to ??
        (words[0] !== undefined
          ? hostAndPort(cmd, words[0], o.port)
          : cmd.error(`Missing --to HOST:PORT (or xl's host after "--")`));
      const { tunnelSend } = await runtime();
      await finish(async () =>
        tunnelSend({
          security: await connectSecurityFrom(o),
          format: "xen",
          to,
          codecs: o.codecs,
          bandwidth: o.bandwidth,
          channels: o.channels,
          batchPages: o.batchPages,
          maxLeadBytes: o.maxLead,
          maxPages: o.maxPages,
          resumeGraceMs: o.resumeGrace,
        })
      );
    });
  xen.command("receive")
    .description(
      'destination dom0: one connection, the rebuilt stream into the stdin of the command after "--", whose stdout goes back to xl',
    )
    .argument(
      "[command...]",
      'after "--": the command that gets the stream (default: xl migrate-receive)',
    )
    .addOption(
      new Option(
        "--listen <host:port>",
        "where to listen for the sending tunnel (loopback unless given)",
      ).argParser(address).default(
        { hostname: "127.0.0.1", port: 4445 },
        "127.0.0.1:4445",
      ),
    )
    .addOption(receiveResumeOption())
    .addOption(tlsDirOption())
    .addOption(tlsAuthzOption())
    .addOption(insecurePlainOption())
    .action(async (command, o, cmd) => {
      refuseWordsBeforeDash(cmd, command);
      const { tunnelReceive } = await runtime();
      await finish(async () =>
        tunnelReceive({
          format: "xen",
          listen: o.listen,
          command,
          resumeGraceMs: o.resumeGrace,
          security: await listenSecurityFrom(o),
        })
      );
    });

  // A word that is no format or mode fails with what was expected (after
  // the subcommands, which would inherit the excess arguments allowed).
  for (const [group, modes] of [[qemu, "qemu"], [xen, "xen"]] as const) {
    group.allowExcessArguments().action((_o, cmd) =>
      cmd.error(
        `${
          cmd.args[0] === undefined
            ? "Missing mode"
            : `Unknown mode "${cmd.args[0]}"`
        }: expected "${modes} send" or "${modes} receive"`,
      )
    );
  }
  root.allowExcessArguments().action((_o, cmd) =>
    cmd.error(
      `${
        cmd.args[0] === undefined
          ? "Missing stream format"
          : `Unknown stream format "${cmd.args[0]}"`
      }: expected "qemu" or "xen"`,
    )
  );
  return root;
}

function toOption() {
  return new Option("--to <host:port>", "the receiving tunnel").argParser(
    address,
  );
}

function codecsOption() {
  return new Option(
    "--codecs <list>",
    "the codec chain, e.g. zero,zstd (raw is added last)",
  ).argParser(codecChain()).default(["zero"], "zero");
}

function bandwidthOption() {
  return new Option(
    "--bandwidth <bytes/s>",
    "link pacing in bytes per second (default: unpaced)",
  ).argParser(positiveNumber("bytes per second"));
}

function channelsOption() {
  return new Option(
    "--channels <n>",
    `channels, one encode Worker each, 1 to ${MAX_CHANNELS} (default: the core count)`,
  ).argParser(integer({ min: 1, max: MAX_CHANNELS }));
}

function maxLeadOption() {
  return new Option(
    "--max-lead <bytes>",
    "most stream bytes read ahead of what the receiving tunnel wrote to the destination; at least the link's bandwidth x round trip (0: no bound)",
  ).argParser(integer({ min: 0, max: Number.MAX_SAFE_INTEGER })).default(
    DEFAULT_MAX_LEAD_BYTES,
    "8 MiB",
  );
}

function batchPagesOption() {
  return new Option("--batch-pages <n>", "pages per channel batch")
    .argParser(integer({ min: 1, max: MAX_BATCH_PAGES })).default(256);
}

/** `HOST` from xl's words with `--port`, as a tunnel address. */
function hostAndPort(
  cmd: CommandUnknownOpts,
  host: string,
  port: number,
): Address {
  try {
    return address(`${host}:${port}`);
  } catch (e) {
    return cmd.error(
      `Cannot use xl's host "${host}" with --port ${port}: ${
        (e as Error).message
      }`,
    );
  }
}

/**
 * Refuses operands written before `--`: xl's words (and the receiving
 * command) must follow it, so that their own flags are never taken for
 * the tunnel's, and a stray word fails instead of being ignored. Commander
 * keeps no mark of `--` in the operands, so the words after the root's
 * first `--` are counted.
 */
function refuseWordsBeforeDash(
  cmd: CommandUnknownOpts,
  words: readonly string[],
): void {
  let root: { parent: unknown } = cmd;
  while (root.parent) root = root.parent as { parent: unknown };
  const raw = (root as unknown as { rawArgs: string[] }).rawArgs ?? [];
  const dash = raw.indexOf("--");
  const after = dash < 0 ? 0 : raw.length - dash - 1;
  const before = words.length - after;
  if (before > 0) {
    cmd.error(
      `Unexpected word "${
        words[0]
      }" before "--": the words for xl or the command go after "--"`,
    );
  }
}

function footer(name: string): string {
  return `
Examples:
  # QEMU, destination: its stdout feeds -incoming "exec:..."; source: QMP migrate "exec:..."
  ${name} qemu receive --listen 127.0.0.1:4444
  ${name} qemu send --to 127.0.0.1:4444 --codecs zero,zstd
  # QEMU, resident (one process per host, one migration per connection)
  ${name} qemu receive --listen 0.0.0.0:4444 --to-qemu unix:/run/hakobu/in.sock
  ${name} qemu send --serve unix:/run/hakobu/out.sock --to DST:4444 --codecs zero,zstd
  # Xen, destination dom0, then source dom0
  ${name} xen receive --listen 10.0.0.2:4445 -- xl migrate-receive
  xl migrate -s "${name} xen send --to DST:4445 --codecs zero,lz4 --" DOMU DST

Codecs: ${
    codecNames().join(", ")
  } (a chain, first claimant wins; raw is added last).
Each side ends with one JSON line on stderr: {"ok":true,...} and exit 0, or
{"ok":false,"error":"..."} and exit 1 (resident modes: {"listening":"..."} once
listening, then one line per migration, on stdout). '${name} FORMAT MODE --help'
lists a mode's flags.`;
}
