import assert from "node:assert/strict";
import {
  hakobu,
  runScript,
  startReceiver,
  withTempDir,
} from "./_cli/_cli_testing.ts";

const DEMO = new URL("./demo.ts", import.meta.url).pathname;

Deno.test("hakobu plan explains the default policy in words", async () => {
  const r = await hakobu(["plan"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Policy "default"/);
  assert.match(r.stdout, /zero → raw/);
  assert.match(r.stdout, /1\.00 Gbit\/s/);
});

Deno.test("hakobu workloads lists every simulated workload", async () => {
  const r = await hakobu(["workloads", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const names = JSON.parse(r.stdout).map((w: { name: string }) => w.name);
  assert.deepEqual(names.sort(), [
    "idle",
    "lmbench",
    "memcached",
    "partial",
    "postgres",
    "random",
    "unique",
    "zero",
  ]);
});

Deno.test("hakobu --help and each command's --help describe the options", async () => {
  const top = await hakobu(["--help"]);
  assert.equal(top.code, 0);
  for (const cmd of ["receive", "migrate", "plan", "workloads"]) {
    assert.match(top.stdout, new RegExp(cmd));
  }
  const mig = await hakobu(["migrate", "--help"]);
  assert.equal(mig.code, 0);
  assert.match(mig.stdout, /--policy <file>/);
  assert.match(mig.stdout, /--report <file>/);
});

Deno.test("hakobu rejects bad input with messages that name it", async () => {
  const size = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "sim:idle",
    "--to",
    "127.0.0.1:1",
    "--mem",
    "10 GB",
  ]);
  assert.notEqual(size.code, 0);
  assert.match(size.stderr, /Cannot parse size "10 GB"/);

  const src = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "vmware:7",
    "--to",
    "127.0.0.1:1",
    "--mem",
    "8MiB",
  ]);
  assert.notEqual(src.code, 0);
  assert.match(
    src.stderr,
    /Cannot parse source "vmware:7": expected sim:WORKLOAD, qemu:QMP_SOCKET, xen:DOMAIN or libvirt:URI\/DOMAIN \("vmware" is no backend\)/,
  );

  const workload = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "sim:nope",
    "--to",
    "127.0.0.1:1",
    "--mem",
    "8MiB",
  ]);
  assert.notEqual(workload.code, 0);
  assert.match(workload.stderr, /Unknown workload "nope"/);

  const addr = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "sim:idle",
    "--to",
    "localhost",
    "--mem",
    "8MiB",
  ]);
  assert.notEqual(addr.code, 0);
  assert.match(
    addr.stderr,
    /Cannot parse destination "localhost": expected HOST:PORT/,
  );

  // A tunnel receiver on the destination host feeds a QEMU port of its own:
  // without it the migration cannot be set up, and it means nothing alone.
  const lv = [
    "migrate",
    "--from",
    "libvirt:test:///default/test",
    "--to",
    "libvirt:test:///default",
  ];
  const noPort = await hakobu([...lv, "--tunnel-receiver", "10.0.0.2:4445"]);
  assert.equal(noPort.code, 1, noPort.stderr);
  assert.match(
    noPort.stderr,
    /--tunnel-receiver: give --migration-port too, the port of that receiver's --to-qemu/,
  );
  const portAlone = await hakobu([...lv, "--migration-port", "49152"]);
  assert.equal(portAlone.code, 1, portAlone.stderr);
  assert.match(
    portAlone.stderr,
    /--migration-port: only with --tunnel-receiver/,
  );
  const badReceiver = await hakobu([...lv, "--tunnel-receiver", "kvm2"]);
  assert.notEqual(badReceiver.code, 0);
  assert.match(badReceiver.stderr, /--tunnel-receiver: .*expected HOST:PORT/);

  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/bad.ts`, "export const notDefault = 1;\n");
    const policy = await hakobu(["plan", "--policy", `${dir}/bad.ts`]);
    assert.notEqual(policy.code, 0);
    assert.match(policy.stderr, /default export/);
  });
});

Deno.test("hakobu names the flag or argument whose value does not parse, and why", async () => {
  const cases: [string[], string][] = [
    [
      [
        "migrate",
        "--from",
        "sim:idle",
        "--to",
        "127.0.0.1:1",
        "--channels",
        "0",
      ],
      `--channels: expected a whole number from 1 to 64, got "0"`,
    ],
    [
      [
        "migrate",
        "--from",
        "sim:idle",
        "--to",
        "127.0.0.1:1",
        "--bandwidth",
        "fast",
      ],
      `--bandwidth: Cannot parse bandwidth "fast": expected a number followed by bit/s or B/s units`,
    ],
    [
      ["receive", "--listen", "127.0.0.1:0", "--max-sessions", "0"],
      `--max-sessions: expected a whole number ≥ 1, got "0"`,
    ],
    [
      [
        "rebalance",
        "--inventory",
        "x.json",
        "--policy",
        "p.ts",
        "--target",
        "120",
      ],
      `--target: expected a percentage above 0 and at most 100, e.g. 85, got "120"`,
    ],
    [
      ["xen", "dirty-rate", "x"],
      `<domid>: expected a whole number from 0 to 32751, got "x"`,
    ],
    [
      ["xen", "dirty-rate", "7", "--interval", "soon"],
      `--interval: Cannot parse interval "soon"`,
    ],
    [
      ["plan", "--polcy", "p.ts"],
      "Unknown option '--polcy' (Did you mean --policy?)",
    ],
  ];
  for (const [args, message] of cases) {
    const r = await hakobu(args);
    assert.equal(r.code, 1, args.join(" "));
    assert.ok(
      r.stderr.startsWith(`hakobu: ${message}`),
      `${args.join(" ")}: ${r.stderr}`,
    );
    // the command's usage follows, so the right spelling is at hand
    assert.match(r.stderr, new RegExp(`\\nUsage: hakobu ${args[0]} `));
  }
});

Deno.test("hakobu migrate fails clearly when no receiver listens", async () => {
  // Bind a port, then free it so nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const r = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "sim:idle",
    "--mem",
    "8MiB",
    "--to",
    `127.0.0.1:${port}`,
  ]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    new RegExp(`Cannot connect to receiver "127.0.0.1:${port}"`),
  );
});

Deno.test("hakobu receive and migrate, two processes over loopback TCP, both verify", async () => {
  const receiver = await startReceiver();
  await withTempDir(async (dir) => {
    const mig = await hakobu([
      "migrate",
      "--insecure-plain",
      "--from",
      "sim:postgres",
      "--mem",
      "32MiB",
      "--to",
      `127.0.0.1:${receiver.port}`,
      "--report",
      `${dir}/r.json`,
      "--quiet",
    ]);
    assert.equal(mig.code, 0, mig.stderr);
    assert.match(mig.stdout, /VERIFIED/);
    const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(report.verified, true);
    const done = await receiver.finished();
    assert.equal(done.code, 0, done.stderr);
    const verdict = JSON.parse(
      done.stdout.split("\n").filter((l) => l.startsWith("{"))[0],
    );
    assert.equal(verdict.verified, true);
    assert.equal(verdict.digest, report.digest);
  });
});

Deno.test("deno task demo: 1 GiB memcached VM migrates between two processes and verifies", async () => {
  await withTempDir(async (dir) => {
    const r = await runScript(DEMO, ["--report", `${dir}/demo.json`]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(await Deno.readTextFile(`${dir}/demo.json`));
    assert.equal(report.verified, true);
    assert.equal(report.memoryBytes, 2 ** 30);
    for (const key of ["totalTimeMs", "downtimeMs", "wireBytes", "rawBytes"]) {
      assert.equal(typeof report[key], "number", key);
      assert.ok(report[key] > 0, key);
    }
    assert.ok(Array.isArray(report.rounds) && report.rounds.length >= 2);
    assert.ok(
      report.wireBytes < report.rawBytes,
      "memcached memory is mostly zero pages",
    );
    assert.match(r.stderr, /receiver process verified/);
  });
});

Deno.test("hakobu migrate --from qemu: names a QMP socket that is not there", async () => {
  const r = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "qemu:/nonexistent/qmp.sock",
    "--to",
    "127.0.0.1:1",
  ]);
  assert.notEqual(r.code, 0);
  assert.match(
    r.stderr,
    /Cannot connect to QMP socket "\/nonexistent\/qmp.sock"/,
  );
});

Deno.test("hakobu xen migrate: a broken policy file exits 2, off a dom0 it exits 1 naming the domain", async () => {
  const bad = await hakobu([
    "xen",
    "migrate",
    "guest",
    "--policy",
    "no/such/policy.ts",
  ]);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /Cannot load policy "no\/such\/policy.ts": file not found/,
  );
  // this machine is no dom0: xl (if installed) cannot reach a hypervisor
  const off = await hakobu(["xen", "migrate", "guest"]);
  assert.equal(off.code, 1, off.stderr);
  assert.match(off.stderr, /^hakobu: Cannot migrate domain "guest": /m);
});

Deno.test("hakobu migrate --from xen:DOMAIN runs the xen backend: off a dom0 it exits 1 naming the domain; a bad target names the xen forms", async () => {
  const off = await hakobu([
    "migrate",
    "--from",
    "xen:guest",
    "--to",
    "localhost",
  ]);
  assert.equal(off.code, 1, off.stderr);
  assert.match(off.stderr, /^hakobu: Cannot migrate domain "guest": /m);
  const bad = await hakobu([
    "migrate",
    "--from",
    "xen:guest",
    "--to",
    "two words",
  ]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(
    bad.stderr,
    /Cannot parse destination "two words" of a xen source: expected HOST \(ssh HOST xl migrate-receive/,
  );
});
