/**
 * `hakobu receive --resume-grace` and `hakobu migrate --channel-connections`
 * as a user runs them, over TLS (certificates from `hakobu tls init`), with
 * a policy file that resumes: the session's connection goes through the
 * fault proxy and is cut mid-round; the receiver parks the session, the
 * source reconnects with the same certificate, RESUMEs, every channel joins
 * again on a connection of its own, and both processes report the
 * migration verified, resumed once.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { faultProxy } from "../../engine/_fault_proxy.ts";
import { withDeadline } from "../../engine/_precopy_testing.ts";
import {
  HAKOBU,
  hakobu,
  ROOT,
  startReceiver,
  withTempDir,
} from "./_cli_testing.ts";

/** Generous: both processes type-check their module graphs on a cold cache. */
const DEADLINE_MS = 240_000;
const MEMORY_MIB = 32;

/**
 * The policy file: raw pages on 2 channels paced at 16 MB/s (round 0 of 32
 * MiB takes 2 s: the cut comes well inside it), resumable for 30 s.
 */
function policyFile(): string {
  const mod = new URL("../../mod.ts", import.meta.url).href;
  return `import { codec, MBps, policy, when } from "${mod}";

export default policy("cli-channel-resume")
  .codec([codec.raw()])
  .channels(2)
  .bandwidth(MBps(16))
  .switchover(when.rounds(3))
  .resume({ grace: 30_000, attempts: 3 });
`;
}

Deno.test({
  name:
    "hakobu migrate --channel-connections over TLS with a policy that resumes: the session's connection cut mid-round resumes, and both processes report it verified",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await withTempDir(async (dir) => {
      const creds = join(dir, "pki");
      const init = await hakobu(["tls", "init", creds, "--identity", "src-a"]);
      assert.equal(
        init.code,
        0,
        `hakobu tls init exited ${init.code}: ${init.stdout}${init.stderr}`,
      );
      const policy = join(dir, "resume.ts");
      await Deno.writeTextFile(policy, policyFile());
      const receiver = await startReceiver([
        "--tls-dir",
        creds,
        "--tls-authz",
        "src-a",
        "--resume-grace",
        "30000",
      ]);
      const proxy = faultProxy(Number(receiver.port), []);
      const reportPath = join(dir, "report.json");
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          HAKOBU,
          "migrate",
          "--from",
          "sim:unique",
          "--mem",
          `${MEMORY_MIB}MiB`,
          "--to",
          `127.0.0.1:${proxy.port}`,
          "--tls-dir",
          creds,
          "--policy",
          policy,
          "--channel-connections",
          "--report",
          reportPath,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).spawn();
      const stdout = new Response(child.stdout).text();
      const stderr = new Response(child.stderr).text();
      try {
        // WELCOME came back (the session's connection carries nothing else
        // down until READY): the channels join and round 0 starts; cut
        // 0.7 s into it.
        await withDeadline(
          (async () => {
            while ((proxy.connections[0]?.down ?? 0) === 0) {
              await new Promise((r) => setTimeout(r, 20));
            }
          })(),
          "WELCOME",
          DEADLINE_MS,
        );
        await new Promise((r) => setTimeout(r, 700));
        proxy.cut();
        const { code } = await withDeadline(
          child.status,
          "migrate's exit",
          DEADLINE_MS,
        );
        const out = await stdout;
        const err = await stderr;
        assert.equal(code, 0, `${out}\n${err}`);
        assert.match(out, /result\s+VERIFIED \(memory digests match\)/);
        assert.match(out, /^resumed\s+1 time after a lost link: round 0, /m);
        const report = JSON.parse(await Deno.readTextFile(reportPath));
        assert.equal(report.verified, true, report.outcome);
        assert.equal(report.channelConnections, true);
        assert.equal(report.resumes?.length, 1, "not resumed exactly once");
        assert.equal(report.resumes[0].round, 0, "the cut was not in round 0");
        const pages = MEMORY_MIB * 2 ** 20 / 4096;
        assert.ok(
          report.resumes[0].pagesMissing > 0 &&
            report.resumes[0].pagesMissing < pages,
          `${
            report.resumes[0].pagesMissing
          } of ${pages} pages missing after the cut`,
        );
        // The source's connection, then its RESUME's.
        assert.equal(proxy.connections.length, 2);

        const done = await withDeadline(
          receiver.finished(),
          "the receiver's exit",
          DEADLINE_MS,
        );
        assert.equal(done.code, 0, done.stderr);
        const verdicts = done.stdout.split("\n").filter((l) =>
          l.startsWith("{")
        ).map((l) => JSON.parse(l)).filter((v) => !v.joined);
        assert.equal(verdicts.length, 1, done.stdout);
        assert.equal(verdicts[0].verified, true);
        assert.equal(verdicts[0].resumes, 1);
        assert.equal(verdicts[0].channels, 2);
        assert.equal(verdicts[0].identity, "src-a");
        assert.equal(verdicts[0].digest, report.digest);
      } finally {
        try {
          child.kill();
        } catch { /* exited */ }
        receiver.kill();
        await proxy.close();
      }
    });
  },
});
