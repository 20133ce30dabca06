/**
 * The `libvirt` backend on the two-host libvirt lab: hakobu policies steer
 * libvirt migrations through job stats, max downtime, max speed and
 * abort-job.
 *
 * On a heavy guest (it cannot converge at 8 MiB/s on its own), in the order
 * 2, 3, 1:
 * 1. a rounds policy switches it over at its third round: the report has
 *    the policy's rounds, the switchover and libvirt's downtime; the guest
 *    runs on b with its data intact and is gone from a;
 * 2. a policy that aborts after the first round leaves the guest running on
 *    the source with its data intact, and the report says `aborted`;
 * 3. `when.stalled({ rounds: 3, minProgress: 0.1 })` catches it and it ends
 *    as the policy says (aborted, running on the source).
 *
 * On a light guest:
 * 5. `hakobu migrate --from libvirt:... --to libvirt:... --tunnel` moves it
 *    a -> b through hakobu's tunnel (TLS, zero,zstd): the stream is
 *    verified by SHA-256 on both ends;
 * 4. the same CLI with `--json` moves it back b -> a and prints the report.
 *
 * Skipped (with the reason) without root, libvirt or QEMU.
 */

import assert from "node:assert/strict";
import { MiB, type Plan, policy, type RoundReport, when } from "../../mod.ts";
import { libvirtBackend } from "../../engine/backend/libvirt.ts";
import type { LibvirtBackendReport } from "../../engine/backend/libvirt.ts";
import { migrationStatus } from "../../engine/report.ts";
import { generateCredentials } from "../../engine/transport/secure/generate.ts";
import { retryingTcgFaults } from "./guest_fault.ts";
import { hakobuMigrate } from "./_hakobu_migrate.ts";
import {
  asTcgFault,
  type LibvirtLab,
  libvirtLabUnavailable,
  startLibvirtLab,
} from "./libvirt_lab.ts";

const why = await libvirtLabUnavailable().catch((e) => String(e));
if (why) console.warn(`skipping libvirt backend lab tests: ${why}`);

/** Ports of this test's lab, apart from the other lab tests'. */
const PORTS: [number, number] = [16511, 16512];

/** A migration still running after this long fails its step instead of hanging the run. */
const MIGRATION_LIMIT_MS = 150_000;

function table(r: LibvirtBackendReport): string {
  return r.rounds.map((x) =>
    `    round ${x.round}${x.final ? " (final)" : ""}: ${x.pagesSent} pages, ${
      (x.wireBytes / 2 ** 20).toFixed(1)
    } MiB, ${
      x.durationMs.toFixed(0)
    } ms, remaining ${x.remainingPages} pages -> ${x.decision}: ${x.reason}`
  ).join("\n");
}

Deno.test({
  name:
    "libvirt backend: policies steer libvirt migrations on the lab (switchover, abort, stall), data intact",
  ignore: why !== null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await retryingTcgFaults(run);
  },
});

async function run(): Promise<void> {
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  await using lab = await startLibvirtLab({ ports: PORTS });
  const light = "hk-lv-light";
  const heavy = "hk-lv-heavy";
  const [g, h] = await Promise.all([
    lab.startGuest("a", { name: light, memoryMiB: 256, dirty: "light" }),
    lab.startGuest("a", {
      name: heavy,
      memoryMiB: 256,
      dirty: "heavy",
      dataMiB: 8,
      dirtyAreaMiB: 16,
    }),
  ]);
  console.log(`  guests up on a at ${secs()} s`);
  const src = (name: string) => `${lab.a.uri}/${name}`;
  const toB = `libvirt:${lab.b.uri}`;
  const steer = (
    plan: Plan,
    onRound?: (r: RoundReport) => void,
  ): Promise<LibvirtBackendReport> =>
    libvirtBackend.open(src(heavy)).migrate(plan, toB, {
      signal: AbortSignal.timeout(MIGRATION_LIMIT_MS),
      ...(onRound ? { onRound } : {}),
    }) as Promise<LibvirtBackendReport>;

  // Steps 1-3 steer the heavy guest at 8 MiB/s: it re-dirties its 16 MiB
  // area faster than that, so QEMU never completes on its own under the
  // held 1 ms max downtime (8 KiB at 8 MiB/s), every round lasts about 2 s
  // (eight polls), and what ends each migration is the policy. (A light
  // guest converges on its own within a few short rounds, faster than the
  // polls: CI once saw it complete before the first decision point.)

  // 2. abort after the first round: the guest runs on at a, data intact.
  {
    const plan = policy("abort-after-round-0")
      .switchover(when.remainingBelow(1))
      .abortIf(when.rounds(1))
      .bandwidth(MiB(8))
      .compile();
    const mark = await lab.serialMark("a", heavy);
    const r = await steer(plan);
    console.log(`  abort: ${r.outcome}\n${table(r)}`);
    assert.equal(r.backend, "libvirt");
    assert.equal(r.aborted, true, r.outcome);
    assert.equal(migrationStatus(r), "aborted");
    assert.equal(r.status, "aborted");
    assert.equal(r.rounds.length, 1);
    assert.equal(r.rounds[0].decision, "abort");
    assert.match(r.rounds[0].reason, /^abort:/);
    assert.match(r.error ?? "", /aborted by policy "abort-after-round-0"/);
    assert.equal(r.sourceState, "running");
    assert.equal(r.destinationState, null);
    await lab.checkGuest("a", heavy, { since: mark, boot: h.check!.boot })
      .catch((e) => Promise.reject(asTcgFault(e)));
    assert.equal(await lab.domainState("b", heavy), null, "not on b");
  }

  // 3. the heavy guest does not converge: the stall abort fires. Remaining
  // bytes wobble by a few % from round to round, so a stall is a round that
  // shrinks them by under 10%.
  {
    const plan = policy("stall-abort")
      .switchover(when.remainingBelow(MiB(1)))
      .abortIf(when.stalled({ rounds: 3, minProgress: 0.1 }))
      .maxRounds(20)
      .bandwidth(MiB(8))
      .compile();
    const mark = await lab.serialMark("a", heavy);
    const r = await steer(plan);
    console.log(`  stall: ${r.outcome}\n${table(r)}`);
    assert.equal(r.aborted, true, r.outcome);
    const lastRound = r.rounds.at(-1)!;
    assert.equal(lastRound.decision, "abort");
    assert.match(
      lastRound.reason,
      /has not shrunk below .* since round \d+ \(for 3 rounds.*\): stalled/,
    );
    assert.ok(r.rounds.length >= 4, `${r.rounds.length} rounds`);
    assert.ok(r.rounds.length < 20, "the stall, not maxRounds, ended it");
    assert.ok(r.rounds.every((x) => !x.final));
    assert.equal(r.sourceState, "running");
    await lab.checkGuest("a", heavy, { since: mark, boot: h.check!.boot })
      .catch((e) => Promise.reject(asTcgFault(e)));
    assert.equal(await lab.domainState("b", heavy), null, "not on b");
  }

  // 1. switchover after 3 rounds: the policy's switchover (max downtime
  // raised) is what completes it; it lands on b with its data intact.
  {
    const plan = policy("three-rounds")
      .switchover(when.rounds(3))
      .bandwidth(MiB(8))
      .compile();
    const mark = await lab.serialMark("b", heavy);
    const rounds: number[] = [];
    const r = await steer(plan, (x) => rounds.push(x.round));
    console.log(
      `  migrate: ${r.outcome}; ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms, ${r.wireBytes} bytes\n${
        table(r)
      }`,
    );
    assert.equal(r.aborted, false, r.outcome);
    assert.equal(r.status, "completed", r.outcome);
    assert.equal(migrationStatus(r), "unchecked");
    assert.equal(r.verification, "none");
    assert.equal(r.backend, "libvirt");
    const final = r.rounds.at(-1);
    assert.ok(final?.final, "the report ends with the final round");
    assert.equal(final.reason, "stop-and-copy after the policy's switchover");
    const decided = r.rounds.filter((x) => !x.final);
    assert.deepEqual(rounds, decided.map((x) => x.round));
    assert.equal(decided.at(-1)!.decision, "switchover");
    assert.ok(decided.at(-1)!.round >= 2, "not before the third round");
    assert.ok(
      decided.slice(0, -1).every((x) => x.decision === "continue"),
      "rounds before it continued",
    );
    assert.ok(r.downtimeMs > 0, "libvirt's completed job gives the downtime");
    assert.ok(r.completedJob !== null);
    assert.ok(r.wireBytes > MiB(24), `${r.wireBytes} bytes`);
    assert.equal(r.destinationState, "running");
    assert.equal(r.sourceState, null);
    await lab.checkGuest("b", heavy, { since: mark, boot: h.check!.boot })
      .catch((e) => Promise.reject(asTcgFault(e)));
    assert.equal(await lab.domainState("a", heavy), null, "gone from a");
    await lab.destroyGuest("b", heavy);
  }

  // 5. the CLI a -> b, with hakobu's codecs in the stream (--tunnel).
  await cliThroughTunnel(lab, light, g.check!.boot);
  // 4. the CLI, back b -> a, as JSON.
  await cliBack(lab, light, g.check!.boot);
  console.log(`  libvirt backend lab test took ${secs()} s`);
}

async function cliBack(
  lab: LibvirtLab,
  name: string,
  boot: string,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const mark = await lab.serialMark("a", name);
    const { code, stderr, report: r } = await hakobuMigrate(
      dir,
      `policy("cli-remaining").switchover(when.any(when.remainingBelow(MiB(4)), when.rounds(4))).bandwidth(MiB(64))`,
      [
        "--from",
        `libvirt:${lab.b.uri}/${name}`,
        "--to",
        `libvirt:${lab.a.uri}`,
        "--report",
        `${dir}/r.json`,
      ],
    );
    assert.equal(code, 0, stderr);
    console.log(
      `  cli: ${r.outcome}; ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms, ${r.rounds.length} rounds`,
    );
    assert.equal(r.backend, "libvirt");
    assert.equal(r.policy, "cli-remaining");
    assert.equal(migrationStatus(r), "unchecked");
    assert.equal(r.rounds.at(-1).final, true);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/r.json`)), r);
    await lab.checkGuest("a", name, { since: mark, boot })
      .catch((e) => Promise.reject(asTcgFault(e)));
    assert.equal(await lab.domainState("b", name), null, "gone from b");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * `hakobu migrate --from libvirt:A/NAME --to libvirt:B --tunnel`: libvirt's
 * `migrate_uri` points at hakobu's tunnel (TLS, zero,zstd), so the stream is
 * checked by SHA-256 on both ends and the report says verified.
 */
async function cliThroughTunnel(
  lab: LibvirtLab,
  name: string,
  boot: string,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await generateCredentials(`${dir}/pki`, {
      receiverNames: ["127.0.0.1"],
      sourceIdentity: "src-a",
    });
    const mark = await lab.serialMark("b", name);
    const { code, stderr, report: r } = await hakobuMigrate(
      dir,
      `policy("cli-tunnel").codec([codec.zero(), codec.zstd()]).switchover(when.any(when.remainingBelow(MiB(4)), when.rounds(4))).bandwidth(null)`,
      [
        "--from",
        `libvirt:${lab.a.uri}/${name}`,
        "--to",
        `libvirt:${lab.b.uri}`,
        "--tunnel",
        "--tls-dir",
        `${dir}/pki`,
      ],
    );
    assert.equal(code, 0, stderr);
    console.log(
      `  cli --tunnel: ${r.outcome}; ${r.totalTimeMs} ms, downtime ${r.downtimeMs} ms; ${r.notes?.tunnel}`,
    );
    assert.equal(r.backend, "libvirt");
    assert.equal(r.verification, "stream-digest");
    assert.equal(migrationStatus(r), "verified", JSON.stringify(r.notes));
    assert.ok(r.tunnel.pages > 0, "pages went through hakobu's codecs");
    assert.ok(r.tunnel.wireBytes > 0);
    await lab.checkGuest("b", name, { since: mark, boot })
      .catch((e) => Promise.reject(asTcgFault(e)));
    assert.equal(await lab.domainState("a", name), null, "gone from a");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
