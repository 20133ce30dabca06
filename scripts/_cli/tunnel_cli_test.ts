import assert from "node:assert/strict";
import { CommanderError } from "@commander-js/extra-typings";
import { codecNames } from "../../engine/codecs/registry.ts";
import { HAKOBU, runScript } from "./_cli_testing.ts";
import { tunnelCommand } from "./tunnel_cli.ts";

const TUNNEL = new URL("../tunnel.ts", import.meta.url).pathname;

/** Parses `args` with the tunnel's tree in-process; what it wrote and how it ended. */
async function parse(args: string[]): Promise<{
  lines: string[];
  out: string;
  error: CommanderError | null;
  exits: number[];
}> {
  const lines: string[] = [];
  const exits: number[] = [];
  let out = "";
  const cli = tunnelCommand("tunnel.ts", (c) => exits.push(c), {
    line: (l) => lines.push(l),
    out: (t) => (out += t),
  });
  let error: CommanderError | null = null;
  try {
    await cli.parseAsync(args, { from: "user" });
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    error = e;
  }
  return { lines, out, error, exits };
}

const TO = ["--to", "127.0.0.1:9"];

Deno.test("tunnel flags: each bad flag, value or word is one JSON line that names it, exit code 1, before anything runs", async () => {
  const cases: [string[], string][] = [
    [
      ["qemu", "send", ...TO, "--codec", "zero"],
      "Unknown option '--codec' (Did you mean --codecs?)",
    ],
    [
      ["qemu", "send", ...TO, "--channels", "x"],
      `--channels: expected a whole number from 1 to 64, got "x"`,
    ],
    [
      ["qemu", "send", ...TO, "--channels", "65"],
      `--channels: expected a whole number from 1 to 64, got "65"`,
    ],
    [
      ["qemu", "send", ...TO, "--batch-pages", "0"],
      `--batch-pages: expected a whole number from 1 to 7680, got "0"`,
    ],
    [
      ["qemu", "send", ...TO, "--bandwidth", "fast"],
      `--bandwidth: expected bytes per second, a number above 0, got "fast"`,
    ],
    [
      ["xen", "send", ...TO, "--max-pages", "x"],
      `--max-pages: expected a whole number ≥ 1, got "x"`,
    ],
    [
      ["xen", "send", "--port", "99999", "--", "dst"],
      `--port: expected a whole number from 1 to 65535, got "99999"`,
    ],
    // flags only another format or mode uses are refused, not ignored
    [["qemu", "send", ...TO, "--port", "5"], "Unknown option '--port'"],
    [
      ["qemu", "send", ...TO, "--max-pages", "5"],
      "Unknown option '--max-pages'",
    ],
    [
      ["xen", "send", ...TO, "--serve", "unix:/x"],
      "Unknown option '--serve'",
    ],
    [
      ["xen", "receive", "--to-qemu", "unix:/x"],
      "Unknown option '--to-qemu'",
    ],
    // every codec name is known before anything connects
    [
      ["qemu", "send", ...TO, "--codecs", "zero,zsdt"],
      `--codecs: Unknown codec "zsdt": known codecs are ${
        codecNames().map((n) => `"${n}"`).join(", ")
      }`,
    ],
    [
      ["qemu", "send", ...TO, "--codecs", "zero,,lz4"],
      `--codecs: expected codec names separated by ",", e.g. zero,lz4, got "zero,,lz4"`,
    ],
    [
      ["qemu", "send", "--to", "localhost"],
      `--to: Cannot parse address "localhost": expected HOST:PORT, e.g. 127.0.0.1:7700`,
    ],
    [["qemu", "send"], "Required option '--to <host:port>' not specified"],
    [
      ["qemu", "send", ...TO, "--serve", "unix:"],
      `--serve: expected unix:PATH with a path, got "unix:"`,
    ],
    [
      ["qemu", "receive"],
      "Required option '--listen <host:port>' not specified",
    ],
    [
      ["qemu", "send", ...TO, "zero"],
      "Too many arguments for 'send'. Expected 0 arguments but got 1.",
    ],
    [
      ["xen", "send", ...TO, "zero", "--", "dst"],
      `Unexpected word "zero" before "--": the words for xl or the command go after "--"`,
    ],
    [["xen", "send"], `Missing --to HOST:PORT (or xl's host after "--")`],
    [
      ["xen", "send", "--", "fe80::1"],
      `Cannot use xl's host "fe80::1" with --port 4445: Cannot parse address "fe80::1:4445": expected HOST:PORT, e.g. 127.0.0.1:7700`,
    ],
    [
      ["qemu", "recv"],
      `Unknown mode "recv": expected "qemu send" or "qemu receive"`,
    ],
    [["xen"], `Missing mode: expected "xen send" or "xen receive"`],
    [
      ["vmware", "send"],
      `Unknown stream format "vmware": expected "qemu" or "xen"`,
    ],
    [[], `Missing stream format: expected "qemu" or "xen"`],
  ];
  for (const [args, message] of cases) {
    const r = await parse(args);
    assert.deepEqual(
      r.lines.map((l) => JSON.parse(l)),
      [{ ok: false, error: message }],
      args.join(" "),
    );
    assert.equal(r.error?.exitCode, 1, args.join(" "));
    assert.deepEqual(r.exits, [], "no action ran");
  }
});

Deno.test("tunnel --help: each mode lists its own flags with their defaults, the root its formats and examples", async () => {
  const mode = async (args: string[]) => {
    const r = await parse([...args, "--help"]);
    assert.equal(r.error?.exitCode, 0);
    assert.equal(r.error?.code, "commander.helpDisplayed");
    assert.deepEqual(r.lines, [], "help is no JSON line");
    return r.out;
  };
  const qemuSend = await mode(["qemu", "send"]);
  assert.match(qemuSend, /^Usage: tunnel\.ts qemu send \[options\]\n/);
  for (
    const flag of [
      "--to <host:port>",
      "--codecs <list>",
      "--bandwidth <bytes/s>",
      "--channels <n>",
      "--batch-pages <n>",
      "--serve <unix:path|host:port>",
    ]
  ) {
    assert.ok(qemuSend.includes(flag), `qemu send lists ${flag}`);
  }
  assert.match(qemuSend, /--codecs <list> [^-]*\(default:\s+zero\)/);
  assert.match(qemuSend, /--batch-pages <n> [^-]*\(default:\s+256\)/);
  assert.doesNotMatch(qemuSend, /--max-pages|--port|--listen/);

  const xenSend = await mode(["xen", "send"]);
  assert.match(
    xenSend,
    /^Usage: tunnel\.ts xen send \[options\] \[xl-words\.\.\.\]/,
  );
  assert.match(xenSend, /--port <n> [^-]*\(default:\s+4445\)/);
  assert.match(xenSend, /--max-pages <n> [^-]*\(default:\s+2\^24\)/);
  assert.doesNotMatch(xenSend, /--serve/);

  assert.match(
    await mode(["qemu", "receive"]),
    /--listen <host:port>[\s\S]*--to-qemu <unix:path\|host:port>/,
  );
  const xenReceive = await mode(["xen", "receive"]);
  assert.match(xenReceive, /\[command\.\.\.\]/);
  assert.match(
    xenReceive,
    /--listen <host:port> [^-]*\(default:\s+127\.0\.0\.1:4445\)/,
  );

  const root = await mode([]);
  assert.match(root, /^Usage: tunnel\.ts \[options\] \[command\]/);
  assert.match(root, /\n {2}qemu +QEMU's migration stream/);
  assert.match(root, /\n {2}xen +xl's migration stream/);
  assert.ok(
    root.includes(`Codecs: ${codecNames().join(", ")}`),
    "the footer names every codec",
  );
});

Deno.test("tunnel from the script and from hakobu tunnel: a bad flag is one JSON line on stderr and exit 1", async () => {
  for (const program of [[TUNNEL], [HAKOBU, "tunnel"]]) {
    const r = await runScript(program[0], [
      ...program.slice(1),
      "qemu",
      "send",
      ...TO,
      "--channels",
      "0",
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.deepEqual(JSON.parse(r.stderr.trim()), {
      ok: false,
      error: `--channels: expected a whole number from 1 to 64, got "0"`,
    });
  }
});

Deno.test("tunnel --help from the script and from hakobu tunnel prints the mode's usage and exits 0", async () => {
  for (
    const [program, usage] of [
      [[TUNNEL, "qemu", "send", "--help"], "tunnel.ts qemu send [options]"],
      [
        [HAKOBU, "tunnel", "xen", "receive", "-h"],
        "hakobu tunnel xen receive [options] [command...]",
      ],
    ] as const
  ) {
    const r = await runScript(program[0], program.slice(1));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(`Usage: ${usage}\n`), r.stdout);
    assert.match(r.stdout, /--listen|--to/);
  }
  const top = await runScript(HAKOBU, ["--help"]);
  assert.match(
    top.stdout,
    /\n {2}tunnel .*carry a hypervisor's migration stream/,
  );
});
