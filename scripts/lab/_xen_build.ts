/**
 * Builds the Xen lab images from Debian packages only, cached in
 * `$HAKOBU_LAB_DIR` (default `~/.cache/hakobu/lab/xen`) under a hash of the
 * recipe and the package versions:
 *
 * - `xen` — the hypervisor, gunzipped from `/boot/xen-4.17-amd64.gz`
 *   (QEMU's multiboot loader wants the plain ELF);
 * - `vmlinuz` — the regular Debian kernel (`linux-image-amd64`), used both as
 *   the PV dom0 kernel and as the PV domU kernel;
 * - `dom0.cpio.gz` — busybox-static, the dom0 modules (xen-evtchn, xen-gntdev,
 *   xen-gntalloc, xen-privcmd, xenfs; everything else Xen needs is built in),
 *   the Xen tools (`xl`, C `xenstored`, `xenconsoled`, `xen-init-dom0`,
 *   `libxl-save-helper`) with their libraries found by `ldd`, `/etc/xen`, the
 *   domU images, and an `/init` that brings up the toolstack, prints
 *   {@link DOM0_READY} and serves a shell on the console;
 * - optionally (`withDeno`) `deno.cpio` — an uncompressed cpio archive with
 *   the repo's deno binary and the hakobu tree under `/hakobu`, appended to
 *   the base archive as `dom0-deno.cpio` (Linux unpacks concatenated
 *   archives; Xen passes dom0 only one initrd);
 * - `domu.cpio.gz` — busybox and a memory workload (see {@link DOMU_INIT}).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { sh } from "./_sh.ts";

/** Line the dom0 init prints once xenstored and xenconsoled run. */
export const DOM0_READY = "HAKOBU-XEN-DOM0-READY";
/** Xen tools version the lab is built for. */
export const XEN_VERSION = "4.17";
/** Size of the domU's verified memory pattern, in MiB. */
export const DOMU_PATTERN_MIB = 32;

const RECIPE_VERSION = "2";
const XEN_BIN = `/usr/lib/xen-${XEN_VERSION}/bin`;
const DOM0_MODULES = [
  "xen-evtchn",
  "xen-gntdev",
  "xen-gntalloc",
  "xen-privcmd",
  "xenfs",
];
const XEN_TOOLS = [
  "xl",
  "xenstored",
  "xenconsoled",
  "xen-init-dom0",
  "libxl-save-helper",
  "xenstore-control",
];
const PACKAGES = [
  "xen-hypervisor-4.17-amd64",
  "xen-utils-4.17",
  "linux-image-amd64",
  "busybox-static",
  "qemu-system-x86",
];

/** The built lab. */
export interface XenLabImages {
  readonly dir: string;
  readonly xen: string;
  readonly kernel: string;
  /** Initrd modules for QEMU's `-initrd`, in order (concatenated by Linux). */
  readonly dom0Initrds: readonly string[];
  readonly hash: string;
  readonly withDeno: boolean;
  readonly built: boolean;
  readonly buildMs: number;
}

/** The Xen lab cache: `$HAKOBU_LAB_DIR` or `~/.cache/hakobu/lab/xen`. */
export function xenLabDir(): string {
  return Deno.env.get("HAKOBU_LAB_DIR") ??
    `${Deno.env.get("HOME") ?? "/root"}/.cache/hakobu/lab/xen`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The regular (non-cloud) Debian kernel, newest first, or null. */
export async function findDebianKernel(): Promise<string | null> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir("/boot")) {
      if (/^vmlinuz-.*-amd64$/.test(e.name) && !e.name.includes("cloud")) {
        names.push(e.name);
      }
    }
  } catch {
    return null;
  }
  names.sort();
  return names.length ? `/boot/${names[names.length - 1]}` : null;
}

/** Why the Xen lab cannot run here, or null when it can. */
export async function xenLabUnavailable(): Promise<string | null> {
  const hint =
    "apt-get install qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17 linux-image-amd64 busybox-static cpio";
  for (const bin of ["qemu-system-x86_64", "busybox", "cpio", "gzip", "ldd"]) {
    const p = await sh(["sh", "-c", `command -v ${bin}`], { allowFail: true });
    if (p.trim() === "") return `"${bin}" not found (${hint})`;
  }
  for (
    const f of [
      `/boot/xen-${XEN_VERSION}-amd64.gz`,
      ...XEN_TOOLS.map((t) => `${XEN_BIN}/${t}`),
    ]
  ) {
    if (!await exists(f)) return `"${f}" not found (${hint})`;
  }
  if (await findDebianKernel() === null) {
    return `no regular /boot/vmlinuz-*-amd64 (${hint})`;
  }
  return null;
}

/**
 * The domU's /init: a PV guest (console hvc0) that fills a tmpfs file with
 * {@link DOMU_PATTERN_MIB} MiB of a deterministic pattern, keeps a few MiB
 * being rewritten (dirty pages during migration), and every 2 s re-hashes the
 * pattern, printing `HAKOBU-WORK OK boot=<id> n=<k>` or `HAKOBU-WORK FAIL ...`.
 * The boot id is random per boot, so a line with the same id after a
 * migration proves the same guest instance ran on.
 */
export const DOMU_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs -o size=${DOMU_PATTERN_MIB + 8}m tmpfs /work
dmesg -n 1
BOOT=$(head -c 6 /dev/urandom | md5sum | head -c 12)
# deterministic pattern: a 1 MiB block from a fixed seed, repeated
yes hakobu-xen-lab-pattern | head -c 1048576 > /work/block
i=0
while [ $i -lt ${DOMU_PATTERN_MIB} ]; do echo "$i" | cat - /work/block; i=$((i+1)); done > /work/pattern
rm /work/block
WANT=$(md5sum < /work/pattern)
echo "HAKOBU-WORK START boot=$BOOT mib=${DOMU_PATTERN_MIB} md5=$WANT"
n=0
while true; do
  dd if=/dev/urandom of=/work/dirty bs=64k count=32 2>/dev/null
  GOT=$(md5sum < /work/pattern)
  n=$((n+1))
  if [ "$GOT" = "$WANT" ]; then echo "HAKOBU-WORK OK boot=$BOOT n=$n"; else echo "HAKOBU-WORK FAIL boot=$BOOT n=$n got=$GOT"; fi
  sleep 2
done
`;

/** The dom0 /init. Runs the toolstack, then a shell loop on the console. */
export const DOM0_INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=${XEN_BIN}:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
dmesg -n 1
for m in ${
  DOM0_MODULES.join(" ")
}; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
mount -t xenfs xenfs /proc/xen
mkdir -p /run/xen /run/xenstored /var/log/xen/console /var/lib/xen /run/lock /var/lock/xl
t0=$(cut -d' ' -f1 /proc/uptime)
xenstored --pid-file /run/xenstored.pid || echo "xenstored failed"
xen-init-dom0 || echo "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console || echo "xenconsoled failed"
ifconfig lo 127.0.0.1 up
echo "${DOM0_READY} uptime=$t0"
stty -echo 2>/dev/null
while true; do setsid cttyhack sh -l 2>&1 || sh; done
`;

/** xl config of the domU; `type` is "pv" or "pvh". */
export function domuConfig(type: "pv" | "pvh"): string {
  return `name = "hakobu-domu"
type = "${type}"
kernel = "/domu/vmlinuz"
ramdisk = "/domu/domu.cpio.gz"
extra = "console=hvc0 quiet loglevel=3"
memory = 128
vcpus = 1
on_crash = "preserve"
`;
}

async function pkgVersions(): Promise<string> {
  return await sh([
    "dpkg-query",
    "-W",
    "-f",
    "${Package}=${Version}\n",
    ...PACKAGES,
  ], { allowFail: true });
}

async function lddDeps(bins: readonly string[]): Promise<string[]> {
  const out = await sh(["ldd", ...bins], { allowFail: true });
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = line.match(/=>\s*(\/\S+)/) ?? line.match(/^\s*(\/\S+)\s+\(/);
    if (m) libs.add(m[1]);
  }
  return [...libs].sort();
}

/** Copies `src` to `root + dst` (dst defaults to src), resolving symlinks. */
async function put(root: string, src: string, dst = src): Promise<void> {
  const to = `${root}${dst}`;
  await Deno.mkdir(to.slice(0, to.lastIndexOf("/")), { recursive: true });
  await Deno.copyFile(await Deno.realPath(src), to);
  const st = await Deno.stat(src);
  await Deno.chmod(to, (st.mode ?? 0o644) & 0o777);
}

async function cpio(root: string, out: string, gzip: boolean): Promise<void> {
  const cmd =
    `cd '${root}' && find . -print0 | cpio --null -o -H newc --quiet -R 0:0` +
    (gzip ? ` | gzip -6 > '${out}'` : ` > '${out}'`);
  await sh(["sh", "-c", cmd]);
}

function repoRoot(): string {
  return new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
}

/**
 * Builds (or finds in the cache) the Xen lab images.
 *
 * @example
 * ```ts ignore
 * const img = await buildXenLab({ log: console.log });
 * console.log(img.xen, img.dom0Initrds);
 * ```
 */
export async function buildXenLab(
  options: { force?: boolean; withDeno?: boolean; log?: (s: string) => void } =
    {},
): Promise<XenLabImages> {
  const log = options.log ?? (() => {});
  const withDeno = options.withDeno ?? false;
  const why = await xenLabUnavailable();
  if (why) throw new Error(`Cannot build the Xen lab: ${why}`);
  const kernel = (await findDebianKernel())!;
  const kver = kernel.replace(/^\/boot\/vmlinuz-/, "");
  const recipe = [
    RECIPE_VERSION,
    kernel,
    await pkgVersions(),
    DOM0_INIT,
    DOMU_INIT,
    domuConfig("pv"),
    domuConfig("pvh"),
    XEN_TOOLS.join(","),
    DOM0_MODULES.join(","),
  ].join("\0");
  const hash = createHash("sha256").update(recipe).digest("hex").slice(0, 16);
  const dir = `${xenLabDir()}/${hash}`;
  const images = {
    dir,
    xen: `${dir}/xen`,
    kernel: `${dir}/vmlinuz`,
    hash,
  };
  const denoArchive = `${dir}/deno.cpio`;
  // Xen hands dom0 only the first module after its kernel as the initrd, so
  // the deno archive is appended to the base one (Linux unpacks both).
  const dom0Initrds = withDeno
    ? [`${dir}/dom0-deno.cpio`]
    : [`${dir}/dom0.cpio.gz`];
  const t0 = performance.now();
  let built = false;
  if (options.force || !await exists(`${dir}/.complete`)) {
    built = true;
    log(`building Xen lab images in ${dir}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    // hypervisor + kernel
    await sh([
      "sh",
      "-c",
      `gzip -dc /boot/xen-${XEN_VERSION}-amd64.gz > '${dir}/xen'`,
    ]);
    await Deno.copyFile(kernel, `${dir}/vmlinuz`);

    // domU initramfs
    const uroot = `${dir}/domu-root`;
    for (const d of ["bin", "proc", "sys", "dev", "work", "tmp"]) {
      await Deno.mkdir(`${uroot}/${d}`, { recursive: true });
    }
    await put(uroot, "/bin/busybox");
    await Deno.writeTextFile(`${uroot}/init`, DOMU_INIT, { mode: 0o755 });
    await cpio(uroot, `${dir}/domu.cpio.gz`, true);

    // dom0 initramfs
    const root = `${dir}/dom0-root`;
    for (
      const d of [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "proc",
        "sys",
        "dev",
        "run",
        "tmp",
        "root",
        "var/lib/xen",
        "var/log/xen",
        "lib/modules",
        "domu",
      ]
    ) await Deno.mkdir(`${root}/${d}`, { recursive: true });
    await Deno.symlink("/run", `${root}/var/run`);
    await Deno.symlink("/run/lock", `${root}/var/lock`);
    await put(root, "/bin/busybox");
    for (const m of DOM0_MODULES) {
      const f = (await sh(["modinfo", "-k", kver, "-F", "filename", m]))
        .trim();
      await put(root, f, `/lib/modules/${m}.ko`);
    }
    const bins = XEN_TOOLS.map((t) => `${XEN_BIN}/${t}`);
    for (const b of bins) await put(root, b);
    for (const lib of await lddDeps(bins)) await put(root, lib);
    // glibc dlopens libgcc_s for pthread_cancel (xl aborts without it)
    for (const lib of await lddDeps(["/bin/true"])) await put(root, lib);
    await put(root, "/lib/x86_64-linux-gnu/libgcc_s.so.1");
    await Deno.mkdir(`${root}/etc`, { recursive: true });
    await sh(["cp", "-a", "/etc/xen", `${root}/etc/xen`]);
    await Deno.writeTextFile(
      `${root}/etc/passwd`,
      "root:x:0:0:root:/root:/bin/sh\n",
    );
    await Deno.writeTextFile(`${root}/etc/hosts`, "127.0.0.1 localhost\n");
    await Deno.writeTextFile(`${root}/init`, DOM0_INIT, { mode: 0o755 });
    await Deno.copyFile(kernel, `${root}/domu/vmlinuz`);
    await Deno.copyFile(`${dir}/domu.cpio.gz`, `${root}/domu/domu.cpio.gz`);
    await Deno.writeTextFile(`${root}/domu/pv.cfg`, domuConfig("pv"));
    await Deno.writeTextFile(`${root}/domu/pvh.cfg`, domuConfig("pvh"));
    await cpio(root, `${dir}/dom0.cpio.gz`, true);
    await Deno.remove(root, { recursive: true });
    await Deno.remove(uroot, { recursive: true });
    await Deno.writeTextFile(`${dir}/.complete`, new Date().toISOString());
  }
  // the tree changes as people work: repack it every time (about 2 s)
  if (withDeno) {
    built = true;
    await buildDenoArchive(dir, denoArchive, log);
    await sh([
      "sh",
      "-c",
      `cat '${dir}/dom0.cpio.gz' > '${dir}/dom0-deno.cpio'`,
    ]);
    // an uncompressed archive after a compressed one must start 4-aligned
    const size = (await Deno.stat(`${dir}/dom0-deno.cpio`)).size;
    const f = await Deno.open(`${dir}/dom0-deno.cpio`, { append: true });
    await f.write(new Uint8Array((4 - size % 4) % 4));
    f.close();
    await sh(["sh", "-c", `cat '${denoArchive}' >> '${dir}/dom0-deno.cpio'`]);
  }
  return {
    ...images,
    dom0Initrds,
    withDeno,
    built,
    buildMs: built ? Math.round(performance.now() - t0) : 0,
  };
}

/**
 * deno (the one running this: the pinned one under `npx deno`) + the hakobu
 * tree (no .git/out/node_modules except the deno binary).
 */
async function buildDenoArchive(
  dir: string,
  out: string,
  log: (s: string) => void,
): Promise<void> {
  const repo = repoRoot();
  log(`packing deno and ${repo} into ${out}`);
  const root = `${dir}/deno-root`;
  await Deno.remove(root, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${root}/usr/bin`, { recursive: true });
  await put(root, Deno.execPath(), "/usr/bin/deno");
  await Deno.mkdir(`${root}/hakobu`, { recursive: true });
  await sh([
    "sh",
    "-c",
    `cd '${repo}' && tar --exclude=./.git --exclude=./out --exclude=./node_modules -cf - . | tar -C '${root}/hakobu' -xf -`,
  ]);
  // scripts/hakobu.ts needs its npm imports (commander, cli-table3, ...):
  // dom0 has no network, so ship node_modules (≈14 MB: no deno binary package,
  // fast-check, .ts/.map/.md files) and a config that maps deno.json's imports and resolves
  // them from it (`nodeModulesDir: manual`): DOM0_HAKOBU in xen_lab.ts.
  await sh([
    "sh",
    "-c",
    `cd '${repo}' && tar --exclude='node_modules/.deno/@deno+*' --exclude='node_modules/.deno/deno@*' --exclude=node_modules/@deno --exclude=node_modules/deno --exclude='node_modules/.deno/fast-check*' --exclude='*.map' --exclude='*.ts' --exclude='*.d.mts' --exclude='*.d.cts' --exclude='*.md' -cf - node_modules | tar -C '${root}/hakobu' -xf -`,
  ]);
  const denoJson = JSON.parse(await Deno.readTextFile(`${repo}/deno.json`));
  await Deno.writeTextFile(
    `${root}/hakobu/dom0.deno.json`,
    JSON.stringify({ nodeModulesDir: "manual", imports: denoJson.imports }),
  );
  // deno's own libraries (glibc) come with the base archive's ldd closure;
  // add anything it needs beyond that.
  for (
    const lib of await lddDeps([Deno.execPath()])
  ) {
    await put(root, lib);
  }
  // the lz4/zstd codecs load these through FFI
  for (const lib of ["liblz4.so.1", "libzstd.so.1"]) {
    const p = `/lib/x86_64-linux-gnu/${lib}`;
    if (await exists(p)) await put(root, p);
  }
  await cpio(root, out, false);
  await Deno.remove(root, { recursive: true });
}
