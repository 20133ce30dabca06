/**
 * Pipeline overhead: a migration of an idle VM with the `raw` codec over a
 * paced 1 Gbit/s loopback link, against the paced link alone moving the same
 * bytes: the same number of wire bytes, in frame-sized writes, through the
 * same pacer onto a loopback TCP socket, read to the end by a receiver that
 * answers one byte once it has them all (as READY ends a migration's last
 * round). The ratio `deno bench` prints is the pipeline's efficiency (1.00x
 * would be a perfect pipeline). A second group shows the unpaced pipeline's
 * throughput.
 *
 *   deno bench -A engine/precopy_bench.ts
 */

import { codec, compile, Gbit, MiB, policy, when } from "../dsl/mod.ts";
import { encodeFrame, FrameType } from "./wire/mod.ts";
import { migrate } from "./precopy.ts";
import { receiveMigration } from "./receiver.ts";
import { SimMemorySink, SimVm } from "./sim/mod.ts";
import { Pacer } from "./transport/pacer.ts";

const MEMORY = MiB(64);
const PAGES_PER_FRAME = 256;

const vm = await SimVm.create({
  memoryBytes: MEMORY,
  workload: "idle",
  seed: 1,
  dirtyRate: 0,
});

async function migrateOnce(bandwidth: number | null): Promise<number> {
  const plan = compile(
    policy("bench-raw").codec([codec.raw()]).switchover(when.rounds(1))
      .bandwidth(bandwidth).batchPages(
        PAGES_PER_FRAME,
      ),
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const receiving = (async () => {
    const conn = await listener.accept();
    try {
      return await receiveMigration(conn, {
        createSink: (h) =>
          new SimMemorySink({
            pageSize: h.pageSize,
            pageCount: h.memoryBytes / h.pageSize,
          }),
      });
    } finally {
      try {
        conn.close();
      } catch { /* the receiver already closed it */ }
    }
  })();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const report = await migrate({ plan, source: vm, conn });
  try {
    conn.close();
  } catch { /* closed by the session */ }
  await receiving;
  listener.close();
  await vm.resume(); // migrate leaves the source paused; the next iteration migrates it again
  if (!report.verified) throw new Error("benchmark migration did not verify");
  return report.wireBytes;
}

// Measure the wire bytes of one migration so the link-only baseline sends exactly as much.
const wireBytes = await migrateOnce(null);
const frameBytes = encodeFrame(
  FrameType.PAGES,
  0,
  new Uint8Array(PAGES_PER_FRAME * (16 + 4096) + 8),
).length;

/**
 * Sends `total` bytes in `chunk`-sized writes through a pacer to a loopback
 * receiver that reads them all and answers one byte; resolves on that byte.
 */
async function pacedCopy(
  total: number,
  chunk: number,
  bytesPerSecond: number,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const receiving = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(1 << 20);
    let got = 0;
    while (got < total) {
      const n = await conn.read(buf);
      if (n === null) {
        throw new Error(`link closed after ${got} of ${total} bytes`);
      }
      got += n;
    }
    await conn.write(new Uint8Array([1]));
    conn.close();
  })();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const pacer = new Pacer({ bytesPerSecond });
  const frame = new Uint8Array(chunk).fill(0xa5);
  for (let sent = 0; sent < total; sent += chunk) {
    const n = Math.min(chunk, total - sent);
    await pacer.take(n);
    let off = 0;
    while (off < n) off += await conn.write(frame.subarray(off, n));
  }
  const ack = new Uint8Array(1);
  if ((await conn.read(ack)) !== 1) {
    throw new Error("no answer from the link's receiver");
  }
  conn.close();
  await receiving;
  listener.close();
}

Deno.bench("paced 1 Gbit/s link alone, same bytes through a loopback socket", {
  group: "paced",
  baseline: true,
  n: 5,
  warmup: 1,
}, async () => {
  await pacedCopy(wireBytes, frameBytes, Gbit(1));
});

Deno.bench("migration, raw codec, idle 64 MiB VM, 1 Gbit/s", {
  group: "paced",
  n: 5,
  warmup: 1,
}, async () => {
  await migrateOnce(Gbit(1));
});

Deno.bench("migration, raw codec, idle 64 MiB VM, unpaced", {
  group: "unpaced",
  n: 5,
  warmup: 1,
}, async () => {
  await migrateOnce(null);
});

globalThis.addEventListener("unload", () => {
  vm.close();
});
