import assert from "node:assert/strict";
import { writeAll } from "./write_all.ts";

Deno.test("writeAll loops over short writes until every byte is out", async () => {
  const got: number[] = [];
  // a writer that takes at most 3 bytes per call
  const w = {
    write(p: Uint8Array): Promise<number> {
      const n = Math.min(3, p.length);
      got.push(...p.subarray(0, n));
      return Promise.resolve(n);
    },
  };
  const bytes = Uint8Array.from({ length: 10 }, (_, i) => i + 1);
  await writeAll(w, bytes);
  assert.deepEqual(got, [...bytes]);
  await writeAll(w, new Uint8Array(0)); // nothing to write: no call
  assert.equal(got.length, 10);
});
