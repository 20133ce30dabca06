import assert from "node:assert/strict";
import { MigrationError } from "../errors.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { FrameType } from "../wire/frame.ts";
import { FrameReader } from "../wire/frame_reader.ts";
import { FrameWriter } from "../wire/frame_writer.ts";
import {
  decodeHello,
  encodeError,
  encodeStarting,
  encodeWelcome,
  type Hello,
} from "../wire/messages.ts";
import { SourceLink, type SourceLinkOptions } from "./source_link.ts";

const HELLO: Hello = {
  protocol: 2,
  memoryBytes: 1 << 20,
  pageSize: 4096,
  codecs: [{ id: 0, name: "raw" }],
  vm: "test",
  policy: "test",
  channels: 2,
};

/** A source link over an in-memory connection, and the receiver's end as a reader and a writer. */
function pair(options: SourceLinkOptions = {}): {
  link: SourceLink;
  reader: FrameReader;
  writer: FrameWriter;
} {
  const [source, receiver] = memoryDuplex();
  return {
    link: new SourceLink(source, options),
    reader: new FrameReader(receiver.readable),
    writer: new FrameWriter(receiver.writable),
  };
}

Deno.test("SourceLink.hello runs `meanwhile` once HELLO is written, before WELCOME, and ends when both are done", async () => {
  const { link, reader, writer } = pair();
  const steps: string[] = [];
  let release!: () => void;
  const hello = link.hello(HELLO, {
    meanwhile: async () => {
      steps.push("meanwhile started");
      await new Promise<void>((r) => release = r);
      steps.push("meanwhile done");
    },
  }).then(() => steps.push("hello done"));
  const frame = await reader.next();
  assert.equal(frame?.type, FrameType.HELLO);
  // It asks for STARTING four times per reply deadline (60 s by default).
  assert.deepEqual(decodeHello(frame!.payload), {
    ...HELLO,
    keepAliveMs: 15_000,
  });
  // `meanwhile` is already running while the receiver has not answered
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(steps, ["meanwhile started"]);
  await writer.write(
    FrameType.WELCOME,
    0,
    encodeWelcome({ protocol: 2, accepted: true }),
  );
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(steps, ["meanwhile started"], "waits for `meanwhile`");
  release();
  await hello;
  assert.deepEqual(steps, [
    "meanwhile started",
    "meanwhile done",
    "hello done",
  ]);
});

Deno.test("SourceLink.hello throws the receiver's refusal once `meanwhile` is done, and `meanwhile`'s own failure first", async () => {
  {
    const { link, reader, writer } = pair();
    let ran = false;
    const hello = link.hello(HELLO, { meanwhile: () => void (ran = true) });
    await reader.next();
    await writer.write(
      FrameType.ERROR,
      0,
      encodeError({ message: "no room for 1 MiB" }),
    );
    await assert.rejects(
      hello,
      (e) =>
        e instanceof MigrationError &&
        /Receiver refused the migration: no room for 1 MiB/.test(e.message),
    );
    assert.equal(ran, true);
  }
  {
    const { link, reader, writer } = pair();
    const hello = link.hello(HELLO, {
      meanwhile: () => Promise.reject(new Error("no GPU adapter")),
    });
    await reader.next();
    await writer.write(
      FrameType.ERROR,
      0,
      encodeError({ message: "refused as well" }),
    );
    await assert.rejects(hello, /no GPU adapter/);
  }
});

Deno.test("SourceLink.hello refuses a WELCOME of another protocol, or one that does not accept", async () => {
  for (
    const [welcome, message] of [
      [
        { protocol: 1, accepted: true },
        /protocol 1, accepted true \(this source speaks protocol 2\)/,
      ],
      [{ protocol: 2, accepted: false }, /protocol 2, accepted false/],
    ] as const
  ) {
    const { link, reader, writer } = pair();
    const hello = link.hello(HELLO);
    await reader.next();
    await writer.write(FrameType.WELCOME, 0, encodeWelcome(welcome));
    await assert.rejects(() => hello, (e: unknown) => {
      assert.ok(e instanceof MigrationError);
      assert.match(
        e.message,
        /^Receiver's WELCOME does not accept this session/,
      );
      assert.match(e.message, message);
      return true;
    });
  }
});

const WELCOME = encodeWelcome({ protocol: 2, accepted: true });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("SourceLink.hello waits past its reply deadline for a receiver that keeps saying it is starting (STARTING), and asks for them in HELLO", async () => {
  const { link, reader, writer } = pair({ replyMs: 300 });
  const hello = link.hello(HELLO);
  const sent = decodeHello((await reader.next())!.payload);
  assert.equal(sent.keepAliveMs, 75);
  const t0 = performance.now();
  // 1 s of starting, 3 reply deadlines: a STARTING every 100 ms.
  for (let t = 100; t <= 1000; t += 100) {
    await sleep(100);
    await writer.write(
      FrameType.STARTING,
      0,
      encodeStarting({ elapsedMs: t }),
    );
  }
  await writer.write(FrameType.WELCOME, 0, WELCOME);
  const welcome = await hello;
  assert.equal(welcome.accepted, true);
  assert.ok(performance.now() - t0 >= 900);
});

Deno.test("SourceLink.hello fails at the reply deadline after a receiver's last STARTING, and after maxStartMs of STARTING in all", async () => {
  {
    const { link, reader, writer } = pair({ replyMs: 200 });
    const hello = link.hello(HELLO);
    await reader.next();
    await writer.write(
      FrameType.STARTING,
      0,
      encodeStarting({ elapsedMs: 50 }),
    );
    const t0 = performance.now();
    await assert.rejects(
      hello,
      /^MigrationError: The receiver said it was starting \(50 ms in\), then sent nothing for 200 ms \(the reply deadline\): it is stuck, or the link is$/,
    );
    assert.ok(performance.now() - t0 >= 150);
  }
  {
    const { link, reader, writer } = pair({ replyMs: 200, maxStartMs: 500 });
    const hello = link.hello(HELLO);
    hello.catch(() => {});
    await reader.next();
    let failed = false;
    hello.catch(() => failed = true);
    for (let t = 50; !failed && t < 5000; t += 50) {
      await sleep(50);
      await writer.write(
        FrameType.STARTING,
        0,
        encodeStarting({ elapsedMs: t }),
      )
        .catch(() => {});
    }
    await assert.rejects(
      hello,
      /^MigrationError: The receiver was still starting \d+ ms after HELLO \(at most 500 ms\): it is stuck$/,
    );
  }
});
