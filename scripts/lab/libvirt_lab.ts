/**
 * The libvirt lab: two libvirt "hosts" on one machine, each a `libvirtd
 * --listen` in its own mount namespace with private copies of
 * `/run/libvirt`, `/var/lib/libvirt`, `/var/log/libvirt`,
 * `/var/cache/libvirt` and `/etc/libvirt`, reachable as
 * `qemu+tcp://127.0.0.1:PORT/system` (no authentication: a lab). Their
 * guests are diskless TCG domains (the Debian cloud kernel and a busybox
 * initramfs) that keep known data in memory, dirty memory at a set rate and
 * print `HAKOBU-CHECK ok <n> ...` on a serial log private to each host, so
 * a test can tell that a guest migrated with its data intact.
 *
 * Tests start and stop it themselves ({@linkcode startLibvirtLab},
 * `await using`); `stop()` kills both daemons and every QEMU they started
 * (their mount namespaces, and so the bind mounts, go with them), and a
 * start first kills what a killed earlier run of the same lab left.
 *
 * ```sh
 * deno run -A scripts/lab/libvirt_lab.ts up [--guest NAME] [--dirty light]
 * deno run -A scripts/lab/libvirt_lab.ts status
 * deno run -A scripts/lab/libvirt_lab.ts down
 * ```
 *
 * Needs root and `libvirt-daemon-system libvirt-clients
 * libvirt-daemon-driver-qemu qemu-system-x86 linux-image-cloud-amd64
 * busybox-static cpio`. See docs/libvirt-lab.md.
 *
 * @module
 */

import { TcgGuestFault } from "./guest_fault.ts";
import { Option } from "@commander-js/extra-typings";
import { HakobuError } from "../../engine/errors.ts";
import { integer, parsed } from "../_cli/options.ts";
import { cliProgram, runCli } from "../_cli/program.ts";
import { sh } from "./_sh.ts";
import {
  daemonArgv,
  type DaemonSpec,
  findLabProcesses,
  killLabProcesses,
  type LabProcess,
  portFree,
  portOpen,
  prepareHostDir,
  PRIVATE_MOUNTS,
  spawnWatchdog,
  waitDaemon,
} from "./_libvirt_daemon.ts";
import {
  buildLibvirtGuest,
  capsCacheDir,
  cloudKernel,
  copyXmls,
  domainXml,
  type LibvirtGuestImage,
  padWrapperPath,
  writePadWrapper,
} from "./_libvirt_guest.ts";
import { startTcpProxy, type TcpProxy } from "./_libvirt_proxy.ts";

export { startTcpProxy, type TcpProxy };
export type { LabProcess };

/** The lab failed to start, stop or do what was asked; the message says why. */
export class LibvirtLabError extends HakobuError {}

/** What a failed {@linkcode LibvirtLab.checkGuest} saw. */
export type GuestFailureKind =
  /** The guest printed `HAKOBU-CHECK bad`: its known data changed. */
  | "bad"
  /** The serial log shows a kernel oops or panic. */
  | "crashed"
  /** A check line came from another boot than the one asked for. */
  | "rebooted"
  /** The domain is not running on that host (gone, shut off, paused). */
  | "not-running"
  /** No fresh check line in time. */
  | "hung";

/** A guest check that failed; `kind` says how. */
export class LibvirtGuestError extends LibvirtLabError {
  /** How the check failed. */
  readonly kind: GuestFailureKind;
  /**
   * Creates the error.
   *
   * @param kind How the check failed.
   * @param message What was seen, with the serial log's tail.
   */
  constructor(kind: GuestFailureKind, message: string) {
    super(message);
    this.kind = kind;
  }
}

/**
 * A guest failure that is QEMU/TCG's rather than the migration's
 * (`guest_fault.ts`): a guest that crashed, hung or booted again (a kernel
 * panic or triple fault that reset it) becomes a {@link TcgGuestFault},
 * which the lab tests retry a bounded number of times; lost data (`bad`)
 * and every other error stay as they are and fail at once.
 */
export function asTcgFault(e: unknown): unknown {
  return e instanceof LibvirtGuestError &&
      (e.kind === "crashed" || e.kind === "hung" || e.kind === "rebooted")
    ? new TcgGuestFault(e.message, { cause: e })
    : e;
}

/** The lab's two hosts. */
export type LibvirtHostName = "a" | "b";

/** One host of the lab. */
export interface LibvirtLabHost {
  readonly name: LibvirtHostName;
  /** `qemu+tcp://127.0.0.1:PORT/system`. */
  readonly uri: string;
  /** Its libvirtd's TCP port on 127.0.0.1. */
  readonly port: number;
  /** Its private tree: `run/`, `lib/`, `log/`, `cache/`, `etc/`. */
  readonly dir: string;
  /**
   * Real paths of what its daemon (and its QEMUs) see as `/run/libvirt`,
   * `/var/lib/libvirt`, `/var/log/libvirt`, `/var/cache/libvirt` and
   * `/etc/libvirt`.
   */
  readonly dirs: Readonly<Record<keyof typeof PRIVATE_MOUNTS, string>>;
  /** Its qemu.conf `migration_port_min`/`max` (disjoint between the hosts). */
  readonly migrationPorts: readonly [number, number];
  /** Its libvirtd.conf `host_uuid` (libvirt refuses to migrate to the same UUID). */
  readonly hostUuid: string;
}

/** A host, or its name. */
export type LibvirtHostRef = LibvirtLabHost | LibvirtHostName;

/** Options of {@linkcode startLibvirtLab}. */
export interface LibvirtLabOptions {
  /**
   * TCP ports of the two daemons on 127.0.0.1 (default `[16501, 16502]`).
   * Two labs at once need different ports (and take different default
   * folders and migration ports from them).
   */
  readonly ports?: readonly [number, number];
  /**
   * Folder of the two hosts' private trees (`a/`, `b/`) and the guests'
   * XML (default `$TMPDIR/hakobu-libvirt-lab-PORTA-PORTB`). Wiped at
   * start, after killing any process a killed earlier run left there.
   */
  readonly dir?: string;
  /**
   * Each host's migration port range (default 32 ports from
   * `12000 + (port % 500) * 40`, disjoint for ports that differ mod 500).
   */
  readonly migrationPorts?: readonly [
    readonly [number, number],
    readonly [number, number],
  ];
  /** Keep the folder after `stop()` (its logs), default false. */
  readonly keepDir?: boolean;
  /**
   * Leave the daemons running when this process exits (the CLI's `up`):
   * they run under `setsid`, and only `stop()` or `down` ends them.
   */
  readonly detached?: boolean;
  /** Milliseconds to wait for each daemon (default 60000). */
  readonly startTimeoutMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** A guest's settings. */
export interface LibvirtGuestOptions {
  /** Domain name (letters, digits, `-`, `_`, `.`). */
  readonly name: string;
  /** Guest memory in MiB (default 512). */
  readonly memoryMiB?: number;
  /**
   * How fast the guest dirties memory: MiB/s, `"light"` (4 MiB/s: any
   * migration converges), `"heavy"` (as fast as the vCPU can copy, over
   * `dirtyAreaMiB`: does not converge under a bandwidth cap below its rate,
   * see docs/libvirt-lab.md), or `"none"`. Default `"light"`.
   */
  readonly dirty?: "none" | "light" | "heavy" | number;
  /** MiB of known random data the guest keeps and checks (default 16). */
  readonly dataMiB?: number;
  /** MiB of memory the dirtier rewrites in turn (default 64). */
  readonly dirtyAreaMiB?: number;
  /** Seconds between check lines (default 2). */
  readonly checkEverySec?: number;
  /**
   * KiB added to the guest RAM by the lab's QEMU wrapper (default 8; 0 runs
   * QEMU itself): QEMU 7.2 loses TCG writes during a migration otherwise
   * (see `TCG_RAM_PAD_KIB` in qemu_guest.ts).
   */
  readonly ramPadKiB?: number;
}

/** Options of {@linkcode LibvirtLab.startGuest}. */
export interface StartGuestOptions extends LibvirtGuestOptions {
  /**
   * Define the domain first, then start it (default false: a transient
   * domain, `virsh create`, which a migration takes off the source).
   */
  readonly persistent?: boolean;
  /** Wait for the guest's first `ok` check line (default true). */
  readonly wait?: boolean;
  /** Milliseconds to wait for it (default 120000). */
  readonly timeoutMs?: number;
}

/** A parsed `HAKOBU-CHECK` line. */
export interface GuestCheck {
  /** `ok`: the known data matched its md5; `bad`: it did not. */
  readonly status: "ok" | "bad";
  /** The check's sequence number in this boot. */
  readonly n: number;
  /** The guest's boot id (8 hex digits, new at each boot). */
  readonly boot: string;
  /** Guest uptime in seconds. */
  readonly uptime: number;
  /** MiB the dirtier has written since boot. */
  readonly dirtiedMiB: number;
  /** The line itself. */
  readonly line: string;
}

/** A started guest. */
export interface StartedGuest {
  readonly name: string;
  readonly host: LibvirtHostName;
  /** The domain XML it was started from. */
  readonly xml: string;
  /** Its first `ok` check, or null when not waited for. */
  readonly check: GuestCheck | null;
}

/** A domain as `virsh list --all` shows it. */
export interface DomainInfo {
  /** Its id while it runs, else null. */
  readonly id: number | null;
  readonly name: string;
  /** `running`, `paused`, `shut off`, ... */
  readonly state: string;
}

/** Options of {@linkcode LibvirtLab.checkGuest}. */
export interface CheckGuestOptions {
  /**
   * Byte offset in the host's serial log after which a line counts
   * (default: the log's size when called, i.e. a line printed from now
   * on; see {@linkcode LibvirtLab.serialMark}). A log shorter than this
   * (recreated) is read from its start.
   */
  readonly since?: number;
  /** The boot id the line must carry (the guest did not restart). */
  readonly boot?: string;
  /** Milliseconds to wait (default 60000). */
  readonly timeoutMs?: number;
}

/** The settings of a migration through a proxy or tunnel (see {@linkcode proxiedMigration}). */
export interface ProxiedMigration {
  /** Where the source QEMU connects: `tcp://127.0.0.1:PORT`. */
  readonly migrateUri: string;
  /** Where the destination QEMU listens instead: `127.0.0.2`. */
  readonly listenAddress: string;
  /** What the proxy listens on (the source side). */
  readonly proxyListen: { readonly hostname: string; readonly port: number };
  /** What the proxy forwards to (the destination QEMU). */
  readonly proxyForward: { readonly hostname: string; readonly port: number };
  /** The same as `virsh migrate` flags. */
  readonly virshArgs: readonly string[];
  /**
   * The same as `virDomainMigrateToURI3` typed parameters
   * (`VIR_MIGRATE_PARAM_URI`, `VIR_MIGRATE_PARAM_LISTEN_ADDRESS`).
   */
  readonly params: {
    readonly migrate_uri: string;
    readonly listen_address: string;
  };
}

/**
 * The settings that route a libvirt migration's stream through whatever
 * listens on 127.0.0.1:`port` (a proxy, hakobu's tunnel): the source QEMU
 * connects to `tcp://127.0.0.1:port`, the destination QEMU listens on
 * 127.0.0.2:`port`, and the proxy forwards from the first to the second.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { proxiedMigration } from "./libvirt_lab.ts";
 *
 * const m = proxiedMigration(49500);
 * assert.deepEqual(m.virshArgs, [
 *   "--migrateuri", "tcp://127.0.0.1:49500", "--listen-address", "127.0.0.2",
 * ]);
 * assert.deepEqual(m.proxyForward, { hostname: "127.0.0.2", port: 49500 });
 * assert.equal(m.params.migrate_uri, "tcp://127.0.0.1:49500");
 * ```
 */
export function proxiedMigration(port: number): ProxiedMigration {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new LibvirtLabError(
      `Cannot route a migration through port "${port}": expected a TCP port (1-65535)`,
      { field: "port" },
    );
  }
  const migrateUri = `tcp://127.0.0.1:${port}`;
  const listenAddress = "127.0.0.2";
  return {
    migrateUri,
    listenAddress,
    proxyListen: { hostname: "127.0.0.1", port },
    proxyForward: { hostname: listenAddress, port },
    virshArgs: ["--migrateuri", migrateUri, "--listen-address", listenAddress],
    params: { migrate_uri: migrateUri, listen_address: listenAddress },
  };
}

/**
 * Parses a guest's `HAKOBU-CHECK` serial line, or returns null for any
 * other line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCheckLine } from "./libvirt_lab.ts";
 *
 * const c = parseCheckLine("HAKOBU-CHECK ok 7 boot=1a2b3c4d up=15.20 dirtied=48");
 * assert.deepEqual(
 *   { status: c?.status, n: c?.n, boot: c?.boot, uptime: c?.uptime, dirtiedMiB: c?.dirtiedMiB },
 *   { status: "ok", n: 7, boot: "1a2b3c4d", uptime: 15.2, dirtiedMiB: 48 },
 * );
 * assert.equal(parseCheckLine("hakobu: something else"), null);
 * ```
 */
export function parseCheckLine(line: string): GuestCheck | null {
  const m = /HAKOBU-CHECK (ok|bad) (\d+) boot=(\w+) up=([\d.]+) dirtied=(\d+)/
    .exec(
      line,
    );
  if (!m) return null;
  return {
    status: m[1] as "ok" | "bad",
    n: Number(m[2]),
    boot: m[3],
    uptime: Number(m[4]),
    dirtiedMiB: Number(m[5]),
    line: line.trim(),
  };
}

const OOPS = /BUG: |Oops: |general protection fault|Kernel panic/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DIRTY_PRESETS = { none: 0, light: 4, heavy: "max" } as const;

async function commandMissing(name: string): Promise<boolean> {
  const out = await sh(["sh", "-c", `command -v ${name}`], { allowFail: true });
  return out.trim() === "";
}

/**
 * Why the lab cannot run here, or null when it can: tests skip with this
 * reason. Checks root, the commands and the QEMU driver of libvirt, the
 * cloud kernel, and that a mount namespace can be made.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtLabUnavailable } from "./libvirt_lab.ts";
 *
 * const why = await libvirtLabUnavailable();
 * assert.ok(why === null || why.length > 0); // a reason, or null
 * ```
 */
export async function libvirtLabUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "the libvirt lab runs on Linux only";
  if (Deno.uid?.() !== 0) {
    return "the libvirt lab needs root (it bind-mounts libvirt's folders in private mount namespaces)";
  }
  const pkgs =
    "apt-get install --no-install-recommends libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu";
  for (const bin of ["libvirtd", "virsh"]) {
    if (await commandMissing(bin)) return `"${bin}" not found (${pkgs})`;
  }
  const driver = await sh([
    "sh",
    "-c",
    "ls /usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so /usr/lib64/libvirt/connection-driver/libvirt_driver_qemu.so 2>/dev/null",
  ], { allowFail: true });
  if (driver.trim() === "") {
    return `libvirt's QEMU driver (libvirt_driver_qemu.so) not found (${pkgs})`;
  }
  for (
    const [bin, pkg] of [
      ["qemu-system-x86_64", "qemu-system-x86"],
      ["busybox", "busybox-static"],
      ["cpio", "cpio"],
      ["unshare", "util-linux"],
    ]
  ) {
    if (await commandMissing(bin)) {
      return `"${bin}" not found (apt-get install ${pkg})`;
    }
  }
  if (!(await cloudKernel())) {
    return "no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)";
  }
  const ns = await new Deno.Command("unshare", {
    args: ["--mount", "--propagation", "private", "true"],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!ns.success) {
    return `cannot make a mount namespace (unshare --mount: ${
      new TextDecoder().decode(ns.stderr).trim()
    })`;
  }
  return null;
}

/** The lab's settings with every default filled in. */
interface ResolvedOptions {
  readonly ports: readonly [number, number];
  readonly dir: string;
  readonly migrationPorts: readonly [
    readonly [number, number],
    readonly [number, number],
  ];
}

function defaultMigrationPorts(port: number): [number, number] {
  // below Linux's ephemeral ports (32768-60999)
  const base = 12000 + (port % 500) * 40;
  return [base, base + 31];
}

function resolveOptions(options: LibvirtLabOptions): ResolvedOptions {
  const ports = options.ports ?? [16501, 16502];
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      throw new LibvirtLabError(
        `Cannot use port "${p}" for a libvirt lab host: expected a TCP port (1-65535)`,
        { field: "ports" },
      );
    }
  }
  if (ports[0] === ports[1]) {
    throw new LibvirtLabError(
      `Cannot give both libvirt lab hosts port "${
        ports[0]
      }": they need two ports`,
      { field: "ports" },
    );
  }
  const migrationPorts = options.migrationPorts ??
    [defaultMigrationPorts(ports[0]), defaultMigrationPorts(ports[1])];
  const [[a0, a1], [b0, b1]] = migrationPorts;
  if (a0 > a1 || b0 > b1 || !(a1 < b0 || b1 < a0)) {
    throw new LibvirtLabError(
      `Cannot use migration ports "${a0}-${a1}" and "${b0}-${b1}": expected two disjoint ranges`,
      { field: "migrationPorts" },
    );
  }
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  const dir = (options.dir ??
    `${tmp}/hakobu-libvirt-lab-${ports[0]}-${ports[1]}`).replace(/\/+$/, "");
  if (!dir.startsWith("/") || dir === "") {
    throw new LibvirtLabError(
      `Cannot use "${dir}" as the libvirt lab folder: expected an absolute path`,
      { field: "dir" },
    );
  }
  return { ports, dir, migrationPorts };
}

function hostDirs(dir: string): [string, string] {
  return [`${dir}/a`, `${dir}/b`];
}

/**
 * Kills whatever processes of the lab in `options.dir` (or the default
 * folder of `options.ports`) are still running, e.g. after its owner was
 * killed, and removes the folder unless `keepDir`. Returns what it killed.
 *
 * @example
 * ```ts
 * import { stopLibvirtLab } from "./libvirt_lab.ts";
 *
 * // Needs root: the doc tests type-check this function and do not call it.
 * async function down() {
 *   const killed = await stopLibvirtLab({ ports: [16501, 16502] });
 *   console.log(`${killed.length} processes killed`);
 * }
 * ```
 */
export async function stopLibvirtLab(
  options: Pick<LibvirtLabOptions, "dir" | "ports" | "keepDir"> = {},
): Promise<LabProcess[]> {
  const { dir } = resolveOptions(options);
  const killed = await killLabProcesses(hostDirs(dir));
  if (!options.keepDir) {
    await Deno.remove(dir, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
  return killed;
}

/**
 * The live processes of the lab in `options.dir` (or the default folder of
 * `options.ports`): its daemons and their QEMUs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libvirtLabProcesses } from "./libvirt_lab.ts";
 *
 * // a lab that was never started has none
 * const none = await libvirtLabProcesses({ dir: "/nonexistent/hakobu-lab" });
 * assert.deepEqual(none, []);
 * ```
 */
export async function libvirtLabProcesses(
  options: Pick<LibvirtLabOptions, "dir" | "ports"> = {},
): Promise<LabProcess[]> {
  return await findLabProcesses(hostDirs(resolveOptions(options).dir));
}

/**
 * Starts the two hosts: checks the machine ({@linkcode libvirtLabUnavailable}),
 * kills what an earlier run of the same lab left, builds the guest image
 * (cached), writes fresh private trees, starts both daemons and waits until
 * they answer (and have probed the guest's emulator, so the first guest and
 * the first migration do not pay for it). On a failure it stops what it
 * started before throwing.
 *
 * @example
 * ```ts
 * import { startLibvirtLab } from "./libvirt_lab.ts";
 *
 * // Needs root, libvirt and QEMU: the doc tests type-check this function and
 * // do not call it.
 * async function migrateOnce() {
 *   await using lab = await startLibvirtLab();
 *   const g = await lab.startGuest("a", { name: "g1", dirty: "light" });
 *   const mark = await lab.serialMark("b", "g1");
 *   await lab.virsh("a", ["migrate", "--live", "--p2p", "g1", lab.b.uri]);
 *   const check = await lab.checkGuest("b", "g1", { since: mark, boot: g.check?.boot });
 *   console.log(check.line); // HAKOBU-CHECK ok 9 boot=... on host b
 * }
 * ```
 */
export async function startLibvirtLab(
  options: LibvirtLabOptions = {},
): Promise<LibvirtLab> {
  const resolved = resolveOptions(options);
  const why = await libvirtLabUnavailable();
  if (why) throw new LibvirtLabError(`Cannot start the libvirt lab: ${why}`);
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  const dirs = hostDirs(resolved.dir);
  const stale = await killLabProcesses(dirs);
  if (stale.length) {
    log(
      `killed ${stale.length} processes left by an earlier run: ${
        stale.map((p) => `${p.comm} (${p.pid})`).join(", ")
      }`,
    );
  }
  for (const p of resolved.ports) {
    if (!portFree(p)) {
      throw new LibvirtLabError(
        `Cannot start the libvirt lab: port "${p}" on 127.0.0.1 is in use (another lab or program; pick other ports)`,
        { field: "ports" },
      );
    }
  }
  const image = await buildLibvirtGuest();
  log(
    `guest image ${
      image.built ? `built in ${image.buildMs.toFixed(0)} ms` : "cached"
    }`,
  );
  await Deno.remove(resolved.dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(resolved.dir, { recursive: true });
  const lab = new LibvirtLab(resolved, image, options);
  try {
    await lab._start(log);
  } catch (e) {
    await lab.stop().catch(() => {});
    throw e;
  }
  log(
    `lab up in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s: ${lab.a.uri} ${lab.b.uri}`,
  );
  return lab;
}

/**
 * A running lab of two libvirt hosts (from {@linkcode startLibvirtLab}).
 * Every method that takes a host takes it or its name (`"a"`, `"b"`).
 *
 * @example
 * ```ts
 * import { startLibvirtLab } from "./libvirt_lab.ts";
 *
 * // Needs root, libvirt and QEMU: the doc tests type-check this function and
 * // do not call it.
 * async function listBoth() {
 *   await using lab = await startLibvirtLab({ ports: [16511, 16512] });
 *   await lab.startGuest("a", { name: "busy", dirty: "heavy" });
 *   console.log(await lab.listDomains("a"), await lab.listDomains("b"));
 * }
 * ```
 */
export class LibvirtLab implements AsyncDisposable {
  /** The folder holding `a/`, `b/` and the guests' XML (`xml/`). */
  readonly dir: string;
  /** Host a. */
  readonly a: LibvirtLabHost;
  /** Host b. */
  readonly b: LibvirtLabHost;
  /** The guest image (kernel and initramfs). */
  readonly image: LibvirtGuestImage;
  readonly #keepDir: boolean;
  readonly #detached: boolean;
  readonly #timeoutMs: number;
  readonly #children: Deno.ChildProcess[] = [];
  readonly #proxies = new Set<TcpProxy>();
  #watchdog: Deno.ChildProcess | null = null;
  #stopped = false;

  /** Use {@linkcode startLibvirtLab}. */
  constructor(
    resolved: ResolvedOptions,
    image: LibvirtGuestImage,
    options: LibvirtLabOptions,
  ) {
    this.dir = resolved.dir;
    this.image = image;
    this.#keepDir = options.keepDir ?? false;
    this.#detached = options.detached ?? false;
    this.#timeoutMs = options.startTimeoutMs ?? 60_000;
    const host = (name: LibvirtHostName, i: 0 | 1): LibvirtLabHost => {
      const dir = `${resolved.dir}/${name}`;
      return {
        name,
        uri: `qemu+tcp://127.0.0.1:${resolved.ports[i]}/system`,
        port: resolved.ports[i],
        dir,
        dirs: {
          run: `${dir}/run`,
          lib: `${dir}/lib`,
          log: `${dir}/log`,
          cache: `${dir}/cache`,
          etc: `${dir}/etc`,
        },
        migrationPorts: resolved.migrationPorts[i],
        hostUuid: crypto.randomUUID(),
      };
    };
    this.a = host("a", 0);
    this.b = host("b", 1);
  }

  /** Both hosts, a then b. */
  get hosts(): readonly [LibvirtLabHost, LibvirtLabHost] {
    return [this.a, this.b];
  }

  /** The QEMU wrapper that pads guest RAM by 8 KiB (the guests' `<emulator>`). */
  get qemuWrapper(): string {
    return padWrapperPath(this.image, 8);
  }

  /** @internal Starts both daemons; used by {@linkcode startLibvirtLab}. */
  async _start(log: (line: string) => void): Promise<void> {
    const t0 = performance.now();
    if (!this.#detached) {
      this.#watchdog = spawnWatchdog(Deno.pid, [this.a.dir, this.b.dir]);
    }
    await writePadWrapper(this.image, 8);
    await Promise.all(this.hosts.map(async (h) => {
      const spec: DaemonSpec = {
        dir: h.dir,
        port: h.port,
        migrationPorts: h.migrationPorts,
        hostUuid: h.hostUuid,
      };
      await prepareHostDir(spec);
      // what earlier runs probed of the emulators (libvirt checks it is
      // still valid): saves a few seconds per emulator and host
      await copyXmls(capsCacheDir(), `${h.dirs.cache}/qemu/capabilities`);
      const argv = daemonArgv(spec, this.#detached);
      const child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      let exited = false;
      child.status.then(() => exited = true);
      // a lab never stopped does not keep this process alive: the watchdog
      // ends the lab when it exits
      child.unref();
      if (!this.#detached) this.#children.push(child);
      await waitDaemon(h.uri, spec, () => exited, this.#timeoutMs);
      log(
        `host ${h.name}: ${h.uri} up in ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );
      // probe the guest's emulator now (a few seconds under load), not at
      // the first guest start or the first incoming migration
      await this.virsh(h, [
        "domcapabilities",
        "--emulatorbin",
        this.qemuWrapper,
        "--virttype",
        "qemu",
        "--arch",
        "x86_64",
        "--machine",
        "pc",
      ]);
      log(
        `host ${h.name}: emulator probed at ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );
    }));
  }

  /** The host for `ref`. */
  host(ref: LibvirtHostRef): LibvirtLabHost {
    const name = typeof ref === "string" ? ref : ref.name;
    if (name === "a") return this.a;
    if (name === "b") return this.b;
    throw new LibvirtLabError(
      `Unknown libvirt lab host "${name}": expected "a" or "b"`,
      { field: "host" },
    );
  }

  /**
   * Runs `virsh -c URI ARGS...` against a host and returns its stdout.
   *
   * @throws with virsh's exit code and stderr when it fails, unless `allowFail`.
   */
  async virsh(
    host: LibvirtHostRef,
    args: readonly string[],
    options: { readonly allowFail?: boolean } = {},
  ): Promise<string> {
    this.#alive();
    return await sh(
      ["virsh", "-q", "-c", this.host(host).uri, ...args],
      options,
    );
  }

  /** The domain XML the lab starts for `options` (paths as the daemons see them). */
  domainXml(options: LibvirtGuestOptions): string {
    if (!NAME.test(options.name)) {
      throw new LibvirtLabError(
        `Cannot name a lab guest "${options.name}": expected letters, digits, "-", "_" or "." (at most 64)`,
        { field: "name" },
      );
    }
    const memoryMiB = options.memoryMiB ?? 512;
    const dataMiB = options.dataMiB ?? 16;
    const areaMiB = options.dirtyAreaMiB ?? 64;
    const d = options.dirty ?? "light";
    const dirty = typeof d === "number" ? d : DIRTY_PRESETS[d];
    if (
      typeof dirty === "number" && (!Number.isInteger(dirty) || dirty < 0)
    ) {
      throw new LibvirtLabError(
        `Cannot dirty "${d}" MiB/s: expected a whole number ≥ 0, "none", "light" or "heavy"`,
        { field: "dirty" },
      );
    }
    for (
      const [field, v] of [["dataMiB", dataMiB], ["dirtyAreaMiB", areaMiB], [
        "memoryMiB",
        memoryMiB,
      ], ["checkEverySec", options.checkEverySec ?? 2]] as const
    ) {
      if (!Number.isInteger(v) || v < 1) {
        throw new LibvirtLabError(
          `Cannot use ${field} "${v}": expected a whole number ≥ 1`,
          { field },
        );
      }
    }
    // the kernel and busybox take ~100 MiB; tmpfs holds data and area
    if (dataMiB + areaMiB + 128 > memoryMiB) {
      throw new LibvirtLabError(
        `Cannot fit ${dataMiB} MiB of data and a ${areaMiB} MiB dirty area in a ${memoryMiB} MiB guest: give it at least ${
          dataMiB + areaMiB + 128
        } MiB`,
        { field: "memoryMiB" },
      );
    }
    const pad = options.ramPadKiB ?? 8;
    return domainXml({
      name: options.name,
      memoryMiB,
      kernel: this.image.kernel,
      initrd: this.image.initrd,
      dirty,
      dataMiB,
      areaMiB,
      everySec: options.checkEverySec ?? 2,
      emulator: pad === 0
        ? "/usr/bin/qemu-system-x86_64"
        : padWrapperPath(this.image, pad),
      serialPath: `${PRIVATE_MOUNTS.log}/qemu/${options.name}.serial.log`,
    });
  }

  async #xmlFile(options: LibvirtGuestOptions): Promise<[string, string]> {
    const xml = this.domainXml(options);
    const pad = options.ramPadKiB ?? 8;
    if (pad !== 0) await writePadWrapper(this.image, pad);
    await Deno.mkdir(`${this.dir}/xml`, { recursive: true });
    const path = `${this.dir}/xml/${options.name}.xml`;
    await Deno.writeTextFile(path, xml);
    return [xml, path];
  }

  /** Defines (`virsh define`) a persistent guest on a host, without starting it; returns its XML. */
  async defineGuest(
    host: LibvirtHostRef,
    options: LibvirtGuestOptions,
  ): Promise<string> {
    const [xml, path] = await this.#xmlFile(options);
    await this.virsh(host, ["define", path]);
    return xml;
  }

  /**
   * Starts a guest on a host: `virsh create` (transient), or `define` and
   * `start` when `persistent`, or just `start` for a guest already
   * defined there; then waits for its first `ok` check line unless `wait`
   * is false.
   */
  async startGuest(
    host: LibvirtHostRef,
    options: StartGuestOptions,
  ): Promise<StartedGuest> {
    const h = this.host(host);
    const [xml, path] = await this.#xmlFile(options);
    await Deno.remove(this.serialLogPath(h, options.name)).catch(() => {});
    const state = await this.domainState(h, options.name);
    if (state === "shut off") {
      await this.virsh(h, ["start", options.name]);
    } else if (state !== null) {
      throw new LibvirtLabError(
        `Cannot start guest "${options.name}" on host ${h.name}: it is already ${state}`,
        { field: "name" },
      );
    } else if (options.persistent) {
      await this.virsh(h, ["define", path]);
      await this.virsh(h, ["start", options.name]);
    } else {
      await this.virsh(h, ["create", path]);
    }
    const check = options.wait === false ? null : await this.checkGuest(
      h,
      options.name,
      { since: 0, timeoutMs: options.timeoutMs ?? 120_000 },
    );
    return { name: options.name, host: h.name, xml, check };
  }

  /**
   * A domain's state on a host (`running`, `paused`, `shut off`, ...), or
   * null when the host has no such domain.
   */
  async domainState(
    host: LibvirtHostRef,
    name: string,
  ): Promise<string | null> {
    const h = this.host(host);
    this.#alive();
    const out = await new Deno.Command("virsh", {
      args: ["-q", "-c", h.uri, "domstate", name],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const td = new TextDecoder();
    if (out.success) return td.decode(out.stdout).trim();
    const err = td.decode(out.stderr);
    if (/failed to get domain|Domain not found/i.test(err)) return null;
    throw new LibvirtLabError(
      `Cannot read the state of "${name}" on host ${h.name}: ${err.trim()}`,
    );
  }

  /** Every domain of a host, running or defined (`virsh list --all`). */
  async listDomains(host: LibvirtHostRef): Promise<DomainInfo[]> {
    const out = await this.virsh(host, ["list", "--all"]);
    const domains: DomainInfo[] = [];
    for (const line of out.split("\n")) {
      const m = /^\s*(\d+|-)\s+(\S+)\s+(.+?)\s*$/.exec(line);
      if (m) {
        domains.push({
          id: m[1] === "-" ? null : Number(m[1]),
          name: m[2],
          state: m[3],
        });
      }
    }
    return domains;
  }

  /**
   * Stops a guest on a host (`virsh destroy`) and undefines it when
   * persistent, then checks that the host no longer lists it. A guest the
   * host does not have is fine.
   */
  async destroyGuest(host: LibvirtHostRef, name: string): Promise<void> {
    const h = this.host(host);
    if (await this.domainState(h, name) === null) return;
    await this.virsh(h, ["destroy", name], { allowFail: true });
    await this.virsh(h, ["undefine", name], { allowFail: true });
    const left = await this.domainState(h, name);
    if (left !== null) {
      throw new LibvirtLabError(
        `Cannot destroy guest "${name}" on host ${h.name}: it is still ${left}`,
      );
    }
  }

  /**
   * Migrates a guest with plain `virsh migrate --live --p2p NAME DEST_URI`
   * plus `flags` (e.g. `["--bandwidth", "16"]`, or
   * {@linkcode ProxiedMigration.virshArgs}); resolves with virsh's output
   * and the wall time. This is the lab's reference path, not hakobu's.
   */
  async virshMigrate(
    name: string,
    from: LibvirtHostRef,
    to: LibvirtHostRef,
    flags: readonly string[] = [],
  ): Promise<{ readonly ms: number; readonly output: string }> {
    const t0 = performance.now();
    const output = await this.virsh(from, [
      "migrate",
      "--live",
      "--p2p",
      ...flags,
      name,
      this.host(to).uri,
    ]);
    return { ms: performance.now() - t0, output };
  }

  /**
   * Starts a counting TCP proxy for a migration through `port` (see
   * {@linkcode proxiedMigration}); `stop()` closes it too.
   */
  startMigrationProxy(port: number): TcpProxy {
    const m = proxiedMigration(port);
    const proxy = startTcpProxy(m.proxyListen, m.proxyForward);
    this.#proxies.add(proxy);
    return proxy;
  }

  /** Real path of a guest's serial log on a host (its private `/var/log/libvirt/qemu`). */
  serialLogPath(host: LibvirtHostRef, name: string): string {
    return `${this.host(host).dirs.log}/qemu/${name}.serial.log`;
  }

  /** A guest's serial log on a host ("" when it has none). */
  async serialLog(host: LibvirtHostRef, name: string): Promise<string> {
    return await Deno.readTextFile(this.serialLogPath(host, name)).catch(() =>
      ""
    );
  }

  /**
   * The current size of a guest's serial log on a host (0 when it has
   * none): pass it as `since` to {@linkcode checkGuest} to wait for a line
   * printed after this point, e.g. after a migration to that host.
   */
  async serialMark(host: LibvirtHostRef, name: string): Promise<number> {
    try {
      return (await Deno.stat(this.serialLogPath(host, name))).size;
    } catch {
      return 0;
    }
  }

  /**
   * Waits for a fresh `HAKOBU-CHECK ok` line of a guest on a host (printed
   * after `since`), and checks that the domain runs there: the guest's
   * known data is intact and it runs on that host.
   *
   * @throws {LibvirtGuestError} with `kind` `bad` (a `HAKOBU-CHECK bad`
   * line), `crashed` (a kernel oops), `rebooted` (another boot id than
   * `boot`), `not-running` (the host does not run it) or `hung` (no fresh
   * line in `timeoutMs`), with the log's tail.
   */
  async checkGuest(
    host: LibvirtHostRef,
    name: string,
    options: CheckGuestOptions = {},
  ): Promise<GuestCheck> {
    const h = this.host(host);
    const path = this.serialLogPath(h, name);
    let since = options.since ?? await this.serialMark(h, name);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const td = new TextDecoder();
    let nextState = 0;
    for (;;) {
      const bytes = await Deno.readFile(path).catch(() => new Uint8Array());
      if (bytes.length < since) since = 0;
      const fresh = td.decode(bytes.subarray(since));
      const fail = async (kind: GuestFailureKind, what: string) =>
        new LibvirtGuestError(
          kind,
          `Guest "${name}" on host ${h.name}: ${what} (domain ${
            await this.domainState(h, name).catch((e) => String(e)) ?? "absent"
          }); serial log "${path}" ends:\n${tail(td.decode(bytes))}`,
        );
      // complete lines only
      for (
        const line of fresh.slice(0, fresh.lastIndexOf("\n") + 1).split("\n")
      ) {
        const c = parseCheckLine(line);
        if (!c) continue;
        if (c.status === "bad") {
          throw await fail("bad", `its known data changed: "${c.line}"`);
        }
        if (options.boot && c.boot !== options.boot) {
          throw await fail(
            "rebooted",
            `it booted again: boot id "${c.boot}", expected "${options.boot}"`,
          );
        }
        const state = await this.domainState(h, name);
        if (state !== "running") {
          throw await fail(
            "not-running",
            `it printed "${c.line}" but is not running there`,
          );
        }
        return c;
      }
      if (OOPS.test(fresh)) {
        throw await fail("crashed", "its kernel crashed");
      }
      if (Date.now() >= nextState) {
        nextState = Date.now() + 2000;
        const state = await this.domainState(h, name);
        if (state !== "running" && state !== "paused") {
          throw await fail(
            "not-running",
            "no fresh check line and it is not running there",
          );
        }
      }
      if (Date.now() >= deadline) {
        throw await fail("hung", `no fresh check line in ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** The live processes of this lab: its daemons and their QEMUs. */
  async processes(): Promise<LabProcess[]> {
    return await findLabProcesses([this.a.dir, this.b.dir]);
  }

  /**
   * Kills both daemons and every QEMU they started (SIGKILL: the lab keeps
   * no state), which ends their mount namespaces; closes the lab's
   * proxies; removes the folder unless `keepDir`. Safe to call twice.
   *
   * @throws when a lab process survives SIGKILL.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await Promise.all([...this.#proxies].map((p) => p.close()));
    this.#proxies.clear();
    await killLabProcesses([this.a.dir, this.b.dir]);
    // ref() first: an unref'd child's status alone does not keep the
    // event loop waiting
    await Promise.all(this.#children.map((c) => {
      c.ref();
      return c.status;
    }));
    if (this.#watchdog) {
      try {
        this.#watchdog.kill("SIGKILL");
      } catch { /* gone */ }
      this.#watchdog.ref();
      await this.#watchdog.status;
    }
    // keep what the daemons probed of the emulators for the next run
    for (const h of this.hosts) {
      await copyXmls(`${h.dirs.cache}/qemu/capabilities`, capsCacheDir())
        .catch(() => {});
    }
    for (const h of this.hosts) {
      if (await portOpen(h.port)) {
        throw new LibvirtLabError(
          `The libvirt lab stopped but something still listens on port "${h.port}"`,
        );
      }
    }
    if (!this.#keepDir) {
      await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    }
  }

  /** {@linkcode stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #alive(): void {
    if (this.#stopped) {
      throw new LibvirtLabError("The libvirt lab was stopped");
    }
  }
}

function tail(text: string, lines = 12): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function parsePorts(text: string): [number, number] {
  const m = /^(\d+),(\d+)$/.exec(text);
  if (!m) {
    throw new Error(
      `Cannot parse ports "${text}": expected A,B e.g. 16501,16502`,
    );
  }
  return [Number(m[1]), Number(m[2])];
}

function command() {
  const program = cliProgram("libvirt_lab.ts", { usageExitCode: 2 })
    .description(
      "Two libvirt hosts on this machine (qemu+tcp://127.0.0.1:PORT/system), each libvirtd in its own mount namespace.",
    );
  const ports = () =>
    new Option("--ports <a,b>", "the daemons' TCP ports").argParser(
      parsed(parsePorts),
    ).default([16501, 16502] as [number, number], "16501,16502");
  const dir = () =>
    new Option("--dir <path>", "the lab folder (default from the ports)");
  program.command("up")
    .description(
      "start both hosts (they keep running after this command; stop with down)",
    )
    .addOption(ports())
    .addOption(dir())
    .option("--guest <name>", "also start a guest on host a")
    .option("--memory <MiB>", "the guest's memory", integer({ min: 160 }), 512)
    .addOption(
      new Option(
        "--dirty <rate>",
        "the guest's dirty rate: none, light, heavy or MiB/s",
      )
        .default("light"),
    )
    .action(async (o) => {
      const lab = await startLibvirtLab({
        ports: o.ports,
        dir: o.dir,
        detached: true,
        keepDir: true,
        log: (l) => console.log(l),
      });
      if (o.guest) {
        const dirty = /^\d+$/.test(o.dirty) ? Number(o.dirty) : o.dirty;
        const g = await lab.startGuest("a", {
          name: o.guest,
          memoryMiB: o.memory,
          dirty: dirty as LibvirtGuestOptions["dirty"],
        });
        console.log(`guest ${g.name} on a: ${g.check?.line}`);
        console.log(`serial log: ${lab.serialLogPath("a", g.name)}`);
        console.log(
          `migrate it: virsh -c ${lab.a.uri} migrate --live --p2p --verbose ${g.name} ${lab.b.uri}`,
        );
      }
      for (const h of lab.hosts) {
        console.log(
          `host ${h.name}: ${h.uri}  (private tree ${h.dir}, migration ports ${
            h.migrationPorts.join("-")
          })`,
        );
      }
      console.log(
        `stop: deno run -A scripts/lab/libvirt_lab.ts down --ports ${
          o.ports.join(",")
        }`,
      );
    });
  program.command("down")
    .description("kill both hosts and their guests, remove the lab folder")
    .addOption(ports())
    .addOption(dir())
    .action(async (o) => {
      const killed = await stopLibvirtLab({ ports: o.ports, dir: o.dir });
      console.log(
        killed.length
          ? `killed ${killed.map((p) => `${p.comm} (${p.pid})`).join(", ")}`
          : "no lab process was running",
      );
    });
  program.command("status")
    .description("list the lab's processes and each host's domains")
    .addOption(ports())
    .addOption(dir())
    .action(async (o) => {
      const procs = await libvirtLabProcesses({ ports: o.ports, dir: o.dir });
      const { dir: d } = resolveOptions({ ports: o.ports, dir: o.dir });
      console.log(`lab folder ${d}: ${procs.length} processes`);
      for (const p of procs) console.log(`  ${p.pid} ${p.comm} (${p.hostDir})`);
      for (const [i, name] of (["a", "b"] as const).entries()) {
        const uri = `qemu+tcp://127.0.0.1:${o.ports[i]}/system`;
        if (!(await portOpen(o.ports[i]))) {
          console.log(`host ${name}: ${uri} down`);
          continue;
        }
        console.log(`host ${name}: ${uri}`);
        console.log(
          (await sh(["virsh", "-c", uri, "list", "--all"], { allowFail: true }))
            .trimEnd(),
        );
      }
    });
  return program;
}

if (import.meta.main) Deno.exit(await runCli(command, Deno.args));
