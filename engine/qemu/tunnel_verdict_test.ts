/**
 * The tunnel sender decides "verified" itself: it compares the receiver's
 * digest of the rebuilt stream with its own digest of QEMU's stream, and
 * never copies the receiver's flag.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MigrationError } from "../errors.ts";
import { lyingReceiver } from "../wire/_lying_receiver.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { firmwareStream } from "./stream/_fixture.ts";
import { receiveQemuStream, sendQemuStream } from "./tunnel.ts";
import { FrameType } from "../wire/frame.ts";

const fixture = firmwareStream();
const fixtureSha = createHash("sha256").update(fixture).digest("hex");

Deno.test("tunnel verdict: both sides report the same SHA-256, the stream's own, each compared on its side", async () => {
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
  const wrong = "ab".repeat(32);
  const lie = lyingReceiver(b, {
    endType: FrameType.STREAM_END,
    digest: wrong,
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
