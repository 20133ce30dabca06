import assert from "node:assert/strict";
import { concatBytes } from "./bytes.ts";

Deno.test("concatBytes joins in order into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const out = concatBytes([a, new Uint8Array(0), new Uint8Array([3])]);
  assert.deepEqual([...out], [1, 2, 3]);
  out[0] = 9;
  assert.equal(a[0], 1);
  assert.equal(concatBytes([]).length, 0);
});
