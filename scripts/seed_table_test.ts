import assert from "node:assert/strict";

Deno.test("seed-table reproduces the idle and memcached rows on 16 MiB VMs", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/seed-table.json`;
  try {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./seed_table.ts", import.meta.url).pathname,
        "--mem",
        "16MiB",
        "--rows",
        "idle,memcached",
        "--out",
        out,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    const err = new TextDecoder().decode(stderr);
    assert.equal(code, 0, `seed_table.ts failed:\n${err}`);

    const rows = JSON.parse(await Deno.readTextFile(out));
    assert.ok(Array.isArray(rows));
    assert.deepEqual(
      rows.map((r: { workload: string; codec: string }) =>
        `${r.workload}/${r.codec}`
      ),
      ["idle/rle", "memcached/delta", "memcached/dedup"],
    );
    for (const r of rows) {
      assert.equal(r.verified, true, `${r.workload}/${r.codec} not verified`);
      for (
        const key of [
          "speedup",
          "timeMs",
          "plainTimeMs",
          "wireBytes",
          "plainWireBytes",
          "downtimeMs",
          "plainDowntimeMs",
          "rounds",
        ]
      ) {
        assert.ok(
          typeof r[key] === "number" && r[key] > 0,
          `${r.workload}/${r.codec}: ${key} = ${r[key]}`,
        );
      }
      assert.ok(
        Math.abs(r.speedup - r.plainTimeMs / r.timeMs) < 1e-9,
        `${r.workload}/${r.codec}: speedup ${r.speedup} is not plainTimeMs / timeMs`,
      );
      // Every codec here sends fewer bytes than raw on these workloads.
      assert.ok(r.wireBytes < r.plainWireBytes);
    }

    // The markdown table: header, separator and one line per row.
    assert.match(
      text,
      /\| workload \| codec \| speed-up \| time codec \/ plain \| wire codec \/ plain \| downtime codec \/ plain \|/,
    );
    assert.match(text, /^\|---\|/m);
    assert.match(text, /^\| idle \| rle \| [\d.]+x \|/m);
    assert.match(
      text,
      /^\| memcached \| delta \| [\d.]+x \|.*up to 3\.7x \|$/m,
    );
    assert.match(
      text,
      /^\| memcached \| dedup \| [\d.]+x \|.*up to 16\.7x \|$/m,
    );
    assert.match(text, /handshake to READY/);
    // One progress line per migration on stderr: 3 rows x 2 policies.
    assert.equal(err.match(/ to READY \(/g)?.length, 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("seed-table refuses an unknown row", async () => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./seed_table.ts", import.meta.url).pathname,
      "--rows",
      "nosuch",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(code, 0);
  assert.match(new TextDecoder().decode(stderr), /Unknown row "nosuch"/);
});
