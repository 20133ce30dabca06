/**
 * The tunnel sender decides "verified" itself: it compares the receiver's
 * digest of the rebuilt stream with its own digest of QEMU's stream, and
 * never copies the receiver's flag.
 */

import assert from "node:assert/strict";
import { hex } from "../digest.ts";
import { xxh3x128 } from "../../ffi/xxhash.ts";
import { MigrationError } from "../errors.ts";
import { lyingReceiver } from "../wire/_lying_receiver.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { firmwareStream } from "./stream/_fixture.ts";
import { receiveQemuStream, sendQemuStream } from "./tunnel.ts";
import { FrameType } from "../wire/frame.ts";

const fixture = firmwareStream();
const digest = new Uint8Array(16);
xxh3x128(fixture, digest, 0); // one-shot, against the tunnels' streaming state
const fixtureSha = hex(digest);

Deno.test("tunnel verdict: both sides report the same XXH3-128, the stream's own, each compared on its side", async () => {
  const [a, b] = memoryDuplex();
  const [s, r] = await Promise.all([
    sendQemuStream(ReadableStream.from([fixture]), a, {
      codecs: [{ name: "zero" }, { name: "lz4" }],
    }),
    receiveQemuStream(b, new WritableStream()),
  ]);
  assert.equal(s.digest, fixtureSha);
  assert.equal(r.digest, fixtureSha);
  assert.equal(s.peerDigest, r.digest);
  assert.equal(r.peerDigest, s.digest);
  assert.ok(s.verified && r.verified);
});

Deno.test("tunnel verdict: a receiver that says verified about other bytes fails the sender", async () => {
  const [a, b] = memoryDuplex();
  const wrong = "ab".repeat(16);
  const lie = lyingReceiver(b, {
    endType: FrameType.STREAM_END,
    digest: wrong,
    verify: "xxh3-128",
  });
  await assert.rejects(
    sendQemuStream(ReadableStream.from([fixture]), a, {
      codecs: [{ name: "zero" }],
    }),
    (e: unknown) =>
      e instanceof MigrationError &&
      e.message.includes(wrong) && e.message.includes(fixtureSha) &&
      /differs/.test(e.message),
  );
  await lie;
});

Deno.test("tunnel verdict: a receiver that does not take the XXH3-128 stream digest (an older hakobu) is refused before any data", async () => {
  const [a, b] = memoryDuplex();
  const lie = lyingReceiver(b, {
    endType: FrameType.STREAM_END,
    digest: "ab".repeat(32),
  });
  lie.catch(() => {}); // it never sees STREAM_END: the sender aborts
  await assert.rejects(
    sendQemuStream(ReadableStream.from([fixture]), a, {
      codecs: [{ name: "zero" }],
    }),
    /Receiver did not take the "xxh3-128" stream digest: it is an older hakobu/,
  );
});
