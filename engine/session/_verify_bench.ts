/**
 * Verification time of a native migration: a sim VM of `--gib` GiB (random
 * content, no writes during the migration) migrated over an in-memory
 * duplex into a sim memory sink, `--runs` times; prints each report's
 * `verifyMs` (READY to RESULT: both sides hash, compare, answer) and the
 * median. Run: `deno run -A engine/session/_verify_bench.ts --gib 1 --runs 3`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { memoryDuplex } from "../wire/duplex.ts";
import { migrate } from "../precopy.ts";
import { policy, when } from "../../dsl/mod.ts";
import { SimMemorySink } from "../sim/sim_sink.ts";
import { SimVm } from "../sim/sim_vm.ts";
import { memoryMode } from "./memory_mode.ts";
import { receiveSession } from "./receive_core.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    gib: { type: "string", default: "1" },
    runs: { type: "string", default: "3" },
    channels: { type: "string", default: "2" },
  },
});
const bytes = Number(values.gib) * 1024 ** 3;
const channels = Number(values.channels);
const times: number[] = [];
for (let i = 0; i < Number(values.runs); i++) {
  await using vm = await SimVm.create({
    memoryBytes: bytes,
    workload: "random",
    dirtyRate: 0,
  });
  const [conn, destination] = memoryDuplex();
  const received = receiveSession(
    destination,
    memoryMode({
      createSink: (h) =>
        new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
    }),
  );
  const plan = policy("bench").switchover(when.rounds(1)).compile();
  const report = await migrate({ plan, source: vm, conn, channels });
  await received;
  if (!report.verified) throw new Error(`not verified: ${report.outcome}`);
  times.push(report.verifyMs);
  console.log(
    `run ${i + 1}: verifyMs ${report.verifyMs.toFixed(1)} (total ${
      report.totalTimeMs.toFixed(0)
    } ms)`,
  );
}
times.sort((a, b) => a - b);
console.log(
  `median verifyMs over ${times.length} runs of ${values.gib} GiB, ${channels} channels: ${
    times[Math.floor(times.length / 2)].toFixed(1)
  }`,
);
