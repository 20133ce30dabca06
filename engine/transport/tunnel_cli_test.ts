import assert from "node:assert/strict";
import { bandwidthFlag, codecList, tunnelFlags } from "./tunnel_cli.ts";

Deno.test("tunnelFlags reads --name value pairs", () => {
  assert.deepEqual(
    tunnelFlags(["--to", "h:1", "--codecs", "zero,lz4"], ["to", "codecs"]),
    { to: "h:1", codecs: "zero,lz4" },
  );
  assert.deepEqual(tunnelFlags([], ["to"]), {});
});

Deno.test("tunnelFlags names an unknown flag, a missing value and a stray word", () => {
  assert.throws(
    () => tunnelFlags(["--codec", "zero"], ["to", "codecs"]),
    /--codec.*this mode takes --to, --codecs/s,
  );
  assert.throws(() => tunnelFlags(["--to"], ["to"]), /--to/);
  assert.throws(() => tunnelFlags(["zero"], ["to"]), /zero/);
});

Deno.test("codecList splits --codecs, defaults to zero, refuses empty names", () => {
  assert.deepEqual(codecList(undefined), [{ name: "zero" }]);
  assert.deepEqual(codecList("zero, lz4"), [{ name: "zero" }, { name: "lz4" }]);
  assert.throws(() => codecList("zero,,lz4"), /Bad --codecs "zero,,lz4"/);
  assert.throws(() => codecList(""), /Bad --codecs ""/);
});

Deno.test("bandwidthFlag takes positive bytes per second", () => {
  assert.equal(bandwidthFlag(undefined), null);
  assert.equal(bandwidthFlag("125000000"), 125e6);
  for (const bad of ["fast", "0", "-5", "Infinity"]) {
    assert.throws(() => bandwidthFlag(bad), /Bad --bandwidth/);
  }
});

Deno.test("a tunnel main with a bad flag, a flag of another mode or an unknown codec exits 1, before connecting, with a JSON error that names it", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["qemu", "send", "--to", "127.0.0.1:9", "--codec", "zero"],
      /Unknown option '--codec'/,
    ],
    [
      ["xen", "send", "--to", "127.0.0.1:9", "--max-pages", "x"],
      /--max-pages "x"/,
    ],
    // flags only another format or mode uses are refused, not ignored
    [
      ["qemu", "send", "--to", "127.0.0.1:9", "--port", "5"],
      /Unknown option '--port'/,
    ],
    [
      ["qemu", "send", "--to", "127.0.0.1:9", "--max-pages", "5"],
      /Unknown option '--max-pages'/,
    ],
    [
      ["xen", "send", "--to", "127.0.0.1:9", "--serve", "unix:/x"],
      /Unknown option '--serve'/,
    ],
    [["xen", "receive", "--to-qemu", "unix:/x"], /Unknown option '--to-qemu'/],
    // port 9 (discard) is never reached: the name is checked first
    [
      ["qemu", "send", "--to", "127.0.0.1:9", "--codecs", "zero,zsdt"],
      /Unknown codec "zsdt": known codecs are "raw"/,
    ],
  ];
  for (const [args, message] of cases) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../../scripts/tunnel.ts", import.meta.url).pathname,
        ...args,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1, args.join(" "));
    const line = JSON.parse(new TextDecoder().decode(out.stderr).trim());
    assert.equal(line.ok, false);
    assert.match(line.error, message);
  }
});

Deno.test("tunnel --help prints the usage and exits 0, from the script and from hakobu tunnel", async () => {
  for (
    const args of [
      [
        new URL("../../scripts/tunnel.ts", import.meta.url).pathname,
        "qemu",
        "send",
        "--help",
      ],
      [
        new URL("../../scripts/hakobu.ts", import.meta.url).pathname,
        "tunnel",
        "xen",
        "receive",
        "-h",
      ],
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const text = new TextDecoder().decode(out.stdout);
    assert.match(
      text,
      /^Usage: (tunnel\.ts|hakobu tunnel) qemu\|xen send\|receive/,
    );
    for (
      const flag of [
        "--to",
        "--listen",
        "--serve",
        "--to-qemu",
        "--channels",
        "--codecs",
        "--max-pages",
      ]
    ) {
      assert.ok(text.includes(flag), `usage names ${flag}`);
    }
  }
});
