/**
 * The `exec:` tunnel as QEMU runs it (`/bin/sh -c` on the URI, QEMU's
 * stream on stdin), against an in-process receiver: its verdict is the
 * sender's own comparison of both digests.
 */

import assert from "node:assert/strict";
import { hex } from "../digest.ts";
import { xxh3x128 } from "../../ffi/xxhash.ts";
import { lyingReceiver } from "../wire/_lying_receiver.ts";
import { execTunnel } from "./exec_tunnel.ts";
import { receiveQemuStream } from "./tunnel.ts";
import { firmwareStream } from "./stream/_fixture.ts";
import { FrameType } from "../wire/frame.ts";

const fixture = firmwareStream();
const digest = new Uint8Array(16);
xxh3x128(fixture, digest, 0);
const sha = hex(digest);

/** Runs the URI's command as QEMU would, feeding it the stream. */
async function runLikeQemu(
  uri: string,
  env?: Record<string, string>,
): Promise<number> {
  assert.ok(uri.startsWith("exec:"));
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", uri.slice("exec:".length)],
    stdin: "piped",
    env,
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(fixture).catch(() => {});
  await w.close().catch(() => {});
  return (await child.status).code;
}

async function withListener(
  serve: (conn: Deno.Conn) => Promise<unknown>,
  body: (to: string) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(serve);
  try {
    await body(`127.0.0.1:${(listener.addr as Deno.NetAddr).port}`);
  } finally {
    listener.close();
    await served.catch(() => {});
  }
}

Deno.test("execTunnel: a real receiver gives a verdict with both digests equal to the stream's", async () => {
  await withListener(
    (c) => receiveQemuStream(c, new WritableStream()),
    async (to) => {
      const tunnel = await execTunnel({
        to,
        codecs: ["zero", "lz4"],
        security: { insecurePlain: true },
      });
      try {
        assert.equal(await runLikeQemu(tunnel.uri), 0);
        const v = await tunnel.verdict(20_000);
        assert.equal(v.verified, true, v.detail);
        assert.equal(v.sourceDigest, sha);
        assert.equal(v.destinationDigest, sha);
        assert.equal(tunnel.stats?.streamBytes, fixture.length);
      } finally {
        await Deno.remove(tunnel.statsFile).catch(() => {});
      }
    },
  );
});

Deno.test("execTunnel: HAKOBU_TRACE_TUNNEL=FILE makes the sender append its phases with epoch times, in order", async () => {
  const trace = await Deno.makeTempFile({ suffix: ".trace" });
  try {
    await withListener(
      (c) => receiveQemuStream(c, new WritableStream()),
      async (to) => {
        const tunnel = await execTunnel({
          to,
          codecs: ["zero"],
          security: { insecurePlain: true },
        });
        try {
          const before = Date.now();
          const code = await runLikeQemu(tunnel.uri, {
            HAKOBU_TRACE_TUNNEL: trace,
          });
          assert.equal(code, 0);
          assert.equal((await tunnel.verdict(20_000)).verified, true);
          const lines = (await Deno.readTextFile(trace)).trim().split("\n");
          const parsed = lines.map((l) => {
            const m = /^(\d+\.\d) (\d+) (.+)$/.exec(l);
            assert.ok(m, `a trace line is "EPOCH_MS PID EVENT": ${l}`);
            return { ms: Number(m[1]), event: m[3] };
          });
          assert.deepEqual(
            parsed.map((p) => p.event).filter((e) => e.startsWith("send ")),
            [
              "send first bytes read",
              "send stream header parsed",
              "send WELCOME read",
              "send channels ready",
              "send input ended",
              "send STREAM_END written",
              "send RESULT read",
            ],
            "the sender's phases of a one-round stream, in order",
          );
          for (const p of parsed) {
            assert.ok(
              p.ms >= before - 1000 && p.ms <= Date.now() + 1000,
              `trace times are epoch ms of this run: ${p.ms}`,
            );
          }
        } finally {
          await Deno.remove(tunnel.statsFile).catch(() => {});
        }
      },
    );
  } finally {
    await Deno.remove(trace);
  }
});

Deno.test("execTunnel: a receiver that lies about its digest gives a failed verdict that says why", async () => {
  await withListener(
    (c) =>
      lyingReceiver(c, {
        endType: FrameType.STREAM_END,
        digest: "ef".repeat(16),
        verify: "xxh3-128",
      }),
    async (to) => {
      const tunnel = await execTunnel({
        to,
        codecs: ["zero"],
        security: { insecurePlain: true },
      });
      try {
        assert.equal(await runLikeQemu(tunnel.uri), 1);
        const v = await tunnel.verdict(20_000);
        assert.equal(v.verified, false);
        assert.match(
          v.detail,
          /^the tunnel sender failed: Receiver's rebuilt stream differs/,
        );
        assert.equal(tunnel.stats, null);
      } finally {
        await Deno.remove(tunnel.statsFile).catch(() => {});
      }
    },
  );
});

Deno.test("execTunnel: no statistics within the deadline is a failed verdict, not a hang", async () => {
  const tunnel = await execTunnel({
    to: "127.0.0.1:1",
    codecs: ["zero"],
    security: { insecurePlain: true },
  });
  try {
    const v = await tunnel.verdict(100);
    assert.equal(v.verified, false);
    assert.match(v.detail, /wrote no statistics within 100 ms/);
  } finally {
    await Deno.remove(tunnel.statsFile).catch(() => {});
  }
});

Deno.test("execTunnel: a resume grace becomes the sender's --resume-grace; without one there is none", async () => {
  const withGrace = await execTunnel({
    to: "127.0.0.1:9",
    codecs: ["zero"],
    security: { insecurePlain: true },
    resumeGraceMs: 30_000,
  });
  const without = await execTunnel({
    to: "127.0.0.1:9",
    codecs: ["zero"],
    security: { insecurePlain: true },
  });
  try {
    assert.match(withGrace.uri, / '?--resume-grace'? '?30000'? /);
    assert.doesNotMatch(without.uri, /--resume-grace/);
  } finally {
    await Deno.remove(withGrace.statsFile);
    await Deno.remove(without.statsFile);
  }
});
