/**
 * FrameReader throughput over loopback TCP with 1 MiB frames (BATCH frames
 * of a 256-page raw batch are that size).
 *
 * `deno bench -A engine/wire/frame_reader_bench.ts` (time per 64 MiB), or
 * `deno run -A engine/wire/frame_reader_bench.ts` to print MB/s.
 *
 * @module
 */

import { FrameType } from "./frame.ts";
import { FrameReader } from "./frame_reader.ts";
import { FrameWriter } from "./frame_writer.ts";

const FRAME = 1 << 20;

/** Sends `frames` 1 MiB frames over loopback and reads them back; returns MB/s (10^6 bytes). */
async function loopback(frames: number): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const payload = new Uint8Array(FRAME).map((_, i) => (i * 31) & 255);
  const t0 = performance.now();
  const sending = (async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const writer = new FrameWriter(conn.writable);
    for (let i = 0; i < frames; i++) {
      await writer.write(FrameType.BATCH, 1, payload);
    }
    await writer.close();
  })();
  const conn = await listener.accept();
  const reader = new FrameReader(conn.readable);
  let bytes = 0;
  for (let f = await reader.next(); f; f = await reader.next()) {
    bytes += f.payload.length;
  }
  await sending;
  listener.close();
  if (bytes !== frames * FRAME) {
    throw new Error(`Lost bytes: ${bytes} of ${frames * FRAME}`);
  }
  return bytes / 1e6 / ((performance.now() - t0) / 1000);
}

Deno.bench("FrameReader: 64 × 1 MiB frames over loopback TCP", async () => {
  await loopback(64);
});

if (import.meta.main) {
  await loopback(64); // warm up
  const runs = [];
  for (let i = 0; i < 5; i++) runs.push(await loopback(512));
  runs.sort((a, b) => a - b);
  console.log(
    `FrameReader over loopback, 1 MiB frames: median ${
      runs[2].toFixed(0)
    } MB/s ` +
      `(min ${runs[0].toFixed(0)}, max ${
        runs[4].toFixed(0)
      }; 5 runs of 512 MiB)`,
  );
}
