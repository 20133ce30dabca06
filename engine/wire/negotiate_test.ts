import assert from "node:assert/strict";
import type { Codec } from "../codecs/codec.ts";
import { codecByName } from "../codecs/registry.ts";
import { MigrationError } from "../errors.ts";
import { negotiateCodecs } from "./negotiate.ts";

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
