import assert from "node:assert/strict";
import { BufferShelf } from "./_buffer_shelf.ts";

Deno.test("BufferShelf: the first kept buffer large enough is taken off, at most max are kept", () => {
  const shelf = new BufferShelf(2);
  const small = new ArrayBuffer(4096);
  const large = new ArrayBuffer(8192);
  shelf.keep(small);
  shelf.keep(large);
  shelf.keep(new ArrayBuffer(1 << 20)); // full: dropped
  assert.equal(shelf.take(1 << 20), undefined);
  assert.equal(shelf.take(5000), large);
  assert.equal(shelf.take(5000), undefined);
  assert.equal(shelf.take(1), small);
  assert.equal(shelf.take(1), undefined);
});
