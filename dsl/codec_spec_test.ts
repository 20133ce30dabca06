import assert from "node:assert/strict";
import { codec } from "./codec_spec.ts";

Deno.test("codec helpers build frozen specs", () => {
  assert.deepEqual(codec.raw(), { name: "raw" });
  assert.deepEqual(codec.zero(), { name: "zero" });
  assert.ok(Object.isFrozen(codec.zero()));
  const named = codec.named("zstd", { level: 1 });
  assert.deepEqual(named, { name: "zstd", options: { level: 1 } });
  assert.ok(Object.isFrozen(named.options));
});

Deno.test("codec.named copies its options", () => {
  const options = { level: 1 };
  const spec = codec.named("zstd", options);
  options.level = 9;
  assert.deepEqual(spec.options, { level: 1 });
});

Deno.test("codec.chain keeps order and flattens nested chains", () => {
  const head = codec.chain(codec.zero());
  const chain = codec.chain(head, codec.named("lz4"), codec.raw());
  assert.deepEqual(chain.map((c) => c.name), ["zero", "lz4", "raw"]);
  assert.ok(Object.isFrozen(chain));
});
