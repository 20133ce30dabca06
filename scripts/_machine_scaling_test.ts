import assert from "node:assert/strict";
import { hasZstdCli, scalingCurve, timeProcesses } from "./_machine_scaling.ts";

Deno.test("scalingCurve: k × t(1) / t(k) from the medians", () => {
  const curve = scalingCurve([[100, 110, 90], [140, 150, 130], [400]]);
  assert.deepEqual(curve.map((p) => p.processes), [1, 2, 3]);
  assert.deepEqual(curve.map((p) => p.ms), [100, 140, 400]);
  assert.deepEqual(curve.map((p) => p.speedup), [1, 200 / 140, 300 / 400]);
});

Deno.test("timeProcesses runs k zstd -1 at once and fails with zstd's own message", async () => {
  assert.equal(await hasZstdCli(), true, "CI installs zstd");
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeFile(file, new Uint8Array(1 << 20).fill(7));
    for (const k of [1, 3]) assert.ok((await timeProcesses(file, k)) > 0);
    await assert.rejects(
      () => timeProcesses(`${file}.missing`, 2),
      /zstd -1 .*\.missing failed: .*No such file/,
    );
  } finally {
    await Deno.remove(file);
  }
});
