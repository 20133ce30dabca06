/**
 * `tunnel.ts qemu send|receive --resume-grace`: the two tunnel processes,
 * the link between them cut by the fault proxy mid-stream; the receiving
 * tunnel's stdout (QEMU's `-incoming` input) gets the captured stream byte
 * for byte, and the sender reports the resume. Without the flag the same cut
 * fails both.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { faultProxy } from "../../engine/_fault_proxy.ts";
import { firmwareStream } from "../../engine/qemu/stream/_fixture.ts";
import { ROOT } from "./_cli_testing.ts";

const TUNNEL = new URL("../tunnel.ts", import.meta.url).pathname;

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function tunnel(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TUNNEL, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/** Runs a receiving and a sending tunnel with `flags` each, through a proxy that cuts the link once. */
async function run(flags: string[]) {
  const fixture = firmwareStream();
  const port = freePort();
  const proxy = faultProxy(port, [
    { kind: "cut", direction: "up", afterBytes: 60_000 },
    null,
  ]);
  const receiver = tunnel([
    "qemu",
    "receive",
    "--listen",
    `127.0.0.1:${port}`,
    "--insecure-plain",
    ...flags,
  ]);
  receiver.stdin.close();
  const sender = tunnel([
    "qemu",
    "send",
    "--to",
    `127.0.0.1:${proxy.port}`,
    "--insecure-plain",
    "--codecs",
    "zero",
    "--channels",
    "2",
    // slow enough for the cut to come mid-stream
    "--bandwidth",
    "400000",
    ...flags,
  ]);
  const w = sender.stdin.getWriter();
  await w.write(fixture);
  await w.close();
  const [r, s] = await Promise.all([receiver.output(), sender.output()]);
  await proxy.close();
  const dec = new TextDecoder();
  return {
    fixture,
    proxy,
    receiver: { code: r.code, stdout: r.stdout, stderr: dec.decode(r.stderr) },
    sender: { code: s.code, stderr: dec.decode(s.stderr) },
  };
}

Deno.test({
  name:
    "tunnel --resume-grace: a link cut mid-stream between the two tunnel processes resumes, and QEMU's input is the captured stream byte for byte",
  sanitizeResources: false,
  fn: async () => {
    const { fixture, proxy, receiver, sender } = await run([
      "--resume-grace",
      "20000",
    ]);
    assert.ok(proxy.fired, "the link was never cut");
    assert.equal(sender.code, 0, sender.stderr);
    assert.equal(receiver.code, 0, receiver.stderr);
    assert.ok(
      Buffer.from(receiver.stdout).equals(Buffer.from(fixture)),
      `${receiver.stdout.length} bytes on stdout, not the ${fixture.length} of the stream`,
    );
    const stats = JSON.parse(sender.stderr.trim().split("\n").at(-1)!);
    assert.equal(stats.verified, true);
    assert.equal(stats.resumes.length, 1);
    // Once, for the cut: the session's normal end is no lost link.
    assert.equal(
      receiver.stderr.match(/link lost .*waiting for its RESUME/g)?.length,
      1,
      receiver.stderr,
    );
    assert.match(receiver.stderr, /resumed/);
    assert.equal(proxy.connections.length, 2);
  },
});

Deno.test({
  name:
    "tunnel without --resume-grace: the same cut fails both tunnel processes, and QEMU never gets the stream's end",
  sanitizeResources: false,
  fn: async () => {
    const { fixture, proxy, receiver, sender } = await run([]);
    assert.ok(proxy.fired, "the link was never cut");
    assert.equal(sender.code, 1, sender.stderr);
    assert.equal(receiver.code, 1, receiver.stderr);
    assert.ok(receiver.stdout.length <= fixture.length - 4096);
    assert.equal(proxy.connections.length, 1);
  },
});
