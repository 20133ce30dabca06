import assert from "node:assert/strict";
import { type GpuEntry, GpuError, openGpu } from "./device.ts";
import { hasAdapter } from "./_testing.ts";

/** A `navigator.gpu` stand-in that finds no adapter and counts calls. */
function noAdapter(): GpuEntry & { calls: number } {
  return {
    calls: 0,
    requestAdapter() {
      this.calls++;
      return Promise.resolve(null);
    },
  };
}

Deno.test("openGpu: prefer cpu returns null without touching WebGPU", async () => {
  const fake = noAdapter();
  const reasons: string[] = [];
  const r = await openGpu({
    prefer: "cpu",
    gpu: fake,
    onFallback: (x) => reasons.push(x),
  });
  assert.equal(r, null);
  assert.equal(fake.calls, 0);
  assert.match(reasons[0], /prefers the CPU/);
});

Deno.test("openGpu: no adapter → null with a stated reason, or GpuError with require", async () => {
  const reasons: string[] = [];
  assert.equal(
    await openGpu({
      prefer: "gpu",
      gpu: noAdapter(),
      onFallback: (x) => reasons.push(x),
    }),
    null,
  );
  assert.match(reasons[0], /no adapter/);
  await assert.rejects(
    openGpu({ prefer: "auto", require: true, gpu: noAdapter() }),
    (e: unknown) =>
      e instanceof GpuError &&
      /^No WebGPU adapter: .*mesa-vulkan-drivers.*gpu\(\{ require: false \}\)/
        .test(e.message),
  );
  await assert.rejects(openGpu({ require: true, gpu: null }), GpuError);
  const throwing: GpuEntry = {
    requestAdapter: () => Promise.reject(new Error("boom")),
  };
  assert.equal(await openGpu({ gpu: throwing }), null);
});

Deno.test({
  name:
    "openGpu: on Linux, asks for Vulkan alone unless DENO_WEBGPU_BACKEND names backends",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const before = Deno.env.get("DENO_WEBGPU_BACKEND");
    await openGpu({ prefer: "gpu", gpu: noAdapter() });
    // Set when unset (libEGL's exit-time race, see device.ts); a user's own
    // choice is kept.
    assert.equal(Deno.env.get("DENO_WEBGPU_BACKEND"), before ?? "vulkan");
  },
});

Deno.test({
  name: "openGpu: the adapter here opens with the kernels' limits raised",
  ignore: !hasAdapter,
  async fn() {
    const g = await openGpu({ prefer: "gpu", require: true });
    assert.ok(g);
    assert.ok(g.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
    assert.ok(g.limits.maxComputeWorkgroupsPerDimension >= 65535);
    assert.ok(g.adapterInfo.description.length > 0);
    if (g.adapterInfo.isFallbackAdapter) {
      assert.match(g.fallbackReason!, /software adapter/);
      // auto declines a software adapter: the CPU codecs beat it.
      const reasons: string[] = [];
      assert.equal(await openGpu({ onFallback: (x) => reasons.push(x) }), null);
      assert.match(reasons[0], /software adapter/);
    }
    g.device.destroy();
  },
});
