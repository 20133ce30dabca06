import assert from "node:assert/strict";
import { hakobu, ROOT, withTempDir } from "./_cli_testing.ts";

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
  // queue1 is an idle sim VM: 96.5% zero pages, which the policy's zero
  // codec sends for nothing, so 4.52 MiB go on the wire, not 128 MiB.
  assert.match(
    r.stdout,
    /│ queue1 │ h1 → h3 +│ 128\.00 MiB │ 38 ms +│ [0-9.]+ ms +│ 4\.52 MiB │ 1 +│/,
  );
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

/** An inventory where x (16 MiB) must leave a, and y cannot. */
async function smallCluster(dir: string, tags?: string[]): Promise<string> {
  const inv = `${dir}/inv.json`;
  await Deno.writeTextFile(
    inv,
    JSON.stringify({
      hosts: [{ name: "a", memory: "128MiB" }, { name: "b", memory: "128MiB" }],
      vms: [
        {
          name: "x",
          host: "a",
          memory: "16MiB",
          workload: "memcached",
          ...(tags ? { tags } : {}),
        },
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
  return inv;
}

const UNLIMITED = ["--policy", "examples/policies/unlimited.ts"];

Deno.test("hakobu rebalance --dry-run prints every step and changes neither the inventory nor the state file", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir);
    const state = `${dir}/state.json`;
    const stateText = JSON.stringify({
      version: 1,
      moves: [{
        vm: "y",
        from: "b",
        to: "a",
        at: new Date(Date.now() - 60_000).toISOString(),
        moved: true,
      }],
    });
    await Deno.writeTextFile(state, stateText);
    const before = await Deno.readTextFile(inv);
    const r = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--dry-run",
      "--state",
      state,
      "--write-inventory",
      inv, // even pointed at the inventory itself: not written
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /dry run: what a run would do, in order:/);
    assert.match(
      r.stdout,
      /would run 1 move\(s\) on sim hosts in 1 wave\(s\), at most 2 at once and 5 min 0 s per move/,
    );
    assert.match(r.stdout, /wave 1, at the start:/);
    assert.match(
      r.stdout,
      /1\. x: a → b, 16\.00 MiB \([0-9.]+ MiB on the wire\), predicted [0-9.]+ ms, downtime/,
    );
    assert.match(r.stdout, new RegExp(`then: record the moves in ${state}`));
    assert.match(r.stdout, new RegExp(`then: write the inventory to ${inv}`));
    assert.match(
      r.stdout,
      /skipped: y on a: in its cooldown: moved b → a at .* ago\), may move again from /,
    );
    assert.match(r.stdout, /dry run: nothing was changed/);
    assert.doesNotMatch(r.stderr, /running/);
    assert.equal(await Deno.readTextFile(inv), before);
    assert.equal(await Deno.readTextFile(state), stateText);
    const entries = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(entries, ["inv.json", "state.json"]); // no temp files either
    // Without a state file nothing is created either.
    const none = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--dry-run",
      "--state",
      `${dir}/new-state.json`,
      "--json",
    ]);
    assert.equal(none.code, 0, none.stderr);
    const out = JSON.parse(none.stdout);
    assert.equal(out.dryRun, true);
    assert.deepEqual(out.schedule.moves.map((m: { wave: number }) => m.wave), [
      1,
    ]);
    assert.deepEqual(out.results, []);
    await assert.rejects(
      Deno.stat(`${dir}/new-state.json`),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("hakobu rebalance --state: a moved VM is checked on its destination, recorded, and not moved again within the cooldown", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir);
    const state = `${dir}/state.json`;
    const run = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--state",
      state,
      "--timeout",
      "60s",
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /│ x +│ a → b +│ verified │.*│ ok: on "b" +│/);
    assert.match(run.stdout, /each VM is where its result says/);
    assert.match(run.stdout, /read back from the sim fabric/);
    assert.match(run.stdout, new RegExp(`recorded 1 move\\(s\\) in ${state}`));
    const saved = JSON.parse(await Deno.readTextFile(state));
    assert.equal(saved.version, 1);
    assert.deepEqual(
      saved.moves.map((
        m: Record<string, unknown>,
      ) => [m.vm, m.from, m.to, m.moved]),
      [["x", "a", "b", true]],
    );
    // The inventory file was not written back (no --write-inventory): the
    // next pass reads x on a again, but x is in its cooldown.
    const again = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--state",
      state,
      "--dry-run",
    ]);
    assert.equal(again.code, 2, again.stdout + again.stderr);
    assert.match(again.stdout, /skipped: x on a: in its cooldown: moved a → b/);
    assert.match(
      again.stdout,
      /movable VMs hold only 0 MiB \(1 VM is unmovable, 1 VM is excluded or in their cooldown\)/,
    );
    // With no cooldown it would move again.
    const none = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--state",
      state,
      "--cooldown",
      "0s",
      "--dry-run",
    ]);
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /1\. x: a → b/);
  });
});

Deno.test("hakobu rebalance --exclude and --exclude-tag hold VMs, which still count for their host", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir, ["db", "pinned"]);
    for (
      const [flags, reason] of [
        [["--exclude", "x"], /skipped: x on a: excluded by name "x"/],
        [
          ["--exclude", "?"],
          /skipped: x on a: excluded: its name matches "\?"/,
        ],
        [
          ["--exclude-tag", "web", "--exclude-tag", "pinned"],
          /skipped: x on a: excluded: it is tagged "pinned"/,
        ],
      ] as const
    ) {
      const r = await hakobu([
        "rebalance",
        "--inventory",
        inv,
        ...UNLIMITED,
        "--dry-run",
        ...flags,
      ]);
      assert.equal(r.code, 2, r.stdout + r.stderr); // a stays over its target
      assert.match(r.stdout, reason);
      assert.match(
        r.stdout,
        /│ a +│ 128\.00 MiB │ 112\.00 MiB \(87\.5%\) ! │ 112\.00 MiB \(87\.5%\) ! │/,
      );
      assert.match(r.stdout, /no moves possible/);
    }
    const other = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--dry-run",
      "--exclude-tag",
      "web",
      "--exclude",
      "z*",
    ]);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /1\. x: a → b/);
  });
});

Deno.test("hakobu rebalance refuses a corrupt state file and says how to fix it", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir);
    const state = `${dir}/state.json`;
    await Deno.writeTextFile(state, '{"version": 1, "moves": [');
    const r = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--state",
      state,
    ]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `Cannot parse rebalance state "${state}": .*; fix it, or delete it to forget the move history`,
      ),
    );
    assert.doesNotMatch(r.stderr, /running the moves/);
    await Deno.writeTextFile(
      state,
      JSON.stringify({
        version: 1,
        moves: [{ vm: "x", from: "a", to: "b", at: "yesterday", moved: true }],
      }),
    );
    const bad = await hakobu([
      "rebalance",
      "--inventory",
      inv,
      ...UNLIMITED,
      "--state",
      state,
    ]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /Invalid moves\[0\]\.at "yesterday": expected an ISO 8601 time/,
    );
  });
});

Deno.test("examples/rebalance_cron.sh: one pass under a lock, history and inventory written for the next pass", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir, ["db"]);
    const state = `${dir}/var/state.json`;
    const env = {
      NO_COLOR: "1",
      DENO: Deno.execPath(),
      HAKOBU_INVENTORY: inv,
      HAKOBU_POLICY: `${ROOT}examples/policies/unlimited.ts`,
      HAKOBU_STATE: state,
      HAKOBU_ARGS: "--timeout 60s --exclude nothing-* --exclude-tag pinned",
    };
    const wrapper = (extra: Record<string, string> = {}) =>
      new Deno.Command("sh", {
        args: [`${ROOT}examples/rebalance_cron.sh`],
        cwd: dir, // the wrapper finds the repository from its own path
        env: { ...env, ...extra },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const dec = new TextDecoder();
    const first = await wrapper();
    const out = dec.decode(first.stdout) + dec.decode(first.stderr);
    assert.equal(first.code, 0, out);
    assert.match(out, /hakobu rebalance/);
    assert.match(out, /│ x +│ a → b +│ verified │.*ok: on "b"/);
    assert.match(out, new RegExp(`inventory written to ${inv}`));
    const after = JSON.parse(await Deno.readTextFile(inv));
    assert.equal(
      after.vms.find((v: { name: string }) => v.name === "x").host,
      "b",
    );
    assert.deepEqual(
      after.vms.find((v: { name: string }) => v.name === "x").tags,
      ["db"],
    );
    assert.equal(JSON.parse(await Deno.readTextFile(state)).moves[0].vm, "x");
    // The next pass reads the written inventory: nothing to do.
    const second = await wrapper();
    assert.equal(second.code, 0, dec.decode(second.stderr));
    assert.match(dec.decode(second.stdout), /balanced: no moves needed/);
    // While another pass holds the lock, a pass is skipped.
    const holder = new Deno.Command("flock", {
      args: [`${state}.lock`, "sleep", "30"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      let skipped = "";
      for (let i = 0; i < 50 && !skipped.includes("skipped"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        skipped = dec.decode((await wrapper()).stdout);
      }
      assert.match(skipped, /the previous rebalance still runs: skipped/);
    } finally {
      holder.kill();
      await holder.status;
    }
  });
});

Deno.test("examples/rebalance_cron.ts --once --dry-run prints the plan's steps and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const inv = await smallCluster(dir);
    const before = await Deno.readTextFile(inv);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${ROOT}examples/rebalance_cron.ts`,
        "--once",
        "--dry-run",
      ],
      env: {
        NO_COLOR: "1",
        HAKOBU_INVENTORY: inv,
        HAKOBU_POLICY: `${ROOT}examples/policies/unlimited.ts`,
        HAKOBU_STATE: `${dir}/state.json`,
        HAKOBU_EXCLUDE: "y",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
    assert.match(text, /1\. x: a → b/);
    assert.match(text, /skipped: y on a: excluded by name "y"/);
    assert.match(text, /dry run: nothing was changed/);
    assert.equal(await Deno.readTextFile(inv), before);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "inv.json",
    ]);
  });
});
