/**
 * What a libvirt migration's tunnel (`--tunnel`, `--tunnel-receiver`) is
 * started with under a plan, without libvirt: the plan's codecs, pacing,
 * channels and resume grace reach both tunnel ends' options.
 */

import assert from "node:assert/strict";
import { codec, policy, seconds, when } from "../../mod.ts";
import { libvirtTunnelOptions } from "./libvirt.ts";

const plain = { insecurePlain: true } as const;

Deno.test("libvirt tunnel options: a plan that resumes gives the tunnel its grace; one that does not gives none", () => {
  const resuming = policy("r")
    .codec([codec.zero(), codec.lz4()])
    .resume({ grace: seconds(20), attempts: 3 })
    .switchover(when.rounds(3))
    .compile();
  const o = libvirtTunnelOptions(resuming, plain, undefined);
  assert.equal(o.resumeGraceMs, 20_000);
  assert.deepEqual(o.codecs, ["zero", "lz4", "raw"]);
  assert.equal(o.remoteReceiver, undefined);
  const once = policy("n").switchover(when.rounds(3)).compile();
  assert.equal(
    "resumeGraceMs" in libvirtTunnelOptions(once, plain, undefined),
    false,
  );
});

Deno.test("libvirt tunnel options: a receiver on the destination host is named with its migration port and listen address, and the sender still resumes", () => {
  const plan = policy("r")
    .resume({ grace: seconds(5), attempts: 2 })
    .switchover(when.rounds(3))
    .compile();
  const o = libvirtTunnelOptions(plan, { tlsDir: "/etc/pki/hakobu" }, {
    at: "10.0.0.2:4445",
    migrationPort: 49152,
    listenAddress: "127.0.0.1",
  });
  assert.equal(o.remoteReceiver, "10.0.0.2:4445");
  assert.equal(o.port, 49152);
  assert.equal(o.destinationListen, "127.0.0.1");
  assert.equal(o.resumeGraceMs, 5000);
  assert.deepEqual(o.security, { tlsDir: "/etc/pki/hakobu" });
});
