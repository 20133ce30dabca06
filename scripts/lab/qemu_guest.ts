/**
 * The QEMU guest lab: real guests built from Debian packages only, started
 * under TCG and controlled over QMP.
 *
 * - `build`: the Debian cloud kernel (`linux-image-cloud-amd64`) and one
 *   initramfs per app (cpio newc, gzip) holding busybox-static, the virtio
 *   modules, memcached or PostgreSQL 15 with their shared libraries (found
 *   with `ldd`), and an `/init` that brings up the network, starts the app,
 *   writes known data, runs a load generator and serves a checker over HTTP
 *   (busybox httpd, `GET /cgi-bin/check` answers `ok ...` or `bad ...`).
 *   Cached outside the repository in `$HAKOBU_LAB_DIR` (default
 *   `~/.cache/hakobu/lab`), keyed by a hash of the recipe and the package
 *   versions, so a change rebuilds.
 * - `run`: one guest with `-qmp unix:...`, `-accel tcg`, a serial log, user
 *   networking with host forwards to the checker and the app port; waits
 *   until the checker answers `ok`.
 *
 * ```sh
 * deno run -A scripts/lab/qemu_guest.ts build
 * deno run -A scripts/lab/qemu_guest.ts run --app memcached --mem 512M
 * deno run -A scripts/lab/qemu_guest.ts check --port 18080
 * ```
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type Command, Option } from "@commander-js/extra-typings";
import { inNetns } from "./netns.ts";
import { sh } from "./_sh.ts";
import { integer, parsed } from "../_cli/options.ts";
import { cliProgram, runCli } from "../_cli/program.ts";

/** Apps a lab guest can run. */
export type LabApp = "memcached" | "postgres";

/** Port of the in-guest checker (busybox httpd). */
export const GUEST_CHECK_PORT = 8080;
/** Port of the app inside the guest. */
export const GUEST_APP_PORT: Readonly<Record<LabApp, number>> = {
  memcached: 11211,
  postgres: 5432,
};
/** Keys written at boot and verified by the checker (memcached). */
export const CHECK_KEYS = 1000;
/** Rows written at boot and verified by the checker (postgres). */
export const CHECK_ROWS = 20000;

const RECIPE_VERSION = "5";
const PG_BIN = "/usr/lib/postgresql/15/bin";
const PG_LIB = "/usr/lib/postgresql/15/lib";
const PG_SHARE = "/usr/share/postgresql/15";
const MODULES = ["virtio_pci", "virtio_net"];

/** A built lab image: kernel and initramfs for one app. */
export interface LabImage {
  readonly app: LabApp;
  readonly kernel: string;
  readonly initrd: string;
  /** Recipe hash the image is cached under. */
  readonly hash: string;
  /** True when this call built it, false when it came from the cache. */
  readonly built: boolean;
  /** Build time in milliseconds (0 from cache). */
  readonly buildMs: number;
}

/** The lab cache folder: `$HAKOBU_LAB_DIR` or `~/.cache/hakobu/lab`. */
export function labDir(): string {
  return Deno.env.get("HAKOBU_LAB_DIR") ??
    `${Deno.env.get("HOME") ?? "/root"}/.cache/hakobu/lab`;
}

/** Why the lab cannot run here, or null when it can. */
export async function labUnavailable(): Promise<string | null> {
  for (
    const bin of [
      "qemu-system-x86_64",
      "busybox",
      "cpio",
      "memcached",
    ]
  ) {
    const ok = await sh(["sh", "-c", `command -v ${bin}`], { allowFail: true });
    if (ok.trim() === "") {
      return `"${bin}" not found (apt-get install qemu-system-x86 busybox-static cpio memcached postgresql linux-image-cloud-amd64)`;
    }
  }
  if ((await findKernel()) === null) {
    return "No /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)";
  }
  return null;
}

async function findKernel(): Promise<string | null> {
  const names: string[] = [];
  for await (const e of Deno.readDir("/boot")) {
    if (/^vmlinuz-.*-cloud-amd64$/.test(e.name)) names.push(e.name);
  }
  names.sort();
  return names.length ? `/boot/${names[names.length - 1]}` : null;
}

async function pkgVersions(): Promise<string> {
  return await sh([
    "dpkg-query",
    "-W",
    "-f",
    "${Package}=${Version}\n",
    "busybox-static",
    "memcached",
    "postgresql-15",
    "linux-image-cloud-amd64",
  ], { allowFail: true });
}

/**
 * Builds (or finds in the cache) the kernel and initramfs for `app`.
 *
 * @example
 * ```ts
 * import { buildLab } from "./qemu_guest.ts";
 *
 * // Needs the lab's Debian packages (qemu, the cloud kernel, busybox, ...): the
 * // doc tests type-check this function and do not call it.
 * async function build() {
 *   const img = await buildLab("memcached");
 *   console.log(img.initrd, img.built ? `${img.buildMs} ms` : "cached");
 * }
 * ```
 */
export async function buildLab(
  app: LabApp,
  options: { force?: boolean; log?: (s: string) => void } = {},
): Promise<LabImage> {
  const log = options.log ?? (() => {});
  const why = await labUnavailable();
  if (why) throw new Error(`Cannot build the QEMU lab: ${why}`);
  if (app === "postgres") {
    try {
      await Deno.stat(`${PG_BIN}/postgres`);
    } catch {
      throw new Error(
        `Cannot build the postgres guest: "${PG_BIN}/postgres" not found (apt-get install postgresql)`,
      );
    }
  }
  const kernel = (await findKernel())!;
  const recipe = [
    RECIPE_VERSION,
    app,
    kernel,
    await pkgVersions(),
    initScript(),
    appScript(app),
    CHECK_CGI,
    checkScript(app),
  ].join("\0");
  const hash = createHash("sha256").update(recipe).digest("hex").slice(0, 16);
  const dir = `${labDir()}/${app}-${hash}`;
  const image = {
    app,
    kernel: `${dir}/vmlinuz`,
    initrd: `${dir}/initrd.gz`,
    hash,
  };
  if (!options.force && await exists(`${dir}/.complete`)) {
    return { ...image, built: false, buildMs: 0 };
  }
  const t0 = performance.now();
  log(`building ${app} guest image in ${dir}`);
  await Deno.mkdir(labDir(), { recursive: true });
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const root = `${dir}/root`;
  await Deno.mkdir(root, { recursive: true });
  for (
    const d of [
      "bin",
      "sbin",
      "usr/bin",
      "usr/sbin",
      "etc",
      "proc",
      "sys",
      "dev",
      "tmp",
      "run",
      "root",
      "var/lib/postgresql",
      "www/cgi-bin",
      "lib/modules",
    ]
  ) await Deno.mkdir(`${root}/${d}`, { recursive: true });
  await Deno.symlink("/run", `${root}/var/run`);
  await Deno.copyFile(await realBin("busybox"), `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);

  // kernel modules, in dependency order
  const kver = kernel.replace(/^\/boot\/vmlinuz-/, "");
  const mods = await moduleOrder(kver, MODULES);
  const order: string[] = [];
  for (const m of mods) {
    const base = m.split("/").pop()!;
    await Deno.copyFile(
      `/lib/modules/${kver}/${m}`,
      `${root}/lib/modules/${base}`,
    );
    order.push(base);
  }
  await Deno.writeTextFile(
    `${root}/etc/modules-order`,
    order.join("\n") + "\n",
  );

  // the app and its libraries
  const bins: string[] = [];
  if (app === "memcached") {
    bins.push(await realBin("memcached"));
  } else {
    for (const b of ["postgres", "initdb", "pg_ctl", "psql", "pgbench"]) {
      bins.push(`${PG_BIN}/${b}`);
    }
    await copyInto(PG_SHARE, root);
    await sh(["rm", "-rf", `${root}${PG_SHARE}/man`, `${root}${PG_SHARE}/doc`]);
    await copyInto(PG_LIB, root);
    // JIT pulls in libLLVM (~100 MB); the guest runs without it
    await sh([
      "sh",
      "-c",
      `rm -rf '${root}${PG_LIB}'/llvmjit* '${root}${PG_LIB}/bitcode'`,
    ]);
    for (const z of ["UTC", "Etc/UTC", "GMT", "Etc/GMT"]) {
      await copyInto(`/usr/share/zoneinfo/${z}`, root).catch(() => {});
    }
    for await (const e of Deno.readDir(PG_LIB)) {
      if (e.name.endsWith(".so") && !e.name.startsWith("llvmjit")) {
        bins.push(`${PG_LIB}/${e.name}`);
      }
    }
  }
  const libs = new Set<string>();
  for (const b of bins) {
    if (!b.startsWith(PG_LIB)) await copyInto(b, root);
    for (const lib of await lddLibs(b)) libs.add(lib);
  }
  for (const lib of libs) await copyInto(lib, root);
  if (app === "memcached") {
    await Deno.symlink(bins[0], `${root}/usr/bin/memcached-app`).catch(
      () => {},
    );
  }

  await Deno.writeTextFile(
    `${root}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\npostgres:x:100:100:postgres:/var/lib/postgresql:/bin/sh\n",
  );
  await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\npostgres:x:100:\n");
  await Deno.writeTextFile(`${root}/etc/hosts`, "127.0.0.1 localhost\n");
  await writeExec(`${root}/init`, initScript());
  await writeExec(`${root}/bin/hakobu-app`, appScript(app));
  await writeExec(`${root}/bin/hakobu-check`, checkScript(app));
  await writeExec(`${root}/www/cgi-bin/check`, CHECK_CGI);
  await sh([
    "sh",
    "-c",
    `cd '${root}' && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > '${dir}/initrd.gz'`,
  ]);
  await Deno.copyFile(kernel, `${dir}/vmlinuz`);
  await Deno.remove(root, { recursive: true });
  await Deno.writeTextFile(`${dir}/.complete`, new Date().toISOString() + "\n");
  for await (const e of Deno.readDir(labDir())) {
    // older recipes of the same app
    if (e.name.startsWith(`${app}-`) && e.name !== `${app}-${hash}`) {
      await Deno.remove(`${labDir()}/${e.name}`, { recursive: true });
    }
  }
  const buildMs = performance.now() - t0;
  log(`built ${app} guest in ${(buildMs / 1000).toFixed(1)} s`);
  return { ...image, built: true, buildMs };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function realBin(name: string): Promise<string> {
  const p = (await sh(["sh", "-c", `command -v ${name}`])).trim();
  return await Deno.realPath(p);
}

/** Copies `path` (file or folder, links followed) to the same path under `root`. */
async function copyInto(path: string, root: string): Promise<void> {
  const parent = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(`${root}${parent}`, { recursive: true });
  await sh(["cp", "-rL", path, `${root}${parent}/`]);
}

async function writeExec(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o755);
}

async function lddLibs(bin: string): Promise<string[]> {
  const out = await sh(["ldd", bin], { allowFail: true });
  const libs: string[] = [];
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s*\(/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

async function moduleOrder(kver: string, wanted: string[]): Promise<string[]> {
  const builtin = await Deno.readTextFile(
    `/lib/modules/${kver}/modules.builtin`,
  )
    .catch(() => "");
  const dep = await Deno.readTextFile(`/lib/modules/${kver}/modules.dep`);
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of dep.split("\n")) {
    const [mod, rest] = line.split(":");
    if (!mod) continue;
    deps.set(mod, (rest ?? "").trim().split(/\s+/).filter(Boolean));
    byName.set(mod.split("/").pop()!.replace(/\.ko(\.\w+)?$/, ""), mod);
  }
  const order: string[] = [];
  const visit = (mod: string) => {
    if (order.includes(mod)) return;
    for (const d of deps.get(mod) ?? []) visit(d);
    order.push(mod);
  };
  for (const w of wanted) {
    const mod = byName.get(w);
    if (!mod) {
      if (builtin.includes(`/${w}.ko`)) continue;
      throw new Error(`Cannot find kernel module "${w}" for kernel "${kver}"`);
    }
    visit(mod);
  }
  return order;
}

function initScript(): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TZ=UTC
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/shm /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tmpfs tmp /tmp
while read m; do insmod /lib/modules/$m; done < /etc/modules-order
arg() { sed -n "s/.*hakobu\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
APP=$(arg app); LOAD=$(arg load); CHURN=$(arg churn)
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
echo starting > /run/state
httpd -p ${GUEST_CHECK_PORT} -h /www
echo "hakobu: network up, app $APP"
# a random blob the checker verifies page by page (md5)
dd if=/dev/urandom of=/dev/shm/blob bs=1M count=16 2>/dev/null
md5sum /dev/shm/blob > /run/blob.md5
/bin/hakobu-app "$APP" "\${LOAD:-1}" "\${CHURN:-0}" > /dev/console 2>&1 &
# a heartbeat on the serial console: after a migration it tells a guest that
# runs but is unreachable (network) from one that hangs or crashed
while true; do echo "hakobu: alive uptime=$(cut -d' ' -f1 /proc/uptime)"; sleep 2; done
`;
}

function appScript(app: LabApp): string {
  if (app === "memcached") {
    return `#!/bin/sh
# memcached with ${CHECK_KEYS} known keys, then a load loop of 1 KB sets
LOAD=$2; CHURN=$3
memcached-app -u root -m 200 -l 0.0.0.0 -p 11211 -c 256 -d
until echo version | nc 127.0.0.1 11211 | grep -q VERSION; do sleep 0.2; done
i=0
while [ $i -lt ${CHECK_KEYS} ]; do
  v="hakobu-check-$i"
  printf "set chk%d 0 0 %d noreply\\r\\n%s\\r\\n" $i \${#v} "$v"
  i=$((i+1))
done | nc 127.0.0.1 11211 > /dev/null
echo ready > /run/state
echo "hakobu: memcached ready"
if [ "$LOAD" != 0 ]; then
  PAD=$(head -c 1000 /dev/zero | tr '\\0' x)
  ( i=0; while :; do i=$((i+1)); printf "set load%d 0 0 1010 noreply\\r\\n%010d%s\\r\\n" $((i % 60000)) $i "$PAD"; done ) | nc 127.0.0.1 11211 > /dev/null &
fi
if [ "$CHURN" != 0 ]; then
  ( while :; do dd if=/dev/urandom of=/dev/shm/churn bs=1M count=$CHURN conv=notrunc 2>/dev/null; sleep 1; done ) &
fi
wait
`;
  }
  return `#!/bin/sh
# postgres 15 in tmpfs with a known table, then pgbench
LOAD=$2; CHURN=$3
export PATH=${PG_BIN}:$PATH
mkdir -p /run/postgresql /tmp/pg
chown postgres /run/postgresql /tmp/pg
su postgres -c "initdb -D /tmp/pg -A trust --no-locale -E UTF8 > /tmp/initdb.log 2>&1" || { cat /tmp/initdb.log; echo failed > /run/state; exit 1; }
echo "host all all 0.0.0.0/0 trust" >> /tmp/pg/pg_hba.conf
su postgres -c "pg_ctl -D /tmp/pg -l /tmp/pg.log -w -o '-c listen_addresses=* -c shared_buffers=64MB -c fsync=off -c synchronous_commit=off' start" || { cat /tmp/pg.log; echo failed > /run/state; exit 1; }
psql -U postgres -qAt -c "create table chk as select i, md5(i::text) v from generate_series(1, ${CHECK_ROWS}) i" postgres
echo ready > /run/state
echo "hakobu: postgres ready"
if [ "$LOAD" != 0 ]; then
  pgbench -U postgres -i -s 1 -q postgres > /tmp/pgbench-init.log 2>&1
  pgbench -U postgres -c 2 -T 36000 postgres > /tmp/pgbench.log 2>&1 &
fi
wait
`;
}

function checkScript(app: LabApp): string {
  const appCheck = app === "memcached"
    ? `keys=""; i=0
while [ $i -lt ${CHECK_KEYS} ]; do keys="$keys chk$i"; i=$((i+1)); done
good=$(printf "get%s\\r\\nquit\\r\\n" "$keys" | nc 127.0.0.1 11211 | tr -d '\\r' | awk '/^VALUE chk/ { k = substr($2, 4); getline; if ($0 == "hakobu-check-" k) n++ } END { print n + 0 }')
[ "$good" = ${CHECK_KEYS} ] || { echo "bad memcached keys $good/${CHECK_KEYS}"; exit 0; }
detail="keys=$good/${CHECK_KEYS}"`
    : `r=$(${PG_BIN}/psql -U postgres -qAt -c "select count(*) || ' ' || md5(string_agg(v, ',' order by i)) from chk" postgres 2>&1)
detail="rows=$r"
case "$r" in ${CHECK_ROWS}\\ *) ;; *) echo "bad postgres $r"; exit 0;; esac`;
  return `#!/bin/sh
# prints "ok ..." when the app's known data and the blob are intact
state=$(cat /run/state 2>/dev/null)
[ "$state" = ready ] || { echo "$state"; exit 0; }
md5sum -c -s /run/blob.md5 || { echo "bad blob"; exit 0; }
${appCheck}
echo "ok $detail blob=ok uptime=$(cut -d' ' -f1 /proc/uptime)"
`;
}

const CHECK_CGI = `#!/bin/sh
echo "Content-Type: text/plain"
echo
/bin/hakobu-check
`;

/**
 * The md5 the postgres checker reports for the known table.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expectedPostgresDigest } from "./qemu_guest.ts";
 *
 * assert.match(expectedPostgresDigest(), /^[0-9a-f]{32}$/); // an md5, as hex
 * ```
 */
export function expectedPostgresDigest(): string {
  const parts: string[] = [];
  for (let i = 1; i <= CHECK_ROWS; i++) {
    parts.push(createHash("md5").update(String(i)).digest("hex"));
  }
  return createHash("md5").update(parts.join(",")).digest("hex");
}

/**
 * The guest's uptime in seconds from a checker answer (`ok ... uptime=12.3`),
 * NaN when it has none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkerUptime } from "./qemu_guest.ts";
 *
 * assert.equal(checkerUptime("ok keys=1000/1000 blob=ok uptime=12.30"), 12.3);
 * ```
 */
export function checkerUptime(answer: string): number {
  return Number(/uptime=([\d.]+)/.exec(answer)?.[1] ?? NaN);
}

/** Options of {@link startGuest}. */
export interface GuestOptions {
  readonly app: LabApp;
  /** Guest memory in MiB (default 512). */
  readonly memMiB?: number;
  /** Start with `-incoming defer` (a destination waiting for `migrate-incoming`). */
  readonly incoming?: boolean;
  /** Run QEMU inside this network namespace (see netns.ts). */
  readonly netns?: string;
  /** Host port forwarded to the checker (default: a free port). */
  readonly checkPort?: number;
  /** Host port forwarded to the app (default: a free port). */
  readonly appPort?: number;
  /** Run the in-guest load generator (default true). */
  readonly load?: boolean;
  /** MiB of random data rewritten per second in the guest (default 0). */
  readonly churnMiB?: number;
  /** Name used for the socket and log files (default: app and a counter). */
  readonly name?: string;
  /** Folder for the QMP socket and serial log (default: a fresh temp folder). */
  readonly runDir?: string;
  /** Image to boot (default: {@link buildLab} for the app). */
  readonly image?: LabImage;
  /**
   * KiB added to the guest's RAM (default {@link TCG_RAM_PAD_KIB}) so that
   * QEMU 7.2 takes its TCG-safe dirty-bitmap path; 0 reproduces the
   * lost-write bug.
   */
  readonly ramPadKiB?: number;
}

/**
 * KiB the lab adds to every guest's RAM by default.
 *
 * QEMU before 9.0 (Debian 12 ships 7.2) loses guest writes during a live
 * migration under TCG: when a RAM block's length is a multiple of 64 pages,
 * the dirty-bitmap sync clears the bits word by word without re-arming the
 * vCPUs' TLB "not dirty" traps, so later stores through those TLB entries are
 * never marked dirty and never resent (fixed upstream by commit 03bfc2188f,
 * "physmem: Fix migration dirty bitmap coherency with TCG memory access").
 * The destination then runs on stale pages and its kernel crashes or hangs
 * now and then. A RAM size 8 KiB off that alignment sends the sync down its
 * page-by-page path, which does reset the TLBs (docs/qemu-lab.md).
 */
export const TCG_RAM_PAD_KIB = 8;

let guestCounter = 0;

/**
 * A running QEMU guest of the lab.
 *
 * @example
 * ```ts
 * import { startGuest } from "./qemu_guest.ts";
 *
 * // Needs QEMU and the lab's images: the doc tests type-check this function
 * // and do not call it.
 * async function checkOnce() {
 *   const g = await startGuest({ app: "memcached", memMiB: 512 });
 *   try {
 *     await g.waitReady();
 *     console.log(await g.check()); // "ok keys=1000/1000 blob=ok uptime=4.1"
 *   } finally {
 *     await g.kill();
 *   }
 * }
 * ```
 */
export class Guest {
  readonly #child: Deno.ChildProcess;
  readonly #status: Promise<Deno.CommandStatus>;
  #exited = false;
  /** QMP unix socket path. */
  readonly qmpPath: string;
  /** Serial console log path. */
  readonly logPath: string;
  /** Host port of the checker (inside `netns` when set). */
  readonly checkPort: number;
  /** Host port of the app (inside `netns` when set). */
  readonly appPort: number;
  /** Network namespace QEMU runs in, or null. */
  readonly netns: string | null;
  /** The app the guest runs. */
  readonly app: LabApp;
  /** Guest memory in MiB. */
  readonly memMiB: number;
  /** The full QEMU command line. */
  readonly argv: readonly string[];

  constructor(
    child: Deno.ChildProcess,
    info: {
      qmpPath: string;
      logPath: string;
      checkPort: number;
      appPort: number;
      netns: string | null;
      app: LabApp;
      memMiB: number;
      argv: string[];
    },
  ) {
    this.#child = child;
    this.qmpPath = info.qmpPath;
    this.logPath = info.logPath;
    this.checkPort = info.checkPort;
    this.appPort = info.appPort;
    this.netns = info.netns;
    this.app = info.app;
    this.memMiB = info.memMiB;
    this.argv = info.argv;
    this.#status = child.status.then((s) => {
      this.#exited = true;
      return s;
    });
  }

  /** Pid of the QEMU process (of `ip netns exec`, which execs QEMU, when in a namespace). */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once QEMU has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** Resolves with QEMU's exit status. */
  get status(): Promise<Deno.CommandStatus> {
    return this.#status;
  }

  /** Asks the checker; resolves with its answer line (`ok ...`, `bad ...`, `starting`). */
  async check(timeoutMs = 20_000): Promise<string> {
    const url = `http://127.0.0.1:${this.checkPort}/cgi-bin/check`;
    if (this.netns) {
      const out = await sh(
        inNetns(this.netns, [
          "timeout",
          String(Math.ceil(timeoutMs / 1000)),
          "busybox",
          "wget",
          "-q",
          "-O",
          "-",
          url,
        ]),
        { allowFail: true },
      );
      return out.trim() || "no answer";
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      return (await res.text()).trim();
    } catch (e) {
      return `no answer: ${e instanceof Error ? e.message : e}`;
    }
  }

  /**
   * Waits until the checker answers `ok` (the app is up and its data written).
   *
   * @throws when QEMU exits or `timeoutMs` passes first, with the log's tail.
   */
  async waitReady(timeoutMs = 120_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    while (Date.now() < deadline) {
      if (this.#exited) {
        throw new Error(
          `Guest QEMU exited before it was ready: ${await this.logTail()}`,
        );
      }
      last = await this.check(5000);
      if (last.startsWith("ok")) return last;
      if (last.startsWith("bad") || last === "failed") break;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(
      `Guest not ready after ${timeoutMs} ms (checker: "${last}"): ${await this
        .logTail()}`,
    );
  }

  /** The last lines of the serial log. */
  async logTail(lines = 15): Promise<string> {
    const text = await Deno.readTextFile(this.logPath).catch(() => "");
    return text.split("\n").slice(-lines).join("\n");
  }

  /** Kills QEMU (SIGKILL) and waits for it. */
  async kill(): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await this.#status;
  }
}

/** A TCP port that is free on the host right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/**
 * Starts a guest (building its image if needed). Resolves once QEMU runs;
 * call {@link Guest.waitReady} to wait for the app (not for `incoming`).
 */
export async function startGuest(options: GuestOptions): Promise<Guest> {
  const image = options.image ?? await buildLab(options.app);
  const memMiB = options.memMiB ?? 512;
  const name = options.name ?? `${options.app}-${Deno.pid}-${guestCounter++}`;
  const runDir = options.runDir ??
    await Deno.makeTempDir({ prefix: "hakobu-qemu-" });
  const qmpPath = `${runDir}/${name}.qmp`;
  const logPath = `${runDir}/${name}.log`;
  await Deno.remove(qmpPath).catch(() => {});
  const checkPort = options.checkPort ?? freePort();
  const appPort = options.appPort ?? freePort();
  const gp = GUEST_APP_PORT[options.app];
  const append = [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    `hakobu.app=${options.app}`,
    `hakobu.load=${options.load === false ? 0 : 1}`,
    `hakobu.churn=${options.churnMiB ?? 0}`,
  ].join(" ");
  const argv = [
    "qemu-system-x86_64",
    "-name",
    // named threads (`CPU 0/TCG`, `live_migration`): bench:qemu tells the
    // guest's CPU time from QEMU's own by them
    `${name},debug-threads=on`,
    "-machine",
    "pc",
    "-accel",
    "tcg",
    "-cpu",
    "qemu64",
    "-smp",
    "1",
    "-m",
    `${memMiB * 1024 + (options.ramPadKiB ?? TCG_RAM_PAD_KIB)}k`,
    "-nographic",
    "-no-reboot",
    "-monitor",
    "none",
    "-serial",
    `file:${logPath}`,
    "-kernel",
    image.kernel,
    "-initrd",
    image.initrd,
    "-append",
    append,
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
    "-netdev",
    `user,id=n0,hostfwd=tcp:127.0.0.1:${checkPort}-:${GUEST_CHECK_PORT},hostfwd=tcp:127.0.0.1:${appPort}-:${gp}`,
    "-device",
    "virtio-net-pci,netdev=n0,romfile=",
  ];
  if (options.incoming) argv.push("-incoming", "defer");
  const full = options.netns ? inNetns(options.netns, argv) : argv;
  const child = new Deno.Command(full[0], {
    args: full.slice(1),
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const guest = new Guest(child, {
    qmpPath,
    logPath,
    checkPort,
    appPort,
    netns: options.netns ?? null,
    app: options.app,
    memMiB,
    argv: full,
  });
  // wait for the QMP socket
  const deadline = Date.now() + 15_000;
  while (!(await exists(qmpPath))) {
    if (guest.exited || Date.now() > deadline) {
      await guest.kill();
      throw new Error(
        `QEMU did not create its QMP socket "${qmpPath}" (command: ${
          full.join(" ")
        })`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return guest;
}

/**
 * The pid of the QEMU process whose QMP socket is `qmpPath` (found in /proc),
 * or null. `ip netns exec` execs QEMU, so this is usually {@link Guest.pid}.
 */
export async function qemuPid(qmpPath: string): Promise<number | null> {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const cmd = await Deno.readTextFile(`/proc/${e.name}/cmdline`).catch(() =>
      ""
    );
    // argv[0] may be a bare name (under `ip netns exec`) or a full path.
    if (
      /(^|\/)qemu-system-[^/]*$/.test(cmd.split("\0")[0]) &&
      cmd.includes(qmpPath)
    ) {
      return Number(e.name);
    }
  }
  return null;
}

function parseMem(text: string): number {
  const m = /^(\d+)([MG])?i?B?$/i.exec(text);
  if (!m) {
    throw new Error(
      `Cannot parse memory size "${text}": expected e.g. 512M or 1G`,
    );
  }
  return Number(m[1]) * ((m[2] ?? "M").toUpperCase() === "G" ? 1024 : 1);
}

/** The command line: `build`, `run`, `check`; `--help` lists the flags. */
function command(): Command {
  const program = cliProgram("qemu_guest.ts", { usageExitCode: 2 })
    .description(
      "The QEMU lab's guests: build their images, run one, ask its checker.",
    );
  const app = () =>
    new Option("--app <name>", "the guest's app").choices(
      ["memcached", "postgres"] as const,
    );
  program.command("build")
    .description("build the lab images (both apps unless --app)")
    .addOption(app())
    .option("--force", "rebuild even when cached")
    .action(async (o) => {
      const apps: LabApp[] = o.app ? [o.app] : ["memcached", "postgres"];
      for (const a of apps) {
        const img = await buildLab(a, { force: o.force, log: console.log });
        console.log(
          `${a}: ${img.initrd} (${
            img.built
              ? `built in ${(img.buildMs / 1000).toFixed(1)} s`
              : "cached"
          })`,
        );
      }
    });
  program.command("run")
    .description("boot a guest and keep it running until Ctrl-C")
    .addOption(app().default("memcached" as const))
    .addOption(
      new Option("--mem <size>", "guest memory, e.g. 512M or 1G")
        .argParser(parsed(parseMem)).default(512, "512M"),
    )
    .option("--incoming", "wait for migrate-incoming (QMP) instead of booting")
    .option("--netns <name>", "run in this network namespace, e.g. hkb-src")
    .option(
      "--check-port <port>",
      "host port of the checker",
      integer({ min: 1, max: 65535 }),
    )
    .option("--no-load", "no load generator in the guest")
    .option("--churn <MiB/s>", "the guest's write churn", integer(), 0)
    .action(async (o) => {
      const t0 = performance.now();
      const g = await startGuest({
        app: o.app,
        memMiB: o.mem,
        incoming: o.incoming,
        netns: o.netns,
        checkPort: o.checkPort,
        load: o.load,
        churnMiB: o.churn,
      });
      console.log(`qemu pid ${g.pid}, QMP ${g.qmpPath}, serial ${g.logPath}`);
      console.log(
        `checker: http://127.0.0.1:${g.checkPort}/cgi-bin/check, ${o.app}: 127.0.0.1:${g.appPort}${
          g.netns ? ` (in netns ${g.netns})` : ""
        }`,
      );
      if (!o.incoming) {
        const ans = await g.waitReady().catch(async (e) => {
          await g.kill();
          throw e;
        });
        console.log(
          `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${ans}`,
        );
      } else console.log("waiting for migrate-incoming (QMP)");
      console.log("Ctrl-C stops the guest");
      Deno.addSignalListener(
        "SIGINT",
        () => g.kill().then(() => Deno.exit(0)),
      );
      await g.status;
    });
  program.command("check")
    .description("print what a guest's checker answers")
    .requiredOption(
      "--port <port>",
      "host port of the checker",
      integer({ min: 1, max: 65535 }),
    )
    .action(async (o) => {
      const res = await fetch(`http://127.0.0.1:${o.port}/cgi-bin/check`);
      console.log((await res.text()).trim());
    });
  return program;
}

if (import.meta.main) Deno.exit(await runCli(command, Deno.args));
