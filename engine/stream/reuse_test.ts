/**
 * The stream tunnel reuses its buffers (the sender's read slabs, the
 * receiver's output pieces): a reused buffer must never change bytes that
 * were already handed on and are still in use.
 */

import assert from "node:assert/strict";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import { parseQemuStream, rebuildStream } from "../qemu/stream/writer.ts";
import { RamFlag } from "../qemu/stream/parser.ts";
import { largeReads } from "../transport/read_stream.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { concatBytes } from "../bytes.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import { sendStream } from "./send.ts";

/**
 * The fixture with its first `pages` ZERO records turned into PAGE records
 * of varied bytes: megabytes of page bodies, so that output pieces and
 * read slabs come round again.
 */
function denseStream(pages: number): Uint8Array {
  let left = pages;
  let seed = 1;
  const events = parseQemuStream(firmwareStream()).map((e) => {
    if (e.kind !== "page" || !e.zero || left === 0) return e;
    left--;
    const bytes = new Uint8Array(e.headerLength + 4096);
    bytes.set(e.bytes.subarray(0, e.headerLength));
    bytes[7] = (bytes[7] & ~RamFlag.ZERO) | RamFlag.PAGE;
    // half random, half runs: every codec has something to do
    for (let i = e.headerLength; i < bytes.length; i += 2) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      bytes[i] = seed >>> 24;
    }
    return { ...e, bytes, zero: false, data: bytes.subarray(e.headerLength) };
  });
  return rebuildStream(events);
}

const stream = denseStream(3000); // ~12 MiB

/** A reader over `bytes` handing out at most `most` bytes per read, as a pipe. */
function pipeReader(bytes: Uint8Array, most: number) {
  let at = 0;
  return {
    read(p: Uint8Array): Promise<number | null> {
      const n = Math.min(p.length, most, bytes.length - at);
      if (n === 0) return Promise.resolve(null);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
  };
}

/**
 * A slow destination that keeps each chunk it is given as a view while its
 * write is pending (a few timer turns), then checks the view still holds
 * the bytes it was given; what it collects are the bytes at write time.
 */
function lendingDestination(): {
  out: WritableStream<Uint8Array>;
  bytes: () => Uint8Array;
  changed: () => number;
} {
  const copies: Uint8Array[] = [];
  let changed = 0;
  const out = new WritableStream<Uint8Array>({
    async write(view) {
      const copy = view.slice();
      copies.push(copy);
      for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 1));
      if (!view.every((b, i) => b === copy[i])) changed++;
    },
  });
  return { out, bytes: () => concatBytes(copies), changed: () => changed };
}

for (
  const [what, channels, batchPages] of [
    // the sender waits for its channels inside a chunk's pages, while its
    // next read is under way
    ["small batches", 2, 16],
    // a RECORDS frame covers megabytes: one receiver step fills several pieces
    ["4 MiB batches", 1, 1024],
  ] as const
) {
  Deno.test(`stream tunnel: reused read slabs and output pieces never change bytes still in use (${what}, ring of 2 slabs each filled by one read, slow destination)`, async () => {
    assert.ok(stream.length > 12_000_000, `${stream.length} bytes`);
    const [a, b] = memoryDuplex();
    const dest = lendingDestination();
    const [s, r] = await Promise.all([
      sendStream(
        largeReads(pipeReader(stream, 64 << 10), 64 << 10, { ring: 2 }),
        a,
        {
          format: qemuFormat,
          codecs: [{ name: "zero" }, { name: "lz4" }],
          channels,
          batchPages,
        },
      ),
      receiveStream(b, { format: "qemu", out: dest.out }),
    ]);
    assert.equal(
      dest.changed(),
      0,
      "a piece changed while its write was pending",
    );
    const got = dest.bytes();
    assert.equal(got.length, stream.length);
    assert.ok(got.every((x, i) => x === stream[i]), "rebuilt stream differs");
    assert.ok(s.verified && r.verified);
    assert.equal(s.pages, r.pages);
    assert.ok(s.pages >= 3000);
  });
}
