/**
 * One libvirt "host" of the lab: a `libvirtd --listen` in its own mount
 * namespace (`unshare --mount`), with private copies of libvirt's folders
 * bind-mounted over the real ones, listening on 127.0.0.1:PORT without
 * authentication. Also: finding every process of a lab (the daemons and
 * the QEMUs they started, which share the daemons' mount namespaces) from
 * /proc, so that a lab can be stopped even after its owner was killed.
 *
 * @module
 */

import { sh } from "./_sh.ts";

/** The folders libvirt uses, by the name of the lab's private copy. */
export const PRIVATE_MOUNTS = {
  run: "/run/libvirt",
  lib: "/var/lib/libvirt",
  log: "/var/log/libvirt",
  cache: "/var/cache/libvirt",
  etc: "/etc/libvirt",
} as const;

/** Key of {@link PRIVATE_MOUNTS}. */
export type PrivateDir = keyof typeof PRIVATE_MOUNTS;

/** One daemon's settings. */
export interface DaemonSpec {
  /** The host's private folder (holds run/, lib/, log/, cache/, etc/). */
  readonly dir: string;
  readonly port: number;
  readonly migrationPorts: readonly [number, number];
  readonly hostUuid: string;
}

/** libvirtd.conf of a lab host. */
export function libvirtdConf(spec: DaemonSpec): string {
  return `# hakobu libvirt lab (scripts/lab/libvirt_lab.ts): lab only, no authentication
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "${spec.port}"
auth_tcp = "none"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "${spec.hostUuid}"
log_outputs = "3:file:${PRIVATE_MOUNTS.log}/libvirtd.log"
`;
}

/** qemu.conf of a lab host. */
export function qemuConf(spec: DaemonSpec): string {
  return `# hakobu libvirt lab (scripts/lab/libvirt_lab.ts)
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
migration_port_min = ${spec.migrationPorts[0]}
migration_port_max = ${spec.migrationPorts[1]}
`;
}

/** Writes a fresh private tree for the daemon (removing an old one). */
export async function prepareHostDir(spec: DaemonSpec): Promise<void> {
  await Deno.remove(spec.dir, { recursive: true }).catch(() => {});
  for (const d of Object.keys(PRIVATE_MOUNTS)) {
    await Deno.mkdir(`${spec.dir}/${d}`, { recursive: true });
  }
  // the guests' serial logs go here (QEMU opens them before libvirt makes it)
  await Deno.mkdir(`${spec.dir}/log/qemu`, { recursive: true });
  await Deno.writeTextFile(`${spec.dir}/etc/libvirtd.conf`, libvirtdConf(spec));
  await Deno.writeTextFile(`${spec.dir}/etc/qemu.conf`, qemuConf(spec));
  // the real folders are the bind mounts' targets
  for (const target of Object.values(PRIVATE_MOUNTS)) {
    await Deno.mkdir(target, { recursive: true });
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The daemon's command line: unshare, bind mounts, exec libvirtd. */
export function daemonArgv(spec: DaemonSpec, detached: boolean): string[] {
  const mounts = Object.entries(PRIVATE_MOUNTS).map(([d, target]) =>
    `mount --bind ${shellQuote(`${spec.dir}/${d}`)} ${target}`
  );
  const script = [
    "set -e",
    ...mounts,
    `exec libvirtd --listen --pid-file ${PRIVATE_MOUNTS.run}/libvirtd.pid >> ${
      shellQuote(`${spec.dir}/libvirtd.out`)
    } 2>&1`,
  ].join("\n");
  return [
    ...(detached ? ["setsid"] : []),
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "--",
    "sh",
    "-c",
    script,
  ];
}

/** A process of a lab, found in /proc. */
export interface LabProcess {
  readonly pid: number;
  /** `/proc/PID/comm`, e.g. `libvirtd` or `qemu-system-x86`. */
  readonly comm: string;
  /** Which private tree its mount namespace holds. */
  readonly hostDir: string;
}

/**
 * Every live process whose mount namespace has one of `hostDirs`' `run/`
 * bind-mounted on /run/libvirt: the lab's daemons and the QEMUs they
 * started. Zombies have no mounts and are not listed.
 */
export async function findLabProcesses(
  hostDirs: readonly string[],
): Promise<LabProcess[]> {
  const found: LabProcess[] = [];
  const runs = hostDirs.map((d) => `${d.replace(/\/+$/, "")}/run`);
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name) || Number(e.name) === Deno.pid) continue;
    const info = await Deno.readTextFile(`/proc/${e.name}/mountinfo`).catch(
      () => "",
    );
    if (!info.includes(PRIVATE_MOUNTS.run)) continue;
    for (const line of info.split("\n")) {
      // id parent major:minor root mountpoint ...
      const f = line.split(" ");
      if (f[4] !== PRIVATE_MOUNTS.run) continue;
      const root = unescapeMountinfo(f[3] ?? "");
      // root is relative to its filesystem: the lab path ends with it
      const i = runs.findIndex((r) => root.startsWith("/") && r.endsWith(root));
      if (i < 0) continue;
      const comm = (await Deno.readTextFile(`/proc/${e.name}/comm`).catch(() =>
        "?"
      )).trim();
      found.push({ pid: Number(e.name), comm, hostDir: hostDirs[i] });
      break;
    }
  }
  return found;
}

function unescapeMountinfo(s: string): string {
  return s.replace(
    /\\([0-7]{3})/g,
    (_, o) => String.fromCharCode(parseInt(o, 8)),
  );
}

/**
 * SIGKILLs every process of the lab until none is left: the mount
 * namespaces (and their bind mounts) go with the last one.
 *
 * @throws when some survive `timeoutMs`.
 */
export async function killLabProcesses(
  hostDirs: readonly string[],
  timeoutMs = 15_000,
): Promise<LabProcess[]> {
  const killed = new Map<number, LabProcess>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = await findLabProcesses(hostDirs);
    if (left.length === 0) return [...killed.values()];
    if (Date.now() > deadline) {
      throw new Error(
        `Cannot stop the libvirt lab: ${
          left.map((p) => `${p.comm} (pid ${p.pid})`).join(", ")
        } still running after SIGKILL`,
      );
    }
    for (const p of left) {
      killed.set(p.pid, p);
      try {
        Deno.kill(p.pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export async function portOpen(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

/** True when 127.0.0.1:port can be bound now. */
export function portFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Waits until `virsh -c uri uri` answers, or the daemon exits, or
 * `timeoutMs` passes (then throws with the end of its log).
 */
export async function waitDaemon(
  uri: string,
  spec: DaemonSpec,
  exited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!exited() && await portOpen(spec.port)) {
      try {
        // "uri", not "version": that probes every QEMU binary (~8 s)
        await sh(["virsh", "-q", "-c", uri, "uri"]);
        return;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
    }
    if (exited()) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const out = await Deno.readTextFile(`${spec.dir}/libvirtd.out`).catch(() =>
    ""
  );
  const log = await Deno.readTextFile(`${spec.dir}/log/libvirtd.log`).catch(
    () => "",
  );
  throw new Error(
    `libvirtd for "${uri}" ${
      exited() ? "exited" : `did not answer in ${timeoutMs} ms`
    }${last ? ` (${last})` : ""}: ${
      (out + log).trim().split("\n").filter((l) =>
        !/dmidecode|\/dev\/mem/.test(l)
      )
        .slice(-8).join("\n")
    }`,
  );
}

/**
 * Starts a watchdog, in a session of its own (so a TERM to the test run's
 * process group spares it), that SIGKILLs every process of the lab once
 * `ownerPid` has exited: libvirt puts its QEMUs in sessions of their own,
 * so a test run killed mid-way would otherwise leave them running until
 * the next start of the lab. Kill it (SIGKILL) when the lab stops normally.
 */
export function spawnWatchdog(
  ownerPid: number,
  hostDirs: readonly string[],
): Deno.ChildProcess {
  // mountinfo's root field is relative to the folder's filesystem: match
  // the folder's last component and what follows
  const patterns = hostDirs.flatMap((d) => {
    const parts = d.replace(/\/+$/, "").split("/");
    return ["-e", `/${parts.at(-2)}/${parts.at(-1)}/run /run/libvirt `];
  });
  const script = `
while kill -0 ${ownerPid} 2>/dev/null; do sleep 1; done
for i in 1 2 3; do
  for f in /proc/[0-9]*/mountinfo; do
    if grep -qF "$@" "$f" 2>/dev/null; then p=\${f#/proc/}; kill -9 "\${p%/mountinfo}" 2>/dev/null; fi
  done
  sleep 1
done
`;
  const child = new Deno.Command("setsid", {
    args: ["sh", "-c", script, "hakobu-libvirt-lab-watchdog", ...patterns],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  child.unref();
  return child;
}
