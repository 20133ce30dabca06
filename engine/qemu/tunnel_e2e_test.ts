import assert from "node:assert/strict";
import { qemuBinary, startQemu } from "./stream/_capture.ts";

Deno.test({
  name:
    "tunnel e2e: QEMU → scripts/tunnel.ts qemu send → qemu receive → QEMU -incoming exec: runs",
  ignore: qemuBinary() === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "hakobu-e2e-" });
    const main = `${
      new URL("../../scripts/tunnel.ts", import.meta.url).pathname
    } qemu`;
    const deno = Deno.execPath();
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const recvLog = `${dir}/recv.log`;
    const sendLog = `${dir}/send.log`;
    const dst = await startQemu(dir, "dst", {
      extra: [
        "-incoming",
        `exec:${deno} run -A ${main} receive --listen 127.0.0.1:${port} --insecure-plain 2>${recvLog}`,
      ],
    });
    const src = await startQemu(dir, "src", {});
    try {
      // `send` retries its connection while the receiver starts.
      await src.qmp.execute("migrate", {
        uri:
          `exec:${deno} run -A ${main} send --to 127.0.0.1:${port} --codecs zero,lz4 --insecure-plain 2>${sendLog}`,
      });
      assert.equal(await src.qmp.waitMigration(), "completed");
      let status = "";
      for (let i = 0; i < 100; i++) {
        status = ((await dst.qmp.execute("query-status")) as { status: string })
          .status;
        if (status === "running") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(
        status,
        "running",
        await Deno.readTextFile(recvLog).catch(() => ""),
      );
      const recv = JSON.parse(
        (await Deno.readTextFile(recvLog)).trim().split("\n").pop()!,
      );
      assert.equal(recv.ok, true);
      assert.equal(recv.verified, true);
    } finally {
      await src.stop();
      await dst.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
