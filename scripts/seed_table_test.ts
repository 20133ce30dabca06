import assert from "node:assert/strict";
import {
  markdownTable,
  rowResult,
  type RunFigures,
  type SeedRow,
} from "./seed_table.ts";

/** A run's report figures; `mixes` holds one codec mix per round. */
function run(
  figures: Omit<RunFigures, "rounds" | "verified"> & { verified?: boolean },
  mixes: Record<string, number>[],
): RunFigures {
  return {
    verified: true,
    ...figures,
    rounds: mixes.map((codecMix) => ({ codecMix })),
  };
}

/** How long one run of the script may take: the 16 MiB rows take a few seconds. */
const SCRIPT_DEADLINE_MS = 120_000;

/**
 * Runs `seed_table.ts` with `args` in a child process. Past
 * {@link SCRIPT_DEADLINE_MS} it kills the script and the receiver process
 * the script started (which holds the script's stderr open), and rejects
 * naming the deadline, with the script's stderr.
 */
async function seedTable(args: string[]): Promise<Deno.CommandOutput> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./seed_table.ts", import.meta.url).pathname,
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), SCRIPT_DEADLINE_MS);
  });
  const first = await Promise.race([output, late]).finally(() =>
    clearTimeout(timer)
  );
  if (first !== "late") return first;
  killTree(child.pid);
  const { stderr } = await output;
  throw new Error(
    `Timed out waiting for seed_table.ts ${
      args.join(" ")
    }: killed after ${SCRIPT_DEADLINE_MS} ms; its stderr:\n${
      new TextDecoder().decode(stderr)
    }`,
  );
}

/** Kills process `pid` and, on Linux, its descendants (from `/proc`). */
function killTree(pid: number): void {
  const children: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      const list = Deno.readTextFileSync(
        `/proc/${pid}/task/${task.name}/children`,
      );
      for (const c of list.split(" ")) if (c.trim()) children.push(Number(c));
    }
  } catch {
    // Not Linux, or already gone: the process alone.
  }
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // Already gone.
  }
  for (const c of children) killTree(c);
}

const MEMCACHED_DELTA: SeedRow = {
  workload: "memcached",
  label: "memcached",
  codec: "delta",
  chain: [],
  seedFigure: "up to 3.7x",
};

Deno.test("seed-table's row result: medians of hand-made runs, speed-up to READY without verification", () => {
  const codec = [
    // ready = totalTimeMs - verifyMs: 1250 - 50 = 1200 ms
    run(
      {
        totalTimeMs: 1250,
        verifyMs: 50,
        wireBytes: 3_000_000,
        downtimeMs: 60,
        sourceCpuSeconds: 0.5,
      },
      [{ zero: 1000, raw: 24 }, { delta: 30, raw: 2 }, { delta: 5 }],
    ),
    // 1100 - 100 = 1000 ms
    run({
      totalTimeMs: 1100,
      verifyMs: 100,
      wireBytes: 2_500_000,
      downtimeMs: 20,
      sourceCpuSeconds: 0.4,
    }, [{ raw: 1 }, { raw: 1 }]),
    // 1400 - 100 = 1300 ms
    run({
      totalTimeMs: 1400,
      verifyMs: 100,
      wireBytes: 3_500_000,
      downtimeMs: 34,
      sourceCpuSeconds: 0.6,
    }, [{ raw: 1 }, { raw: 1 }, { raw: 1 }, { raw: 1 }]),
  ];
  const plain = [
    // 3700 - 100 = 3600 ms
    run({
      totalTimeMs: 3700,
      verifyMs: 100,
      wireBytes: 8_000_000,
      downtimeMs: 110,
      sourceCpuSeconds: 1.5,
    }, [{ raw: 1024 }, { raw: 40 }]),
    // 3900 - 300 = 3600 ms
    run({
      totalTimeMs: 3900,
      verifyMs: 300,
      wireBytes: 9_000_000,
      downtimeMs: 70,
      sourceCpuSeconds: 1.7,
    }, [{ raw: 1 }, { raw: 1 }, { raw: 1 }, { raw: 1 }]),
    // 3500 - 100 = 3400 ms
    run({
      totalTimeMs: 3500,
      verifyMs: 100,
      wireBytes: 7_000_000,
      downtimeMs: 85,
      sourceCpuSeconds: 1.3,
    }, [{ raw: 1 }, { raw: 1 }, { raw: 1 }]),
  ];
  const result = rowResult(MEMCACHED_DELTA, { codec, plain });
  assert.deepEqual(result, {
    workload: "memcached",
    codec: "delta",
    // Codec times to READY sorted: 1000, 1200, 1300 → median 1200 ms (run 1);
    // plain: 3400, 3600, 3600 → median 3600 ms (run 1, the first of the two).
    // 3600 / 1200 = 3; not 3700 / 1250 = 2.96 (verification counted), nor
    // 3533.3 / 1166.7 = 3.03 (means).
    speedup: 3,
    timeMs: 1200,
    plainTimeMs: 3600,
    // Wire bytes, rounds, total time and CPU of the median-time runs.
    wireBytes: 3_000_000,
    plainWireBytes: 8_000_000,
    // Downtimes are medians over all runs: codec 20, 34, 60 → 34 (run 1 had
    // 60; the mean is 38); plain 70, 85, 110 → 85 (run 1 had 110; the mean
    // is 88.3).
    downtimeMs: 34,
    plainDowntimeMs: 85,
    rounds: 3,
    plainRounds: 2,
    verified: true,
    totalTimeMs: 1250,
    plainTotalTimeMs: 3700,
    sourceCpuSeconds: 0.5,
    plainSourceCpuSeconds: 1.5,
    // Run 1's rounds added up: raw 24 + 2 = 26, delta 30 + 5 = 35.
    codecMix: { zero: 1000, raw: 26, delta: 35 },
    seedFigure: "up to 3.7x",
    repeat: 3,
  });
  // 3_000_000 B = 2.86 MiB, 8_000_000 B = 7.63 MiB (/ 1048576).
  assert.equal(
    markdownTable([result], [MEMCACHED_DELTA]).split("\n")[2],
    "| memcached | delta | 3.00x | 1200 ms / 3600 ms | 2.86 MiB / 7.63 MiB | 34 ms / 85 ms | 3 / 2 | yes | up to 3.7x |",
  );
});

Deno.test("seed-table's row result: one unverified run marks the row, and large figures switch units", () => {
  const row: SeedRow = {
    workload: "zero",
    label: "best case",
    codec: "rle",
    chain: [],
    seedFigure: "up to 4x",
  };
  const result = rowResult(row, {
    // ready 1300 - 100 = 1200 ms
    codec: [run({
      totalTimeMs: 1300,
      verifyMs: 100,
      wireBytes: 1024,
      downtimeMs: 5,
      sourceCpuSeconds: 0.1,
    }, [{ rle: 4 }])],
    // ready 15_500 - 500 = 15_000 ms
    plain: [run({
      totalTimeMs: 15_500,
      verifyMs: 500,
      wireBytes: 512,
      downtimeMs: 12_340,
      sourceCpuSeconds: 2,
      verified: false,
    }, [{ raw: 4 }])],
  });
  // 15_000 / 1200 = 12.5
  assert.equal(result.speedup, 12.5);
  assert.equal(result.verified, false);
  assert.equal(result.repeat, 1);
  // Speed-ups from 10x and times from 10 s get one decimal; 1024 B = 1.00 KiB.
  assert.equal(
    markdownTable([result], [row]).split("\n")[2],
    "| zero (best case) | rle | 12.5x | 1200 ms / 15.0 s | 1.00 KiB / 512 B | 5 ms / 12.3 s | 1 / 1 | NO | up to 4x |",
  );
});

Deno.test("seed-table reproduces the idle and memcached rows on 16 MiB VMs", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/seed-table.json`;
  try {
    const { code, stdout, stderr } = await seedTable([
      "--mem",
      "16MiB",
      "--rows",
      "idle,memcached",
      "--out",
      out,
    ]);
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
  const { code, stderr } = await seedTable(["--rows", "nosuch"]);
  assert.notEqual(code, 0);
  assert.match(new TextDecoder().decode(stderr), /Unknown row "nosuch"/);
});
