/**
 * The Xen tunnel sender decides "verified" itself: it compares the
 * receiver's digest of the rebuilt stream with its own digest of xl's
 * stream, and never copies the receiver's flag.
 */

import assert from "node:assert/strict";
import { hex } from "../digest.ts";
import { xxh3x128 } from "../../ffi/xxhash.ts";
import { MigrationError } from "../errors.ts";
import { lyingReceiver } from "../wire/_lying_receiver.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { buildStream, wrapLikeXl } from "./stream/_test_util.ts";
import { sendXenStream } from "./tunnel.ts";
import { FrameType } from "../wire/frame.ts";

Deno.test("xen tunnel verdict: a receiver that says verified about other bytes fails the sender", async () => {
  const stream = wrapLikeXl(
    buildStream({ seed: 3, pfns: 40, rounds: 2 }).bytes,
  );
  const digest = new Uint8Array(16);
  xxh3x128(stream, digest, 0);
  const sha = hex(digest);
  const [a, b] = memoryDuplex();
  const wrong = "cd".repeat(16);
  const lie = lyingReceiver(b, {
    endType: FrameType.STREAM_END,
    digest: wrong,
    verify: "xxh3-128",
    beforeResult: [FrameType.BACK_END],
  });
  await assert.rejects(
    sendXenStream(ReadableStream.from([stream]), new WritableStream(), a, {
      codecs: [{ name: "zero" }],
      maxPages: 4096,
    }),
    (e: unknown) =>
      e instanceof MigrationError &&
      e.message.includes(wrong) && e.message.includes(sha) &&
      /differs/.test(e.message),
  );
  await lie;
});
