import assert from "node:assert/strict";
import { freePort } from "./lab/qemu_guest.ts";

const FLOOR = new URL("./_bench_floor.ts", import.meta.url).pathname;

function receiver(addr: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FLOOR, "receive", addr],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** 2.5 MiB: text, random bytes and zeros, so chunks compress differently and the last is partial. */
function sample(): Uint8Array {
  const out = new Uint8Array(5 << 19);
  const text = new TextEncoder().encode(
    Array.from({ length: 60000 }, (_, i) => `${i}\n`).join(""),
  );
  out.set(text.subarray(0, 1 << 20));
  crypto.getRandomValues(out.subarray(1 << 20, (1 << 20) + 65536));
  return out;
}

Deno.test("the bench floor carries a stream byte for byte, compressed", async () => {
  const addr = `127.0.0.1:${freePort()}`;
  const recv = receiver(addr);
  const received = new Response(recv.stdout).bytes();
  const send = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", FLOOR, "send", addr],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const input = sample();
  const w = send.stdin.getWriter();
  await w.write(input);
  await w.close();
  const sent = await send.output();
  const status = await recv.status;
  await recv.stderr.cancel();
  assert.equal(sent.code, 0, new TextDecoder().decode(sent.stderr));
  assert.equal(status.code, 0);
  const out = await received;
  assert.equal(out.length, input.length);
  assert.ok(out.every((b, i) => b === input[i]), "output differs from input");
  const stats = JSON.parse(new TextDecoder().decode(sent.stderr).trim());
  assert.equal(stats.streamBytes, input.length);
  assert.ok(
    stats.wireBytes < input.length / 2,
    `wire ${stats.wireBytes} bytes`,
  );
});

for (
  const [name, bytes, message] of [
    ["a chunk header beyond the bounds", [
      0xff,
      0xff,
      0xff,
      0x7f,
      0,
      0,
      0x10,
      0,
    ], /Bad chunk header/],
    [
      "a stream cut inside a chunk",
      [16, 0, 0, 0, 4, 0, 0, 0, 1, 2],
      /ended inside a chunk/,
    ],
    [
      "a chunk that is not zstd",
      [4, 0, 0, 0, 4, 0, 0, 0, 1, 2, 3, 4],
      /decompress a chunk of 4 bytes/,
    ],
  ] as const
) {
  Deno.test(`the bench floor's receiver refuses ${name}`, async () => {
    const addr = `127.0.0.1:${freePort()}`;
    const recv = receiver(addr);
    const [host, port] = addr.split(":");
    let conn: Deno.Conn | undefined;
    for (let i = 0; !conn; i++) {
      try {
        conn = await Deno.connect({ hostname: host, port: Number(port) });
      } catch (e) {
        if (i > 200) throw e;
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    await conn.write(new Uint8Array(bytes));
    conn.close();
    const out = await recv.output();
    assert.notEqual(out.code, 0);
    assert.match(new TextDecoder().decode(out.stderr), message);
    assert.equal(out.stdout.length, 0);
  });
}
