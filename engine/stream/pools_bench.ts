/**
 * What a resident tunnel saves by keeping its channel Workers: the same
 * small QEMU stream (the 0.5 MB firmware capture, `zero,zstd`, two channels)
 * migrated through both tunnel ends in this process, with fresh Workers per
 * migration (as the `exec:` tunnel runs, and the resident one did before)
 * and with Workers kept in a {@link ChannelPools} per side, in one run.
 *
 *   deno bench -A engine/stream/pools_bench.ts
 *
 * @module
 */

import { ChannelPools } from "../pipeline/channel_pools.ts";
import { firmwareStream } from "../qemu/stream/_fixture.ts";
import { memoryDuplex } from "../wire/duplex.ts";
import { qemuFormat } from "./qemu_format.ts";
import { receiveStream } from "./receive.ts";
import { sendStream } from "./send.ts";

const stream = firmwareStream();
const sending = new ChannelPools();
const receiving = new ChannelPools();

async function migrate(pools: boolean): Promise<void> {
  const [a, b] = memoryDuplex();
  const [s, r] = await Promise.all([
    sendStream(ReadableStream.from([stream]), a, {
      format: qemuFormat,
      codecs: [{ name: "zero" }, { name: "zstd" }],
      channels: 2,
      pools: pools ? sending : undefined,
    }),
    receiveStream(b, {
      format: "qemu",
      out: new WritableStream(),
      pools: pools ? receiving : undefined,
    }),
  ]);
  if (!s.verified || !r.verified) throw new Error("a migration failed");
}

Deno.bench("migration, fresh Workers", {
  group: "workers",
  baseline: true,
}, async () => {
  await migrate(false);
});

Deno.bench("migration, Workers kept", { group: "workers" }, async () => {
  await migrate(true);
});

globalThis.addEventListener("unload", () => {
  sending.close();
  receiving.close();
});
