/**
 * `hakobu receive --gpu`: the receiver decodes a sim migration's rle pages
 * on the GPU and its result line says how many; bad settings fail before
 * it listens.
 */

import assert from "node:assert/strict";
import { codec, compile, policy, when } from "../../dsl/mod.ts";
import { MiB } from "../../dsl/units.ts";
import { withDeadline } from "../../engine/_precopy_testing.ts";
import { simBackend } from "../../engine/backend/sim.ts";
import { GpuError } from "../../engine/gpu/device.ts";
import { hasAdapter } from "../../engine/gpu/_testing.ts";
import { INSECURE_PLAIN } from "../../engine/transport/secure/mod.ts";
import { receiveCommand, type ReceiveCommandOptions } from "./receive.ts";

const DEADLINE_MS = 90_000;

/** One sim migration over [zero, rle, raw] into `receiveCommand --once` with `gpu`; its printed lines. */
async function receiveWith(gpu: ReceiveCommandOptions["gpu"]) {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    let listening!: (a: Deno.NetAddr) => void;
    const addr = new Promise<Deno.NetAddr>((r) => listening = r);
    const received = receiveCommand({
      listen: "127.0.0.1:0",
      security: INSECURE_PLAIN,
      once: true,
      maxMemoryBytes: MiB(64),
      gpu,
      onListening: listening,
    });
    const plan = compile(
      policy("cli-gpu").codec([codec.zero(), codec.rle(), codec.raw()])
        .channels(2).switchover(when.rounds(2)),
    );
    const report = await withDeadline(
      simBackend.open("memcached", { memoryBytes: MiB(8) })
        .migrate(plan, `127.0.0.1:${(await addr).port}`, {
          security: { insecurePlain: true },
        }),
      "the sim migration",
      DEADLINE_MS,
    );
    const code = await withDeadline(received, "the receiver", DEADLINE_MS);
    return { report, code, lines };
  } finally {
    console.log = log;
  }
}

Deno.test({
  name:
    "hakobu receive --gpu gpu decodes the rle pages on the GPU and says how many",
  ignore: !hasAdapter,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { report, code, lines } = await receiveWith({ prefer: "gpu" });
    assert.ok(report.verified, report.outcome);
    assert.equal(code, 0);
    const rle = report.rounds.reduce((n, r) => n + (r.codecMix.rle ?? 0), 0);
    assert.ok(rle > 0, "the source sent no rle page");
    assert.ok(
      lines.some((l) => l.startsWith(`  GPU: decoded ${rle} pages on `)),
      lines.join("\n"),
    );
  },
});

Deno.test({
  name:
    "hakobu receive --gpu cpu (the default) decodes on the CPU and prints no GPU line",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { report, code, lines } = await receiveWith({ prefer: "cpu" });
    assert.ok(report.verified, report.outcome);
    assert.equal(code, 0);
    assert.ok(lines.some((l) => l.startsWith("VERIFIED:")), lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes("GPU:")), lines.join("\n"));
  },
});

Deno.test("hakobu receive refuses bad GPU settings before it listens", async () => {
  await assert.rejects(
    receiveCommand({
      listen: "127.0.0.1:0",
      security: INSECURE_PLAIN,
      once: true,
      maxMemoryBytes: MiB(64),
      gpu: { prefer: "gpu", batch: 0 },
      onListening: () => assert.fail("it listened"),
    }),
    (e) =>
      e instanceof GpuError &&
      /Bad receiver GPU batch "0": expected a whole number of pages from 1 to 1048576/
        .test(e.message),
  );
});
