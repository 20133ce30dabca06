import assert from "node:assert/strict";
import type { Codec } from "../codecs/codec.ts";
import { codecByName } from "../codecs/registry.ts";
import { MigrationError, WireError } from "../errors.ts";
import { DecoderTable, negotiateCodecs } from "./decoder_table.ts";

const ref = (name: string) => ({ id: codecByName(name).id, name });

Deno.test("negotiateCodecs maps HELLO's codecs by id from the registry", () => {
  const m = negotiateCodecs([ref("raw"), ref("zero"), ref("lz4")]);
  assert.deepEqual([...m.keys()], [0, 1, 5]);
  assert.equal(m.get(5), codecByName("lz4"));
});

Deno.test("negotiateCodecs refuses unknown, renamed and repeated codecs", () => {
  assert.throws(
    () => negotiateCodecs([{ id: 99, name: "lz9" }]),
    (e) =>
      e instanceof MigrationError &&
      /Unknown codec "lz9" with id 99: this receiver knows .*"raw" \(0\)/.test(
        e.message,
      ),
  );
  assert.throws(
    () => negotiateCodecs([{ id: 0, name: "zero" }]),
    /Unknown codec "zero" with id 0: .*; its id 0 is "raw"/,
  );
  assert.throws(
    () => negotiateCodecs([ref("raw"), ref("raw")]),
    /"raw" with id 0 is listed twice in HELLO/,
  );
  // a receiver with its own codec list knows only those
  const local: Codec[] = [codecByName("raw")];
  assert.throws(
    () => negotiateCodecs([ref("zero")], local),
    /this receiver knows "raw" \(0\)$/,
  );
});

function table(current?: (pfn: number) => Uint8Array): DecoderTable {
  return new DecoderTable(
    negotiateCodecs([ref("raw"), ref("zero"), ref("dedup")]),
    {
      pageSize: 4096,
      pageCount: 16,
      current,
    },
  );
}

Deno.test("DecoderTable creates a decoder per CODEC frame and refuses the rest", () => {
  const t = table();
  assert.throws(
    () => t.decoderFor(0, 3, 77),
    (e) =>
      e instanceof WireError && e.offset === 77 &&
      /Page 3 uses codec "raw" \(id 0\) before its CODEC frame/.test(e.message),
  );
  assert.equal(
    t.announce({ id: 0, name: "raw", options: {} }, 10),
    codecByName("raw"),
  );
  const page = new Uint8Array(4096).fill(7);
  const out = new Uint8Array(4096);
  t.decoderFor(0, 3).decode(3, page, out);
  assert.deepEqual(out, page);
  assert.throws(
    () => t.announce({ id: 0, name: "raw", options: {} }, 20),
    (e) =>
      e instanceof WireError && e.offset === 20 &&
      /a second time/.test(e.message),
  );
  assert.throws(
    () => t.announce({ id: 5, name: "lz4", options: {} }, 30),
    /codec "lz4" with id 5, which HELLO did not negotiate/,
  );
  assert.throws(
    () => t.announce({ id: 1, name: "raw", options: {} }, 40),
    /codec "raw" with id 1, which HELLO did not negotiate/,
  );
  assert.equal(t.nameOf(1), "zero");
  assert.equal(t.nameOf(9), "id 9");
  assert.equal(t.negotiated.size, 3);
});

Deno.test("DecoderTable passes applied pages to the decoders that keep state", () => {
  const t = table();
  const dedup = codecByName("dedup");
  t.announce({ id: dedup.id, name: "dedup", options: {} }, 0);
  const d = t.decoderFor(dedup.id, 0);
  assert.ok(d.applied, "dedup's decoder keeps state");
  let seen = 0;
  const original = d.applied!.bind(d);
  d.applied = (pfn, page, id) => {
    seen++;
    original(pfn, page, id);
  };
  t.applied(4, new Uint8Array(4096).fill(1), 0);
  assert.equal(seen, 1);
});

Deno.test("DecoderTable.readsCurrent turns on with the first codec that decodes against current pages", () => {
  const t = new DecoderTable(
    negotiateCodecs([ref("raw"), ref("lz4"), ref("delta")]),
    { pageSize: 4096, pageCount: 16, current: () => new Uint8Array(4096) },
  );
  assert.equal(t.readsCurrent, false);
  t.announce({ id: 0, name: "raw", options: {} }, 0);
  t.announce({ id: 5, name: "lz4", options: {} }, 0);
  assert.equal(t.readsCurrent, false);
  t.announce({ id: 3, name: "delta", options: {} }, 0);
  assert.equal(t.readsCurrent, true);
});
