/**
 * The source's lead over the destination (HELLO progressBytes, PROGRESS): a
 * stream tunnel reads its hypervisor's stream at most `maxLeadBytes` beyond
 * what the receiver reported written, so what is in flight when the
 * hypervisor stops its guest stays bounded.
 */

import assert from "node:assert/strict";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import { sendStream } from "./send.ts";

const CHUNK = 16 << 10;

/** The fixture in 16 KiB chunks, read only on demand; counts what was read. */
function countedSource(bytes: Uint8Array): {
  stream: ReadableStream<Uint8Array>;
  read: () => number;
} {
  let at = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (at >= bytes.length) return c.close();
      c.enqueue(bytes.slice(at, at + CHUNK));
      at += CHUNK;
    },
  }, { highWaterMark: 0 });
  return { stream, read: () => Math.min(at, bytes.length) };
}

/** A destination that takes `open` bytes, then blocks until `release()`. */
function gatedDestination(open: number): {
  out: WritableStream<Uint8Array>;
  written: () => number;
  release: () => void;
  blocked: Promise<void>;
} {
  let written = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let blockedNow!: () => void;
  const blocked = new Promise<void>((r) => blockedNow = r);
  const out = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (written + chunk.length > open) {
        blockedNow();
        await gate;
      }
      written += chunk.length;
    },
  }, { highWaterMark: 1 });
  return { out, written: () => written, release, blocked };
}

async function run(maxLeadBytes: number): Promise<{
  readWhileBlocked: number;
  writtenWhileBlocked: number;
  verified: boolean;
}> {
  const fixture = firmwareStream();
  const source = countedSource(fixture);
  const dest = gatedDestination(64 << 10);
  const [a, b] = memoryDuplex();
  const receiving = receiveStream(b, {
    format: "qemu",
    out: dest.out,
    // a deadline far past the test's waits
    frameTimeoutMs: 60_000,
  });
  const sending = sendStream(source.stream, a, {
    format: qemuFormat,
    codecs: [{ name: "zero" }],
    channels: 1,
    maxLeadBytes,
  });
  await dest.blocked;
  // Give the sender every chance to read on while the destination waits.
  await new Promise((r) => setTimeout(r, 300));
  const readWhileBlocked = source.read();
  const writtenWhileBlocked = dest.written();
  dest.release();
  const [sent, received] = await Promise.all([sending, receiving]);
  assert.equal(
    received.streamBytes,
    fixture.length,
    "the whole stream rebuilt",
  );
  return {
    readWhileBlocked,
    writtenWhileBlocked,
    verified: sent.verified && received.verified,
  };
}

Deno.test("stream lead: with a destination that stops taking bytes, the source stops reading its hypervisor maxLeadBytes beyond what was written, then ends verified", async () => {
  const lead = 96 << 10;
  const r = await run(lead);
  assert.equal(r.verified, true);
  // One PROGRESS every quarter of the lead, one read-ahead chunk and one
  // chunk being handled may come on top of the lead itself.
  const bound = r.writtenWhileBlocked + lead + lead / 4 + 2 * CHUNK;
  assert.ok(
    r.readWhileBlocked <= bound,
    `read ${r.readWhileBlocked} bytes of the stream while the destination held at ${r.writtenWhileBlocked}: ` +
      `more than the lead allows (${bound})`,
  );
});

Deno.test("stream lead: with maxLeadBytes 0 the source reads on while the destination waits (the bound above is what stops it)", async () => {
  const r = await run(0);
  assert.equal(r.verified, true);
  assert.ok(
    r.readWhileBlocked > r.writtenWhileBlocked + (192 << 10),
    `unbounded, the source read ${r.readWhileBlocked} bytes with ${r.writtenWhileBlocked} written`,
  );
});

Deno.test("stream lead: maxLeadBytes must be a whole number ≥ 0", async () => {
  const [a] = memoryDuplex();
  await assert.rejects(
    sendStream(new ReadableStream(), a, {
      format: qemuFormat,
      maxLeadBytes: -1,
    }),
    /maxLeadBytes must be a whole number of bytes ≥ 0 \(0: no bound\), got -1/,
  );
});
