import assert from "node:assert/strict";
import { when } from "./conditions.ts";
import { isPolicy, Policy, policy } from "./policy.ts";
import { Gbit } from "./units.ts";

Deno.test("builder methods return new policies and replace fields", () => {
  const a = policy("a");
  const b = a.maxRounds(10).maxRounds(20).bandwidth(Gbit(1));
  assert.notEqual(a, b);
  assert.equal(a.spec.maxRounds, undefined);
  assert.equal(b.spec.maxRounds, 20);
  assert.equal(b.spec.bandwidth, Gbit(1));
  assert.equal(b.name, "a");
  assert.ok(Object.isFrozen(b.spec));
});

Deno.test("gpu options merge with earlier ones", () => {
  const p = policy("g").gpu({ batch: 1024 }).gpu({ prefer: "gpu" });
  assert.deepEqual(p.spec.gpu, { batch: 1024, prefer: "gpu" });
});

Deno.test("isPolicy recognises builders, also from another copy of the module", () => {
  assert.ok(isPolicy(policy("p")));
  assert.ok(isPolicy(new Policy("p")));
  assert.ok(!isPolicy({ name: "p" }));
  assert.ok(!isPolicy(null));
  const foreign = {
    [Symbol.for("hakobu.policy")]: true,
    spec: { name: "x", gpu: {} },
  };
  assert.ok(isPolicy(foreign));
});

Deno.test("compile() on the builder compiles it", () => {
  const plan = policy("c").switchover(when.rounds(3)).compile();
  assert.equal(plan.name, "c");
  assert.equal(plan.maxRounds, 64);
});
