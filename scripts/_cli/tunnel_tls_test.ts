/**
 * A tunnel receiver over TLS lets no byte of an unauthenticated peer reach
 * the program behind it: `xl migrate-receive` (here a stand-in that records
 * that it ran) is started only for a peer that authenticated.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { connectChannel } from "../../engine/transport/secure/connect.ts";
import { connectSecurityFromDir } from "../../engine/transport/secure/credentials.ts";
import { generateCredentials } from "../../engine/transport/secure/generate.ts";
import { withTempDir } from "./_cli_testing.ts";

const TUNNEL = new URL("../tunnel.ts", import.meta.url).pathname;

Deno.test("tunnel xen receive over TLS: refused peers never start xl, nor reach it", async () => {
  await withTempDir(async (dir) => {
    const pki = join(dir, "pki");
    const other = join(dir, "other");
    await generateCredentials(pki, {
      receiverNames: ["127.0.0.1"],
      sourceIdentity: "src-a",
    });
    await generateCredentials(other, {
      receiverNames: ["127.0.0.1"],
      sourceIdentity: "src-a",
    });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const started = join(dir, "xl-started");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        TUNNEL,
        "xen",
        "receive",
        "--listen",
        `127.0.0.1:${port}`,
        "--tls-dir",
        pki,
        "--tls-authz",
        "src-b",
        "--",
        "sh",
        "-c",
        `touch ${started}; cat > ${join(dir, "xl-stdin")}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const to = { hostname: "127.0.0.1", port };
    // Wait until it listens (a plain connect succeeds), then try the peers.
    for (let i = 0;; i++) {
      try {
        (await Deno.connect(to)).close();
        break;
      } catch (e) {
        if (i > 200) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    // 1. Plain TCP, writing what could be a stream.
    const plain = await Deno.connect(to);
    await plain.write(
      new TextEncoder().encode("xl migration stream? ".repeat(100)),
    );
    // 2. A certificate from another CA.
    const foreign = await connectSecurityFromDir(other) as {
      kind: "tls";
      client?: { cert: string; key: string };
    };
    await assert.rejects(
      connectChannel(to, {
        kind: "tls",
        ca: await Deno.readTextFile(join(pki, "ca-cert.pem")),
        client: foreign.client,
      }),
      /not trusted/,
    );
    // 3. A valid source that is not admitted (src-a; only src-b is).
    await assert.rejects(
      connectChannel(to, await connectSecurityFromDir(pki)),
      /"src-a" is not authorised/,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(
      await Deno.stat(started).then(() => true, () => false),
      false,
      "xl was started",
    );
    try {
      plain.close();
    } catch { /* closed by the receiver */ }
    child.kill("SIGTERM");
    await child.status;
    const log = await stderr;
    assert.match(log, /refused .* Identity "src-a" is not authorised/);
    assert.match(log, /refused .* The client certificate is not trusted/);
  });
});
