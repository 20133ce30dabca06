import assert from "node:assert/strict";
import { hakobu, startReceiver, withTempDir } from "./_cli_testing.ts";
import { parseReport, ReportFileError } from "./report.ts";

/** Runs a receiver on a free port and one real migration to it with `--report` and `--html`. */
async function migrateOnce(dir: string): Promise<void> {
  const receiver = await startReceiver();
  const mig = await hakobu([
    "migrate",
    "--insecure-plain",
    "--from",
    "sim:memcached",
    "--mem",
    "32MiB",
    "--dirty-rate",
    "5000",
    "--bandwidth",
    "400Mbit",
    "--to",
    `127.0.0.1:${receiver.port}`,
    "--report",
    `${dir}/r.json`,
    "--html",
    `${dir}/migrate.html`,
    "--quiet",
  ]);
  assert.equal(mig.code, 0, mig.stderr);
  assert.match(
    mig.stdout,
    new RegExp(`HTML report written to ${dir}/migrate.html`),
  );
  const done = await receiver.finished();
  assert.equal(done.code, 0, done.stderr);
}

Deno.test("hakobu migrate --html, then hakobu report writes HTML and SVG and prints tables", async () => {
  await withTempDir(async (dir) => {
    await migrateOnce(dir);
    const fromMigrate = await Deno.readTextFile(`${dir}/migrate.html`);
    assert.match(fromMigrate, /^<!DOCTYPE html>/);
    assert.match(fromMigrate, /<svg[\s>]/);
    assert.match(fromMigrate, /VERIFIED/);

    const r = await hakobu([
      "report",
      `${dir}/r.json`,
      "--html",
      `${dir}/out/r.html`,
      "--svg",
      `${dir}/out/r.svg`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`HTML report written to ${dir}/out/r.html`),
    );
    assert.match(
      r.stdout,
      new RegExp(`SVG charts written to ${dir}/out/r.svg`),
    );
    assert.equal(r.stderr, "", "no warnings from the chart compiler");
    const html = await Deno.readTextFile(`${dir}/out/r.html`);
    const svg = await Deno.readTextFile(`${dir}/out/r.svg`);
    assert.match(html, /^<!DOCTYPE html>/);
    assert.match(
      svg,
      /^<\?xml[^>]*>\n<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/,
    );
    const report = JSON.parse(await Deno.readTextFile(`${dir}/r.json`));
    assert.equal(
      html.match(/<tr class="(live|final)"/g)?.length,
      report.rounds.length,
    );

    const plain = await hakobu(["report", `${dir}/r.json`]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stdout, /send rate/);
    assert.match(plain.stdout, /\(stop\)/);
    assert.match(plain.stdout, /VERIFIED \(memory digests match\)/);
    assert.match(plain.stdout, /total time/);
  }, { prefix: "hakobu_report_cli_" });
});

Deno.test("hakobu report names the file and the field when the JSON is not a report", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/broken.json`, '{"verified": true,');
    const broken = await hakobu([
      "report",
      `${dir}/broken.json`,
      "--html",
      `${dir}/x.html`,
    ]);
    assert.equal(broken.code, 1);
    assert.match(
      broken.stderr,
      new RegExp(`Cannot read report "${dir}/broken.json": not JSON`),
    );

    await Deno.writeTextFile(
      `${dir}/other.json`,
      JSON.stringify({ verified: true, aborted: false, outcome: "ok" }),
    );
    const other = await hakobu(["report", `${dir}/other.json`]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      new RegExp(
        `Cannot read report "${dir}/other.json": missing field "policy"`,
      ),
    );

    const missing = await hakobu(["report", `${dir}/nope.json`]);
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      new RegExp(`Cannot read report "${dir}/nope.json"`),
    );
    await assert.rejects(Deno.stat(`${dir}/x.html`), Deno.errors.NotFound);
  }, { prefix: "hakobu_report_cli_" });
});

function validReport(): Record<string, unknown> {
  return {
    verified: true,
    verification: "memory-digest",
    aborted: false,
    outcome: "migrated and verified",
    policy: "default",
    vm: "sim:idle 32.00 MiB seed 1",
    memoryBytes: 32 * 2 ** 20,
    pageSize: 4096,
    bandwidth: null,
    startedAt: "2026-11-27T04:00:00.000Z",
    totalTimeMs: 100,
    downtimeMs: 10,
    verifyMs: 5,
    wireBytes: 1000,
    rawBytes: 4096,
    compressionRatio: 4.096,
    pagesSent: 1,
    sourceCpuSeconds: 0.1,
    sourceCpuSecondsPerGiB: 1,
    digest: "",
    rounds: [{
      round: 0,
      final: true,
      dirtyPages: 1,
      pagesSent: 1,
      rawBytes: 4096,
      wireBytes: 1000,
      codecMix: { raw: 1 },
      codecs: ["raw"],
      durationMs: 1,
      dirtyRate: 0,
      sendRate: 4096000,
      wireRate: 1000000,
      remainingPages: 0,
      decision: "final",
      reason: "stop-and-copy",
    }],
  };
}

Deno.test("parseReport accepts a report and points at the first bad field", () => {
  const good = validReport();
  assert.equal(parseReport(JSON.stringify(good), "g.json").policy, "default");

  const cases: [unknown, string, RegExp][] = [
    [[1, 2], "", /expected a JSON object, got an array/],
    [{ ...good, rounds: undefined }, "rounds", /missing field "rounds"/],
    [
      { ...good, rounds: {} },
      "rounds",
      /"rounds" is an object, expected an array/,
    ],
    [
      { ...good, totalTimeMs: "9 s" },
      "totalTimeMs",
      /"totalTimeMs" is string "9 s", expected a number/,
    ],
    [{ ...good, bandwidth: "1Gbit" }, "bandwidth", /expected a number or null/],
    [
      {
        ...good,
        rounds: [{ ...(good.rounds as object[])[0], wireBytes: undefined }],
      },
      "rounds[0].wireBytes",
      /missing field "rounds\[0\]\.wireBytes"/,
    ],
    [
      {
        ...good,
        rounds: [{ ...(good.rounds as object[])[0], codecMix: { raw: "1" } }],
      },
      "rounds[0].codecMix",
      /expected an object of page counts/,
    ],
    [
      { ...good, rounds: [null] },
      "rounds[0]",
      /"rounds\[0\]" is null, expected an object/,
    ],
    [
      {
        ...good,
        rounds: [{ ...(good.rounds as object[])[0], channels: {} }],
      },
      "rounds[0].channels",
      /"rounds\[0\]\.channels" is an object, expected an array/,
    ],
    [
      {
        ...good,
        rounds: [{
          ...(good.rounds as object[])[0],
          channels: [{ pages: 1, wireBytes: 9, codecMix: { raw: 1 } }, {
            pages: 1,
            codecMix: {},
          }],
        }],
      },
      "rounds[0].channels[1].wireBytes",
      /missing field "rounds\[0\]\.channels\[1\]\.wireBytes"/,
    ],
    [
      { ...good, verification: "trust-me" },
      "verification",
      /"verification" is string "trust-me", expected one of "memory-digest"/,
    ],
    [
      { ...good, verification: "none" },
      "verified",
      /"verified" is true but "verification" is "none": nothing was compared/,
    ],
  ];
  for (const [data, field, message] of cases) {
    assert.throws(
      () => parseReport(JSON.stringify(data), "bad.json"),
      (e: unknown) => {
        assert.ok(e instanceof ReportFileError);
        assert.equal(e.file, "bad.json");
        assert.equal(e.field, field);
        assert.match(e.message, /^Cannot read report "bad\.json": /);
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

Deno.test("parseReport: a report from before the verification field keeps its verdict only if it has a digest", () => {
  const { verification: _, ...native } = validReport();
  const n = parseReport(
    JSON.stringify({ ...native, digest: "ab".repeat(32) }),
    "n.json",
  );
  assert.equal(n.verification, "memory-digest");
  assert.equal(n.verified, true);
  // An old QEMU report said verified with no digest: nothing was compared.
  const q = parseReport(JSON.stringify({ ...native, digest: "" }), "q.json");
  assert.equal(q.verification, "none");
  assert.equal(q.verified, false);
});
