/**
 * The libvirt lab's guest: its image (the Debian cloud kernel and a busybox
 * initramfs, cached beside the QEMU lab's images), its domain XML, the QEMU
 * wrapper that pads its RAM, and the parser of its serial check lines.
 *
 * The guest's `/init` (busybox sh, no network, no disk):
 * - fills `/tmp/data` (tmpfs) with `hakobu.data` MiB from /dev/urandom and
 *   records its md5, printing `HAKOBU-BOOT boot=<id> data=<MiB> md5=<md5> ...`;
 * - rewrites a `hakobu.area` MiB tmpfs file at `hakobu.dirty` MiB/s (copies
 *   of the random data at moving offsets, so pages change content), or as
 *   fast as the vCPU allows with `max`, counting the MiB in `/tmp/dirtied`;
 * - every `hakobu.every` seconds checks `/tmp/data` against its md5 and
 *   prints `HAKOBU-CHECK ok <n> boot=<id> up=<s> dirtied=<MiB>` (or
 *   `HAKOBU-CHECK bad <n> ... got=<md5>`) on the serial console.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { labDir } from "./qemu_guest.ts";
import { sh } from "./_sh.ts";

const RECIPE_VERSION = "2";

/** A built guest image. */
export interface LibvirtGuestImage {
  /** The cache folder holding them (and the QEMU wrappers). */
  readonly dir: string;
  readonly kernel: string;
  readonly initrd: string;
  readonly built: boolean;
  readonly buildMs: number;
}

/** The newest `/boot/vmlinuz-*-cloud-amd64`, or null. */
export async function cloudKernel(): Promise<string | null> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir("/boot")) {
      if (/^vmlinuz-.*-cloud-amd64$/.test(e.name)) names.push(e.name);
    }
  } catch { /* no /boot */ }
  names.sort();
  return names.length ? `/boot/${names[names.length - 1]}` : null;
}

/** The guest's `/init`. */
export function guestInit(): string {
  return `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
arg() { sed -n "s/.*hakobu\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
DATA=$(arg data); DIRTY=$(arg dirty); AREA=$(arg area); EVERY=$(arg every)
: \${DATA:=16} \${DIRTY:=0} \${AREA:=64} \${EVERY:=2}
mount -t tmpfs -o size=$((DATA + AREA + 4))m tmp /tmp
BOOT=$(cut -c1-8 /proc/sys/kernel/random/uuid)
dd if=/dev/urandom of=/tmp/data bs=1M count=$DATA 2>/dev/null
MD5=$(md5sum /tmp/data | cut -d' ' -f1)
echo "$MD5  /tmp/data" > /tmp/data.md5
echo 0 > /tmp/dirtied
echo "HAKOBU-BOOT boot=$BOOT up=$(cut -d' ' -f1 /proc/uptime) data=$DATA md5=$MD5 dirty=$DIRTY area=$AREA every=$EVERY"
# centiseconds of uptime
now() { read u _ < /proc/uptime; echo $((\${u%.*} * 100 + 1\${u#*.} - 100)); }
dirtier() {
  # 256 KiB blocks: copies of /tmp/data at moving offsets into /tmp/area
  blocks=$((AREA * 4)); src=$((DATA * 4)); k=4; p=0; s=0; done=0
  [ "$DIRTY" = max ] && k=16
  [ $k -gt $blocks ] && k=$blocks
  [ $k -gt $src ] && k=$src
  t0=$(now)
  while :; do
    if [ "$DIRTY" != max ]; then
      want=$(( ($(now) - t0) * DIRTY * 4 / 100 ))
      if [ $done -ge $want ]; then sleep 0.05; continue; fi
    fi
    dd if=/tmp/data of=/tmp/area bs=256k count=$k skip=$s seek=$p conv=notrunc 2>/dev/null
    done=$((done + k))
    p=$((p + k)); [ $((p + k)) -gt $blocks ] && p=0
    s=$((s + k + 1)); [ $((s + k)) -gt $src ] && s=$((s % 7))
    echo $((done / 4)) > /tmp/dirtied
  done
}
[ "$DIRTY" != 0 ] && dirtier &
n=0
while :; do
  n=$((n + 1))
  if md5sum -c -s /tmp/data.md5; then st=ok; else st=bad; fi
  line="HAKOBU-CHECK $st $n boot=$BOOT up=$(cut -d' ' -f1 /proc/uptime) dirtied=$(cat /tmp/dirtied)"
  [ $st = ok ] || line="$line expected=$MD5 got=$(md5sum /tmp/data | cut -d' ' -f1)"
  echo "$line"
  sleep $EVERY
done
`;
}

/**
 * The guest's wrapper around `qemu-system-x86_64`: adds `padKiB` KiB to the
 * guest RAM (`-m` and the `pc.ram` memory backend alike).
 *
 * Why: QEMU 7.2 loses guest writes during a TCG migration when a RAM
 * block's length is a multiple of 64 pages (TCG_RAM_PAD_KIB in
 * qemu_guest.ts), and libvirt rounds `<memory>` up to whole MiB, so the pad
 * cannot be asked for in the domain XML. Both hosts run the same wrapper,
 * so the RAM blocks match on either side of a migration.
 */
export function qemuPadWrapper(padKiB: number): string {
  return `#!/bin/sh
# hakobu libvirt lab: QEMU with ${padKiB} KiB more guest RAM (see _libvirt_guest.ts)
PAD=${padKiB}
n=$#
prev=
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  if [ "$prev" = -m ]; then
    case "$a" in
      *[!0-9]*) ;;
      [0-9]*) a="$((a * 1024 + PAD))k" ;;
    esac
  fi
  case "$a" in
    '{"qom-type":"memory-backend-ram","id":"pc.ram","size":'*'}')
      s=\${a##*\\"size\\":}; s=\${s%\\}}
      a="{\\"qom-type\\":\\"memory-backend-ram\\",\\"id\\":\\"pc.ram\\",\\"size\\":$((s + PAD * 1024))}" ;;
  esac
  prev=$a
  set -- "$@" "$a"
done
exec /usr/bin/qemu-system-x86_64 "$@"
`;
}

/**
 * The path of the wrapper that pads guest RAM by `padKiB`, beside the
 * image: libvirt caches what it probed of an emulator by its path and
 * ctime, so a stable wrapper is probed once, not at each lab start.
 */
export function padWrapperPath(
  image: LibvirtGuestImage,
  padKiB: number,
): string {
  return `${image.dir}/qemu-system-x86_64-pad${padKiB}`;
}

/** Writes the wrapper of {@link padWrapperPath} unless it is there already. */
export async function writePadWrapper(
  image: LibvirtGuestImage,
  padKiB: number,
): Promise<string> {
  const path = padWrapperPath(image, padKiB);
  const text = qemuPadWrapper(padKiB);
  if (await Deno.readTextFile(path).catch(() => "") !== text) {
    const tmp = `${path}.${Deno.pid}.tmp`;
    await Deno.writeTextFile(tmp, text);
    await Deno.chmod(tmp, 0o755);
    await Deno.rename(tmp, path);
  }
  return path;
}

/** Where the lab keeps libvirt's probed QEMU capabilities between runs. */
export function capsCacheDir(): string {
  return `${labDir()}/libvirt-qemu-caps`;
}

/** Copies the `*.xml` files of `from` into `to` (each by rename, atomic). */
export async function copyXmls(from: string, to: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(from)) {
      if (!e.isFile || !e.name.endsWith(".xml")) continue;
      await Deno.mkdir(to, { recursive: true });
      const tmp = `${to}/.${e.name}.${Deno.pid}.tmp`;
      await Deno.copyFile(`${from}/${e.name}`, tmp);
      await Deno.rename(tmp, `${to}/${e.name}`);
      n++;
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return n;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Builds (or finds in the cache) the guest's kernel and initramfs, in
 * `labDir()/libvirt-<hash>`.
 */
export async function buildLibvirtGuest(
  options: { readonly force?: boolean } = {},
): Promise<LibvirtGuestImage> {
  const kernel = await cloudKernel();
  if (!kernel) {
    throw new Error(
      "Cannot build the libvirt lab guest: no /boot/vmlinuz-*-cloud-amd64 (apt-get install linux-image-cloud-amd64)",
    );
  }
  const busyboxPath =
    (await sh(["sh", "-c", "command -v busybox"], { allowFail: true }))
      .trim();
  if (!busyboxPath) {
    throw new Error(
      'Cannot build the libvirt lab guest: "busybox" not found (apt-get install busybox-static)',
    );
  }
  const busybox = await Deno.realPath(busyboxPath);
  const versions = await sh([
    "dpkg-query",
    "-W",
    "-f",
    "${Package}=${Version}\n",
    "busybox-static",
    "linux-image-cloud-amd64",
    "qemu-system-x86",
  ], { allowFail: true });
  const hash = createHash("sha256").update(
    [RECIPE_VERSION, kernel, busybox, versions, guestInit()].join("\0"),
  ).digest("hex").slice(0, 16);
  const dir = `${labDir()}/libvirt-${hash}`;
  const image = {
    dir,
    kernel: `${dir}/vmlinuz`,
    initrd: `${dir}/initrd.gz`,
  };
  if (!options.force && await exists(`${dir}/.complete`)) {
    return { ...image, built: false, buildMs: 0 };
  }
  const t0 = performance.now();
  await Deno.mkdir(labDir(), { recursive: true });
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  const root = `${dir}/root`;
  for (const d of ["bin", "proc", "sys", "dev", "tmp", "run"]) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  await Deno.copyFile(busybox, `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  await Deno.writeTextFile(`${root}/init`, guestInit());
  await Deno.chmod(`${root}/init`, 0o755);
  await sh([
    "sh",
    "-c",
    `cd '${root}' && find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > '${dir}/initrd.gz'`,
  ]);
  await Deno.copyFile(kernel, `${dir}/vmlinuz`);
  await Deno.remove(root, { recursive: true });
  await Deno.writeTextFile(`${dir}/.complete`, new Date().toISOString() + "\n");
  for await (const e of Deno.readDir(labDir())) {
    // older recipes
    if (e.name.startsWith("libvirt-") && e.name !== `libvirt-${hash}`) {
      await Deno.remove(`${labDir()}/${e.name}`, { recursive: true })
        .catch(() => {});
    }
  }
  return { ...image, built: true, buildMs: performance.now() - t0 };
}

/** What the domain XML is made of. */
export interface DomainXmlSpec {
  readonly name: string;
  readonly memoryMiB: number;
  readonly kernel: string;
  readonly initrd: string;
  /** MiB/s, or "max". */
  readonly dirty: number | "max";
  readonly dataMiB: number;
  readonly areaMiB: number;
  readonly everySec: number;
  /** The `<emulator>`: the pad wrapper, or QEMU itself. */
  readonly emulator: string;
  /** The serial log's path as the daemons see it. */
  readonly serialPath: string;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}

/** The guest's domain XML: diskless, no network, TCG, serial to a file. */
export function domainXml(spec: DomainXmlSpec): string {
  const cmdline = [
    "console=ttyS0",
    "quiet",
    "panic=-1",
    `hakobu.data=${spec.dataMiB}`,
    `hakobu.dirty=${spec.dirty}`,
    `hakobu.area=${spec.areaMiB}`,
    `hakobu.every=${spec.everySec}`,
  ].join(" ");
  const e = xmlEscape;
  return `<domain type='qemu'>
  <name>${e(spec.name)}</name>
  <memory unit='MiB'>${spec.memoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${e(spec.kernel)}</kernel>
    <initrd>${e(spec.initrd)}</initrd>
    <cmdline>${e(cmdline)}</cmdline>
  </os>
  <features><acpi/></features>
  <cpu mode='custom' match='exact' check='none'><model fallback='forbid'>qemu64</model></cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>${e(spec.emulator)}</emulator>
    <serial type='file'>
      <source path='${e(spec.serialPath)}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
