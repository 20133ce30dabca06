/**
 * `hakobu tls init`, `receive --tls-dir` and `migrate --tls-dir` as a user
 * runs them: certificates and pre-shared keys that verify, an identity the
 * receiver does not admit, and the refusal to run plain unless asked.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hakobu, startReceiver, withTempDir } from "./_cli_testing.ts";

const MIGRATE = [
  "migrate",
  "--from",
  "sim:postgres",
  "--mem",
  "16MiB",
  "--quiet",
  "--json",
];

Deno.test("hakobu tls init, then a migration over TLS with a client certificate and one with a pre-shared key", async () => {
  await withTempDir(async (dir) => {
    const creds = join(dir, "pki");
    const init = await hakobu(["tls", "init", creds, "--identity", "src-a"]);
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /wrote .*server-key\.pem/);
    assert.equal(
      (await Deno.stat(join(creds, "server-key.pem"))).mode! & 0o077,
      0,
    );
    const again = await hakobu(["tls", "init", creds]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /ca-cert\.pem already exists: not overwriting/);

    // A source that holds only the CA and the pre-shared key.
    const pskSource = join(dir, "psk-source");
    await Deno.mkdir(pskSource);
    for (const f of ["ca-cert.pem", "keys.psk"]) {
      await Deno.copyFile(join(creds, f), join(pskSource, f));
    }
    for (const [source, how] of [[creds, "certificate"], [pskSource, "psk"]]) {
      const receiver = await startReceiver([
        "--tls-dir",
        creds,
        "--tls-authz",
        "src-a",
      ]);
      const mig = await hakobu([
        ...MIGRATE,
        "--to",
        `127.0.0.1:${receiver.port}`,
        "--tls-dir",
        source,
      ]);
      assert.equal(mig.code, 0, `${how}: ${mig.stderr}`);
      const report = JSON.parse(mig.stdout);
      assert.equal(report.verified, true, how);
      const done = await receiver.finished();
      assert.equal(done.code, 0, done.stderr);
      const verdict = JSON.parse(
        done.stdout.split("\n").find((l) => l.startsWith("{"))!,
      );
      assert.equal(verdict.verified, true);
      assert.equal(verdict.identity, "src-a", how);
      assert.equal(verdict.digest, report.digest);
    }
  });
});

Deno.test("migrate --channel-connections: two channels, each on a TLS connection of its own (certificate and pre-shared key), verified on both sides", async () => {
  await withTempDir(async (dir) => {
    const creds = join(dir, "pki");
    assert.equal(
      (await hakobu(["tls", "init", creds, "--identity", "src-a"])).code,
      0,
    );
    const pskSource = join(dir, "psk-source");
    await Deno.mkdir(pskSource);
    for (const f of ["ca-cert.pem", "keys.psk"]) {
      await Deno.copyFile(join(creds, f), join(pskSource, f));
    }
    for (const [source, how] of [[creds, "certificate"], [pskSource, "psk"]]) {
      const receiver = await startReceiver([
        "--tls-dir",
        creds,
        "--tls-authz",
        "src-a",
      ]);
      const mig = await hakobu([
        ...MIGRATE,
        "--channels",
        "2",
        "--channel-connections",
        "--to",
        `127.0.0.1:${receiver.port}`,
        "--tls-dir",
        source,
      ]);
      assert.equal(mig.code, 0, `${how}: ${mig.stderr}`);
      const report = JSON.parse(mig.stdout);
      assert.equal(report.verified, true, how);
      assert.equal(report.channelConnections, true, how);
      assert.equal(report.channels, 2);
      const done = await receiver.finished();
      assert.equal(done.code, 0, done.stderr);
      const verdict = JSON.parse(
        done.stdout.split("\n").find((l) => l.startsWith("{"))!,
      );
      assert.equal(verdict.verified, true);
      assert.equal(verdict.channels, 2);
      assert.equal(verdict.digest, report.digest);
    }
  });
});

Deno.test("a source the receiver does not admit is refused by name, and the receiver serves on", async () => {
  await withTempDir(async (dir) => {
    const creds = join(dir, "pki");
    assert.equal(
      (await hakobu(["tls", "init", creds, "--identity", "src-a"])).code,
      0,
    );
    const receiver = await startReceiver([
      "--tls-dir",
      creds,
      "--tls-authz",
      "src-b,src-c",
    ]);
    const refused = await hakobu([
      ...MIGRATE,
      "--to",
      `127.0.0.1:${receiver.port}`,
      "--tls-dir",
      creds,
    ]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /refused this source: Identity "src-a" is not authorised to migrate into this receiver/,
    );
    // A plain-TCP source gets no session either.
    const plain = await hakobu([
      ...MIGRATE,
      "--to",
      `127.0.0.1:${receiver.port}`,
      "--insecure-plain",
    ]);
    assert.equal(plain.code, 1);
    // --once: the refused connections were no sessions, so it still waits.
    // Admit src-a by a PSK identity it does not hold: refused too.
    const psk = await hakobu([
      ...MIGRATE,
      "--to",
      `127.0.0.1:${receiver.port}`,
      "--tls-dir",
      creds,
      "--tls-identity",
      "src-b",
    ]);
    assert.match(psk.stderr, /has no key for identity "src-b"/);
    receiver.kill();
    const done = await receiver.finished();
    assert.match(
      done.stderr,
      /refused 127\.0\.0\.1:\d+, still listening: Refused: Identity "src-a" is not authorised/,
    );
    assert.match(done.stderr, /TLS handshake failed/);
  });
});

Deno.test("receive and migrate refuse to run without a security choice, and warn when plain", async () => {
  const recv = await hakobu(["receive", "--listen", "127.0.0.1:0", "--once"]);
  assert.notEqual(recv.code, 0);
  assert.match(
    recv.stderr,
    /No connection security chosen: pass --tls-dir DIR/,
  );
  const mig = await hakobu([
    "migrate",
    "--from",
    "sim:idle",
    "--to",
    "127.0.0.1:1",
  ]);
  assert.notEqual(mig.code, 0);
  assert.match(mig.stderr, /No connection security chosen/);
  const both = await hakobu([
    "migrate",
    "--from",
    "sim:idle",
    "--to",
    "127.0.0.1:1",
    "--insecure-plain",
    "--tls-dir",
    "/nonexistent",
  ]);
  assert.match(
    both.stderr,
    /--tls-dir and --insecure-plain exclude each other/,
  );
  const missing = await hakobu([
    "migrate",
    "--from",
    "sim:idle",
    "--to",
    "127.0.0.1:1",
    "--tls-dir",
    "/nonexistent",
  ]);
  assert.match(
    missing.stderr,
    /TLS credentials directory \/nonexistent: not found \(make one with: hakobu tls init/,
  );
  const plain = await hakobu([
    "migrate",
    "--from",
    "sim:idle",
    "--mem",
    "1MiB",
    "--to",
    "127.0.0.1:1",
    "--insecure-plain",
  ]);
  assert.match(plain.stderr, /WARNING: plain TCP \(--insecure-plain\)/);
});
