import assert from "node:assert/strict";
import { hex, memoryDigest } from "../digest.ts";
import { SimError } from "./errors.ts";
import { SimMemorySink } from "./sim_sink.ts";

Deno.test("SimMemorySink: writes pages and digests the image", async () => {
  const sink = SimMemorySink.create({ pageSize: 4096, pageCount: 4 });
  assert.equal(sink.state, "receiving");
  const expected = new Uint8Array(4 * 4096);
  const page = new Uint8Array(4096).fill(0xab);
  sink.writePage(2, page);
  expected.set(page, 2 * 4096);
  assert.equal(sink.pagesWritten, 1);
  assert.deepEqual(sink.memory, expected);
  assert.equal(
    hex((await sink.digest()).ranges),
    hex((await memoryDigest(expected)).ranges),
  );
  await sink.commit();
  assert.equal(sink.state, "committed");
  assert.throws(
    () => sink.writePage(0, page),
    (e: unknown) => e instanceof SimError && e.field === "state",
  );
  await assert.rejects(sink.discard(), SimError);
});

Deno.test("SimMemorySink: refuses a pfn out of range or a page of the wrong length", () => {
  const sink = new SimMemorySink({ pageSize: 4096, pageCount: 4 });
  const page = new Uint8Array(4096).fill(1);
  for (const pfn of [4, -1, 1.5, NaN, 2 ** 32]) {
    assert.throws(() => sink.writePage(pfn, page), (e: unknown) => {
      assert.ok(e instanceof SimError);
      assert.equal(e.field, "pfn");
      assert.match(e.message, /^Page ".*" out of range: the sink has 4 pages$/);
      return true;
    });
  }
  for (const len of [0, 4095, 4097, 8192]) {
    assert.throws(
      () => sink.writePage(0, new Uint8Array(len)),
      (e: unknown) => {
        assert.ok(e instanceof SimError);
        assert.equal(e.field, "page");
        assert.match(
          e.message,
          new RegExp(
            `^Page "0" has wrong length "${len}": expected 4096 bytes$`,
          ),
        );
        return true;
      },
    );
  }
  assert.equal(sink.pagesWritten, 0);
  assert.ok(
    sink.memory.every((b) => b === 0),
    "a refused write changed memory",
  );
  assert.throws(
    () => new SimMemorySink({ pageSize: 0, pageCount: 4 }),
    SimError,
  );
  assert.throws(
    () => new SimMemorySink({ pageSize: 4096, pageCount: -1 }),
    SimError,
  );
});

Deno.test("SimMemorySink: discard drops the memory and is final", async () => {
  const sink = new SimMemorySink({ pageSize: 4096, pageCount: 4 });
  sink.writePage(0, new Uint8Array(4096).fill(9));
  await sink.discard();
  assert.equal(sink.state, "discarded");
  assert.equal(sink.memory.length, 0);
  await sink.discard();
  await assert.rejects(sink.digest(), SimError);
  await assert.rejects(sink.commit(), SimError);
  assert.throws(() => sink.writePage(0, new Uint8Array(4096)), SimError);
});

Deno.test("SimMemorySink: a zero page over earlier non-zero content is written, not skipped", async () => {
  const sink = new SimMemorySink({ pageSize: 4096, pageCount: 4 });
  sink.writePage(1, new Uint8Array(4096)); // fresh memory: skipped, still reads zero
  assert.ok(sink.readPage(1).every((b) => b === 0));
  sink.writePage(2, new Uint8Array(4096).fill(9));
  sink.writePage(2, new Uint8Array(4096));
  assert.ok(
    sink.readPage(2).every((b) => b === 0),
    "the zero page must overwrite the old content",
  );
  assert.equal(sink.pagesWritten, 3);
  await sink.discard();
});
