/** The pure parts of bench:libvirt: modes, medians, the table. No daemon. */
import assert from "node:assert/strict";
import {
  BENCH_MODES,
  type BenchRun,
  formatTable,
  summarize,
  tunnelCodecs,
} from "./_bench_libvirt.ts";

const run = (
  ms: number,
  linkBytes: number,
  extra: Partial<BenchRun> = {},
): BenchRun => ({
  ms,
  downtimeMs: ms / 10,
  linkBytes,
  checkError: null,
  ...extra,
});

Deno.test("bench:libvirt: tunnel modes carry hakobu's chains, libvirt's own none", () => {
  assert.deepEqual(tunnelCodecs("hakobu-lz4"), ["zero", "lz4"]);
  assert.deepEqual(tunnelCodecs("hakobu-zstd"), ["zero", "zstd"]);
  for (const m of ["plain", "xbzrle", "mt", "zstd"] as const) {
    assert.equal(tunnelCodecs(m), null);
  }
  assert.equal(BENCH_MODES[0], "plain", "plain first: the ratios' base");
});

Deno.test("bench:libvirt: summaries are medians of measured values; failed checks and unverified streams are not ok", () => {
  const s = summarize({
    mode: "hakobu-zstd",
    runs: [
      run(3000, 90, { verified: true }),
      run(1000, 30, { verified: false }),
      run(2000, 60, { checkError: "hung" }),
    ],
  });
  assert.equal(s.ms, 2000);
  assert.equal(s.linkBytes, 60);
  assert.equal(s.downtimeMs, 200);
  assert.equal(s.checksOk, 1);
  const none = summarize({
    mode: "zstd",
    runs: [],
    refused: "unsupported compression method",
  });
  assert.equal(none.ms, null);
  assert.equal(none.refused, "unsupported compression method");
});

Deno.test("bench:libvirt: the table gives ratios against plain and prints refusals", () => {
  const text = formatTable([
    summarize({ mode: "plain", runs: [run(2000, 100 * 2 ** 20)] }),
    summarize({ mode: "hakobu-lz4", runs: [run(3000, 25 * 2 ** 20)] }),
    summarize({ mode: "zstd", runs: [], refused: "no zstd here" }),
  ]);
  const line = (label: string) =>
    text.split("\n").find((l) => l.includes(label)) ?? "";
  assert.match(line("libvirt plain"), /1\.00x.*1\.00x/);
  assert.match(line("zero,lz4"), /1\.50x.*0\.25x/);
  assert.match(line("zero,lz4"), /25\.0/);
  assert.match(line("libvirt zstd"), /refused: no zstd here/);
});
