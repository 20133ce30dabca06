import assert from "node:assert/strict";
import { compile, policy, when } from "../../dsl/mod.ts";
import type { MigrationProgress } from "../precopy.ts";
import { receiveMigration } from "../receiver.ts";
import type { RoundReport } from "../report.ts";
import { SimMemorySink } from "../sim/mod.ts";
import { BackendError } from "./backend.ts";
import {
  backendByScheme,
  backendFactories,
  openBackend,
  parseBackendSource,
} from "./registry.ts";
import { parseXenTarget } from "./xen.ts";

const FORMS =
  /expected sim:WORKLOAD, qemu:QMP_SOCKET, xen:DOMAIN or libvirt:URI\/DOMAIN/;

Deno.test("registry: each source form opens its backend, parsing only", () => {
  const sim = openBackend("sim:memcached", { memoryBytes: 8 << 20 });
  assert.deepEqual([sim.scheme, sim.source], ["sim", "sim:memcached"]);
  // Nothing is touched: no QMP socket, no xl, at open.
  const qemu = openBackend("qemu:/nonexistent/src.qmp");
  assert.deepEqual([qemu.scheme, qemu.source], [
    "qemu",
    "qemu:/nonexistent/src.qmp",
  ]);
  const xen = openBackend("xen:vm1");
  assert.deepEqual([xen.scheme, xen.source], ["xen", "xen:vm1"]);
  // Everything after the first colon is the backend's: a QMP path may hold colons.
  assert.equal(parseBackendSource("qemu:/run/a:b.qmp").rest, "/run/a:b.qmp");
  assert.deepEqual(
    backendFactories().map((b) => b.scheme),
    ["sim", "qemu", "xen", "libvirt"],
  );
  assert.equal(backendByScheme("xen").sourceForm, "xen:DOMAIN");
});

Deno.test("registry: a bad source string is refused naming every accepted form, or the backend's own", () => {
  const cases: [string, RegExp][] = [
    ["memcached", FORMS],
    ["", FORMS],
    ["vmware:vm1", /"vmware" is no backend/],
    ["SIM:idle", FORMS],
    ["sim:", /Cannot parse source "sim:": expected sim:WORKLOAD/],
    ["sim:Big Box", /expected sim:WORKLOAD, e\.g\. sim:memcached/],
    ["sim:nope", /Unknown workload "nope": known workloads are/],
    ["qemu:", /Cannot parse source "qemu:": expected qemu:QMP_SOCKET/],
    ["xen:", /Cannot parse source "xen:": expected xen:DOMAIN/],
    ["xen:two words", /expected xen:DOMAIN, a domain's name or id/],
  ];
  for (const [source, message] of cases) {
    assert.throws(() => openBackend(source), message, source);
  }
  for (const source of ["memcached", "vmware:vm1", "qemu:", "xen:a b"]) {
    assert.throws(
      () => openBackend(source),
      (e: unknown) => e instanceof BackendError && e.field === "source",
    );
  }
  assert.throws(
    () => backendByScheme("libvirt"),
    /expected one of "sim", "qemu", "xen"/,
  );
});

Deno.test("backends: a bad target, or no security for hakobu's link, is refused before the VM is touched", async () => {
  const plan = compile(policy("p").switchover(when.rounds(2)));
  // The QMP socket does not exist: the target error comes first.
  await assert.rejects(
    openBackend("qemu:/nonexistent/src.qmp").migrate(plan, "localhost", {
      security: { insecurePlain: true },
    }),
    (e: unknown) =>
      e instanceof BackendError && e.field === "target" &&
      /Cannot parse destination "localhost": expected HOST:PORT.*a qemu source migrates to HOST:PORT/
        .test(e.message),
  );
  await assert.rejects(
    openBackend("sim:idle").migrate(plan, "127.0.0.1:1"),
    /No connection security chosen for the link from "sim:idle" to "127\.0\.0\.1:1"/,
  );
  await assert.rejects(
    openBackend("xen:vm1").migrate(plan, "10.0.0.2:4445"),
    /No connection security chosen for the link from "xen:vm1"/,
  );
  await assert.rejects(
    openBackend("xen:vm1").migrate(plan, "a b"),
    /Cannot parse destination "a b" of a xen source: expected HOST \(ssh HOST xl migrate-receive; localhost: this host\), HOST:PORT .* or exec:COMMAND/,
  );
});

Deno.test("xen targets: a host is xl's ssh receiver, HOST:PORT the tunnel, exec: any command", () => {
  assert.deepEqual(parseXenTarget("root@host2"), {
    kind: "command",
    receiver: "ssh root@host2 xl migrate-receive",
  });
  assert.deepEqual(parseXenTarget("exec:nc host2 9 | cat"), {
    kind: "command",
    receiver: "nc host2 9 | cat",
  });
  assert.deepEqual(parseXenTarget("[::1]:4445"), {
    kind: "tunnel",
    hostname: "::1",
    port: 4445,
  });
  for (const bad of ["exec:", "host:99999", "-oProxyCommand=x"]) {
    assert.throws(() => parseXenTarget(bad), BackendError, bad);
  }
});

Deno.test("sim backend: migrates to a receiver over TCP with the engine's progress and round feed, and says which backend ran", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received = (async () => {
    const conn = await listener.accept();
    listener.close();
    return await receiveMigration(conn, {
      createSink: (h) =>
        new SimMemorySink({
          pageSize: h.pageSize,
          pageCount: h.memoryBytes / h.pageSize,
        }),
    });
  })();
  const plan = compile(
    policy("three").switchover(when.rounds(3)).channels(1),
  );
  const rounds: RoundReport[] = [];
  const progress: MigrationProgress[] = [];
  const vm = openBackend("sim:partial", { memoryBytes: 8 << 20, seed: 2 });
  const report = await vm.migrate(
    plan,
    `127.0.0.1:${listener.addr.port}`,
    {
      security: { insecurePlain: true },
      onRound: (r) => rounds.push(r),
      onProgress: (p) => progress.push(p),
    },
  );
  assert.equal((await received).verified, true);
  assert.equal(report.verified, true);
  assert.equal(report.backend, "sim");
  assert.equal(report.rounds.length, 4);
  assert.deepEqual(rounds, report.rounds);
  assert.ok(progress.some((p) => p.final) && progress.some((p) => !p.final));
  // The decisions went through the steering: history-aware, maxRounds-bounded.
  assert.equal(report.rounds[2].decision, "switchover");
});
