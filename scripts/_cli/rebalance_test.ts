import assert from "node:assert/strict";
import { hakobu, withTempDir } from "./_cli_testing.ts";

const DRY = [
  "rebalance",
  "--inventory",
  "examples/inventory.json",
  "--policy",
  "examples/policies/default.ts",
  "--dry-run",
];

Deno.test("hakobu rebalance --dry-run prints the plan and the hosts before and after", async () => {
  const r = await hakobu(DRY);
  assert.equal(r.code, 0, r.stderr);
  assert.match(
    r.stdout,
    /target: every host at most 75% of its memory; link 1\.00 Gbit\/s \(policy "default"\)/,
  );
  assert.match(r.stdout, /1 move\(s\):/);
  assert.match(r.stdout, /│ queue1 │ h1 → h3 +│ 128\.00 MiB │ 1\.08 s /);
  assert.match(r.stdout, /host "h1" at 81\.3% is above the target 75%/);
  assert.match(
    r.stdout,
    /│ h1 +│ 1\.00 GiB │ 832\.00 MiB \(81\.3%\) ! │ 704\.00 MiB \(68\.8%\) +│/,
  );
  assert.match(
    r.stdout,
    /│ h3 +│ 1\.00 GiB │ 128\.00 MiB \(12\.5%\) +│ 256\.00 MiB \(25\.0%\) +│/,
  );
  assert.match(
    r.stdout,
    /unmovable: hot1 on h1: dirty rate 200\.0 MB\/s is not below the link rate 125\.0 MB\/s/,
  );
  assert.doesNotMatch(r.stderr, /running/);
});

Deno.test("hakobu rebalance --dry-run --json and an infeasible target", async () => {
  const r = await hakobu([...DRY, "--json", "--target", "30"]);
  assert.equal(r.code, 2, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.dryRun, true);
  assert.equal(out.plan.balanced, false);
  assert.equal(out.plan.infeasible[0].host, "h1");
  assert.match(
    out.plan.infeasible[0].reason,
    /host "h1" uses 81\.3% of its memory, above the target 30%/,
  );
});

Deno.test("hakobu rebalance names the inventory field that is wrong", async () => {
  const bad = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(
      bad,
      JSON.stringify({
        hosts: [{ name: "h1", memory: "1GiB" }],
        vms: [{ name: "a", host: "h1", memory: "1MiB" }, {
          name: "b",
          host: "h9",
          memory: "1MiB",
        }],
      }),
    );
    const r = await hakobu([
      "rebalance",
      "--inventory",
      bad,
      "--policy",
      "examples/policies/default.ts",
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Invalid vms\[1\]\.host "h9": it is not a host in the inventory/,
    );
    const t = await hakobu([...DRY, "--timeout", "soon"]);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /Cannot parse duration "soon"/);
  } finally {
    await Deno.remove(bad);
  }
});

Deno.test("hakobu rebalance runs the moves on sim hosts and writes the inventory", async () => {
  await withTempDir(async (dir) => {
    const inv = `${dir}/inv.json`;
    await Deno.writeTextFile(
      inv,
      JSON.stringify({
        hosts: [{ name: "a", memory: "128MiB" }, {
          name: "b",
          memory: "128MiB",
        }],
        vms: [
          { name: "x", host: "a", memory: "16MiB", workload: "memcached" },
          {
            name: "y",
            host: "a",
            memory: "96MiB",
            workload: "idle",
            dirtyRate: "2GB/s",
          },
        ],
        targets: { maxHostMemoryPercent: 80 },
      }),
    );
    const out = `${dir}/after.json`;
    const r = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      "--policy",
      "examples/policies/unlimited.ts",
      "--write-inventory",
      out,
      "--timeout",
      "60s",
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /link 10\.00 Gbit\/s \(assumed: policy "unlimited" is unpaced\)/,
    );
    assert.match(r.stdout, /│ x +│ a → b +│ verified │/);
    assert.match(r.stdout, /1 of 1 move\(s\) verified/);
    const after = JSON.parse(await Deno.readTextFile(out));
    assert.equal(
      after.vms.find((v: { name: string }) => v.name === "x").host,
      "b",
    );
    assert.equal(
      after.vms.find((v: { name: string }) => v.name === "y").host,
      "a",
    );
    // Stable: planning the written inventory finds nothing to do.
    const again = await hakobu([
      "rebalance",
      "--inventory",
      out,
      "--policy",
      "examples/policies/unlimited.ts",
      "--dry-run",
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /balanced: no moves needed/);
  });
});
