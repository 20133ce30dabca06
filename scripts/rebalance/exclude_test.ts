import assert from "node:assert/strict";
import { excludeReason, ExcludeRuleError } from "./exclude.ts";

Deno.test("excludeReason: exact names, globs and tags; the first rule that matches is named", () => {
  const rules = { names: ["db1", "cache-?", "big*"], tags: ["pinned", "gpu"] };
  assert.equal(excludeReason({ name: "db1" }, rules), 'excluded by name "db1"');
  assert.equal(excludeReason({ name: "db10" }, rules), null); // anchored
  assert.equal(
    excludeReason({ name: "cache-a" }, rules),
    'excluded: its name matches "cache-?"',
  );
  assert.equal(excludeReason({ name: "cache-ab" }, rules), null);
  assert.equal(
    excludeReason({ name: "bigdata" }, rules),
    'excluded: its name matches "big*"',
  );
  assert.equal(
    excludeReason({ name: "web", tags: ["gpu", "pinned"] }, rules),
    'excluded: it is tagged "pinned"',
  );
  assert.equal(excludeReason({ name: "web", tags: ["web"] }, rules), null);
  assert.equal(excludeReason({ name: "web" }, {}), null);
});

Deno.test("excludeReason: glob characters other than * and ? are literal", () => {
  assert.equal(
    excludeReason({ name: "a.b" }, { names: ["a.b"] }) !== null,
    true,
  );
  assert.equal(excludeReason({ name: "axb" }, { names: ["a.b"] }), null);
  assert.equal(
    excludeReason({ name: "a_b-c" }, { names: ["a_b-*"] }) !== null,
    true,
  );
});

Deno.test("excludeReason refuses empty rules", () => {
  assert.throws(
    () => excludeReason({ name: "a" }, { names: [""] }),
    (e) => e instanceof ExcludeRuleError && e.field === "names",
  );
  assert.throws(
    () => excludeReason({ name: "a" }, { tags: [""] }),
    (e) => e instanceof ExcludeRuleError && e.field === "tags",
  );
});
