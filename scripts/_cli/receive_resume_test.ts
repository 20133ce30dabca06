/**
 * `hakobu receive --once` with a `sim` migration whose policy resumes: the
 * link is cut mid-round, the sim backend reconnects with the same
 * credentials, the receiver (which serves one migration) takes that
 * connection's RESUME, and both ends report it verified. With
 * `--resume-grace 0` the same cut fails the migration, the VM running on.
 * A RESULT lost on its way back is resumed the same way (commit protocol):
 * the receiver prints VERIFIED only once the source's COMMIT came.
 */

import assert from "node:assert/strict";
import { codec, compile, policy, when } from "../../dsl/mod.ts";
import { MiB } from "../../dsl/units.ts";
import { type Fault, faultProxy } from "../../engine/_fault_proxy.ts";
import { withDeadline } from "../../engine/_precopy_testing.ts";
import { simBackend } from "../../engine/backend/sim.ts";
import { MigrationError } from "../../engine/errors.ts";
import { INSECURE_PLAIN } from "../../engine/transport/secure/mod.ts";
import { FrameType } from "../../engine/wire/frame.ts";
import { receiveCommand } from "./receive.ts";

const DEADLINE_MS = 90_000;

async function cutMigration(
  resumeGraceMs: number,
  fault: Fault = { kind: "cut", direction: "up", afterBytes: MiB(3) },
) {
  let listening!: (a: Deno.NetAddr) => void;
  const addr = new Promise<Deno.NetAddr>((r) => listening = r);
  const received = receiveCommand({
    listen: "127.0.0.1:0",
    security: INSECURE_PLAIN,
    once: true,
    maxMemoryBytes: MiB(64),
    resumeGraceMs,
    json: true,
    onListening: listening,
  });
  const proxy = faultProxy((await addr).port, fault);
  const plan = compile(
    policy("cli-resume").codec([codec.raw()]).channels(2)
      .switchover(when.rounds(3))
      .resume({ grace: 20_000, attempts: 3 }),
  );
  try {
    const report = await withDeadline(
      simBackend.open("unique", { memoryBytes: MiB(8), dirtyRate: 200 })
        .migrate(plan, `127.0.0.1:${proxy.port}`, {
          security: { insecurePlain: true },
        }).catch((e: Error) => e),
      "the sim migration",
      DEADLINE_MS,
    );
    const code = await withDeadline(received, "the receiver", DEADLINE_MS);
    return { report, code, fired: proxy.fired, proxy };
  } finally {
    await proxy.close();
  }
}

Deno.test({
  name:
    "hakobu receive --once takes the RESUME of the migration it serves: a sim migration cut mid-round resumes and both ends verify",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { report, code, fired, proxy } = await cutMigration(60_000);
    assert.ok(fired, "the link was never cut");
    assert.ok(!(report instanceof Error), String(report));
    assert.ok(report.verified, report.outcome);
    assert.equal(report.resumes?.length, 1);
    assert.equal(proxy.connections.length, 2);
    assert.equal(code, 0);
  },
});

Deno.test({
  name:
    "hakobu receive --resume-grace 0 keeps no session: the same cut fails the migration as a lost link",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { report, code, fired } = await cutMigration(0);
    assert.ok(fired, "the link was never cut");
    // The receiver gave no session id: nothing to resume.
    assert.ok(report instanceof MigrationError, String(report));
    assert.match(
      report.message,
      /^The receiver 127\.0\.0\.1:\d+ (closed|reset) the connection during round \d+ \(.*\); not resumed: the receiver offered no session to resume/,
    );
    assert.equal(code, 1);
  },
});

Deno.test({
  name:
    "hakobu receive --once: a RESULT lost on its way back is resumed, the source learns verified and commits, and the receiver commits on that COMMIT",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    let run;
    try {
      run = await cutMigration(60_000, {
        kind: "cut",
        direction: "down",
        afterBytes: 0,
        frameType: FrameType.RESULT,
      });
    } finally {
      console.log = log;
    }
    const { report, code, fired, proxy } = run;
    assert.ok(fired, "the link was never cut");
    assert.ok(!(report instanceof Error), String(report));
    assert.ok(report.verified, report.outcome);
    assert.deepEqual(report.commit, { committed: true, reconnects: 1 });
    assert.equal(proxy.connections.length, 2);
    assert.equal(code, 0);
    // One verdict: the session's, committed on COMMIT.
    const verdicts = lines.filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l)
    ).filter((v) => !v.joined);
    assert.equal(verdicts.length, 1, lines.join("\n"));
    assert.equal(verdicts[0].verified, true);
    assert.equal(verdicts[0].commit, true);
  },
});
