import assert from "node:assert/strict";
import {
  memoryProfileOf,
  pageCosts,
  UNKNOWN_MEMORY,
  WORKLOAD_PROFILES,
  ZERO_PAGE_WIRE_BYTES,
} from "./memory_model.ts";
import { workloadNames } from "../../engine/sim/mod.ts";

const P = 4096;
const chain = (...names: string[]) => names.map((name) => ({ name }));

Deno.test("every sim workload has a measured profile", () => {
  assert.deepEqual(
    Object.keys(WORKLOAD_PROFILES).sort(),
    workloadNames().sort(),
  );
  for (const p of Object.values(WORKLOAD_PROFILES)) {
    assert.ok(p.zeroFraction >= 0 && p.zeroFraction <= 1);
    assert.ok(Object.values(p.ratios).every((r) => r > 1));
  }
});

Deno.test("memoryProfileOf: inventory figures win, the workload fills in, else nothing is known", () => {
  assert.equal(memoryProfileOf({}), UNKNOWN_MEMORY);
  assert.equal(
    memoryProfileOf({ workload: "postgres" }),
    WORKLOAD_PROFILES.postgres,
  );
  const mixed = memoryProfileOf({ workload: "postgres", zeroFraction: 0.1 });
  assert.equal(mixed.zeroFraction, 0.1);
  assert.equal(mixed.ratios.zstd, WORKLOAD_PROFILES.postgres.ratios.zstd);
  assert.match(
    mixed.source,
    /^inventory zeroFraction, else sim workload postgres/,
  );
  const own = memoryProfileOf({ compression: { lz4: 2 } });
  assert.deepEqual([own.zeroFraction, own.ratios], [0, { lz4: 2 }]);
  assert.equal(own.source, "inventory compression");
});

Deno.test("pageCosts: the first codec that claims a kind of page sends it", () => {
  const profile = {
    zeroFraction: 0.5,
    ratios: { rle: 1.5, dedup: 3, lz4: 2, zstd: 4, delta: 20 },
    source: "test",
  };
  // zero pages: the first codec in the chain that claims them.
  assert.equal(pageCosts(chain("raw"), profile, "first", P).zeroPage, P);
  assert.equal(
    pageCosts(chain("zero", "lz4"), profile, "first", P).zeroPage,
    0,
  );
  assert.equal(
    pageCosts(chain("lz4", "zero"), profile, "first", P).zeroPage,
    ZERO_PAGE_WIRE_BYTES.lz4,
  );
  assert.equal(pageCosts(chain("delta"), profile, "first", P).zeroCodec, "raw");
  // first sends: delta declines, dedup claims; sent again: the reverse.
  const first = pageCosts(
    chain("zero", "delta", "dedup", "lz4"),
    profile,
    "first",
    P,
  );
  assert.deepEqual([first.pageCodec, first.page], ["dedup", P / 3]);
  const again = pageCosts(
    chain("zero", "delta", "dedup", "lz4"),
    profile,
    "again",
    P,
  );
  assert.deepEqual([again.pageCodec, again.page], ["delta", P / 20]);
  const noDelta = pageCosts(chain("dedup", "zstd"), profile, "again", P);
  assert.deepEqual([noDelta.pageCodec, noDelta.page], ["zstd", P / 4]);
  // A codec with no measured gain declines; the next one is asked.
  const unknownLz4 = { zeroFraction: 0, ratios: { zstd: 2 }, source: "t" };
  const c = pageCosts(chain("lz4", "zstd"), unknownLz4, "first", P);
  assert.deepEqual([c.pageCodec, c.page], ["zstd", P / 2]);
  const blind = pageCosts(
    chain("zero", "lz4", "zstd"),
    UNKNOWN_MEMORY,
    "first",
    P,
  );
  assert.deepEqual([blind.pageCodec, blind.page], ["raw", P]);
});
