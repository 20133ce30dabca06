/**
 * Captures a real libxc stream: a live `xl migrate` of a minimal PVH guest
 * (`_xen_mini_guest.c`, built here with gcc) inside the Xen lab, with the
 * `-s` command tee'ing everything xl sends into a file on its way to
 * `xl migrate-receive`:
 *
 * ```sh
 * xl -vvv migrate -s 'sh -c '\''shift; tee /tmp/capture.xl | "$@"'\'' ssh' hakobu-mini localhost
 * ```
 *
 * The file is xl's whole side of the exchange: xl's saved-domain header and
 * config, libxl's stream (its LIBXC_CONTEXT record followed by the libxc
 * image, then libxl's END), and xl's "domain is yours" message. dom0 gzips
 * it; it comes out over the serial console in base64 chunks, each checked by
 * SHA-256 (the VM boots with `serial_tx_buffer=1M`: Xen drops console
 * output beyond its transmit buffer), and is written with zstd -19 and
 * long-distance matching, xl's `-vvv` log beside it.
 *
 * Why a mini guest: a Linux domU keeps ~40 MB of kernel in RAM (≈9 MB
 * compressed). The mini guest's RAM is zero but for its code and the pages
 * it rewrites, so a 16 MiB guest gives ≈30 MB of stream and ≈0.6 MB of
 * zstd, most of it the pfn lists of round 0 (a PVH guest's pfn space runs up
 * to its special pages just under 4 GiB: ≈1M entries, nearly all XTAB).
 *
 * @module
 */

import { createHash } from "node:crypto";
import zlib from "node:zlib";
import { buildXenLab, xenLabDir } from "./_xen_build.ts";
import { sh } from "./_sh.ts";
import { XenLabVm } from "./_xen_vm.ts";

/** Options of {@link captureXenStream}. */
export interface XenCaptureOptions {
  /** Where the capture goes, zstd-compressed (`.xl.zst`); xl's log goes to `<out without .zst>.log`. */
  readonly out: string;
  /** Memory of the mini guest in MiB (default 16). */
  readonly memMiB?: number;
  readonly runDir?: string;
  readonly log?: (s: string) => void;
}

/** What {@link captureXenStream} wrote and saw. */
export interface XenCapture {
  readonly out: string;
  readonly logFile: string;
  /** Bytes of the capture, uncompressed. */
  readonly bytes: number;
  /** Bytes of the zstd file. */
  readonly zstBytes: number;
  readonly sha256: string;
  /** The guest printed "resumed rc=0" and went on with the same boot id. */
  readonly guestRanOn: boolean;
  readonly migrateMs: number;
}

const CONSOLE = "/var/log/xen/console/guest-hakobu-mini*.log";
/** Bytes read out per command: their base64 (4/3, plus newlines) fits `serial_tx_buffer=1M`. */
const CHUNK = 512 * 1024;

/** Builds the mini guest with gcc; returns the ELF bytes. */
export async function buildMiniGuest(dir: string): Promise<Uint8Array> {
  const src = new URL("./_xen_mini_guest.c", import.meta.url).pathname;
  const elf = `${dir}/mini.elf`;
  await Deno.mkdir(dir, { recursive: true });
  try {
    await sh([
      "gcc",
      "-m32",
      "-O2",
      "-ffreestanding",
      "-fno-pic",
      "-fno-pie",
      "-fno-stack-protector",
      "-mgeneral-regs-only",
      "-fno-asynchronous-unwind-tables",
      "-nostdlib",
      "-static",
      "-no-pie",
      "-Wl,--build-id=none",
      "-Wl,-Ttext-segment=0x100000",
      "-o",
      elf,
      src,
    ]);
  } catch (e) {
    throw new Error(
      `Cannot build the mini guest: ${
        (e as Error).message
      } (apt-get install gcc)`,
    );
  }
  return await Deno.readFile(elf);
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

function unb64(text: string): Uint8Array | null {
  let bin: string;
  try {
    bin = atob(text.replace(/\s/g, ""));
  } catch {
    return null; // characters lost or added on the console
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * zstd level 19 with long-distance matching over a 128 MiB window: the
 * passes repeat pages tens of MB apart. `node:zlib`'s `zstdDecompressSync`
 * reads it back (windows up to 2^27 need no option).
 */
function compress(raw: Uint8Array): Uint8Array {
  const c = zlib.constants;
  return new Uint8Array(zlib.zstdCompressSync(raw, {
    params: {
      [c.ZSTD_c_compressionLevel]: 19,
      [c.ZSTD_c_enableLongDistanceMatching]: 1,
      [c.ZSTD_c_windowLog]: 27,
    },
  }));
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Copies `bytes` into dom0 as `path` (gzip + base64 over the console). */
async function push(
  vm: XenLabVm,
  bytes: Uint8Array,
  path: string,
): Promise<void> {
  const text = b64(zlib.gzipSync(bytes));
  await vm.ok(`rm -f ${path}.b64`);
  for (let i = 0; i < text.length; i += 96) {
    await vm.ok(`echo ${text.slice(i, i + 96)} >> ${path}.b64`);
  }
  await vm.ok(`base64 -d ${path}.b64 | gunzip > ${path} && rm ${path}.b64`);
  const want = sha256(bytes);
  const got = (await vm.ok(`sha256sum ${path}`)).out.trim().split(/\s+/)[0];
  if (got !== want) {
    throw new Error(`Copy of ${path} into dom0 differs: sha256 ${got}`);
  }
}

/** Reads a dom0 file out over the console in base64 chunks, each checked by SHA-256. */
async function pull(
  vm: XenLabVm,
  path: string,
  log: (s: string) => void,
): Promise<Uint8Array> {
  const size = Number((await vm.ok(`wc -c < ${path}`)).out.trim());
  const parts: Uint8Array[] = [];
  const t0 = performance.now();
  for (let at = 0, k = 0; at < size; k++) {
    const dd = `dd if=${path} bs=${CHUNK} skip=${k} count=1 2>/dev/null`;
    let got: Uint8Array | null = null;
    for (let attempt = 0; attempt < 3 && got === null; attempt++) {
      const sum = (await vm.ok(`${dd} | sha256sum`)).out.trim().split(
        /\s+/,
      )[0];
      const r = await vm.exec(`${dd} | base64`, 300_000);
      const bytes = r.rc === 0 ? unb64(r.out) : null;
      if (bytes && sha256(bytes) === sum) got = bytes;
      else log(`chunk ${k}: garbled on the console, reading it again`);
    }
    if (got === null) throw new Error(`Cannot read ${path} chunk ${k}`);
    parts.push(got);
    at += got.length;
    log(`read ${at}/${size} bytes of ${path}`);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  log(
    `read ${size} bytes of ${path} in ${Math.round(performance.now() - t0)} ms`,
  );
  return out;
}

/**
 * Boots the lab, runs the mini guest, live-migrates it with xl while
 * tee'ing xl's stream, and writes the compressed capture and xl's log.
 *
 * @example
 * ```ts ignore
 * await captureXenStream({ out: "engine/xen/stream/testdata/pvh-mini-live.xl.zst" });
 * ```
 */
export async function captureXenStream(
  options: XenCaptureOptions,
): Promise<XenCapture> {
  const log = options.log ?? (() => {});
  const mem = options.memMiB ?? 16;
  const runDir = options.runDir ?? `${xenLabDir()}/run-${Deno.pid}`;
  const elf = await buildMiniGuest(`${runDir}/mini`);
  log(`mini guest: ${elf.length} bytes`);
  const images = await buildXenLab({ log });
  const vm = await XenLabVm.boot(images, {
    runDir,
    log,
    // the capture comes out over the console: chunks must fit Xen's buffer
    xenArgs: ["serial_tx_buffer=1M"],
  });
  try {
    await push(vm, elf, "/tmp/mini.elf");
    const cfg = [
      'name = "hakobu-mini"',
      'type = "pvh"',
      'kernel = "/tmp/mini.elf"',
      `memory = ${mem}`,
      "vcpus = 1",
      'on_crash = "preserve"',
    ].join("\\n");
    await vm.ok(`printf '${cfg}\\n' > /tmp/mini.cfg`);
    log("dom0# xl create /tmp/mini.cfg");
    await vm.ok("xl create /tmp/mini.cfg", 300_000);
    const first = await waitConsole(
      vm,
      /HAKOBU-MINI OK boot=(\w+) n=(\d+)/,
      120_000,
    );
    if (!first) {
      const t = await vm.exec(`cat ${CONSOLE}; xl list; xl dmesg | tail -20`);
      throw new Error(`The mini guest never reported OK:\n${t.out}`);
    }
    const boot = first[1];
    log(`mini guest running (boot ${boot}, n=${first[2]})`);
    const tee = `sh -c 'shift; tee /tmp/capture.xl | "$@"' ssh`;
    const cmd = `xl -vvv migrate -s ${
      shq(tee)
    } hakobu-mini localhost > /tmp/migrate.log 2>&1`;
    log(`dom0# ${cmd}`);
    const m = await vm.exec(cmd, 600_000);
    const xlLog = (await vm.exec("cat /tmp/migrate.log", 120_000)).out;
    if (m.rc !== 0) {
      throw new Error(`xl migrate failed (${m.rc}):\n${xlLog.slice(-4000)}`);
    }
    log(`migrated in ${m.ms} ms`);
    const after = await waitConsole(
      vm,
      new RegExp(
        `HAKOBU-MINI resumed rc=0[\\s\\S]*HAKOBU-MINI OK boot=${boot} n=(\\d+)`,
      ),
      120_000,
    );
    log(
      after
        ? `guest ran on: n=${after[1]}`
        : "guest did not report after migrating",
    );
    const size = Number((await vm.ok("wc -c < /tmp/capture.xl")).out.trim());
    const sha = (await vm.ok("sha256sum /tmp/capture.xl")).out.trim().split(
      /\s+/,
    )[0];
    log(`capture: ${size} bytes, sha256 ${sha}; gzip in dom0`);
    await vm.ok("gzip -6 -c /tmp/capture.xl > /tmp/capture.xl.gz", 600_000);
    const raw = new Uint8Array(
      zlib.gunzipSync(await pull(vm, "/tmp/capture.xl.gz", log)),
    );
    if (raw.length !== size || sha256(raw) !== sha) {
      throw new Error("The capture read out of dom0 differs from dom0's copy");
    }
    const zst = compress(raw);
    await Deno.writeFile(options.out, zst);
    const logFile = options.out.replace(/\.zst$/, "") + ".log";
    await Deno.writeTextFile(logFile, xlLog);
    return {
      out: options.out,
      logFile,
      bytes: size,
      zstBytes: zst.length,
      sha256: sha,
      guestRanOn: after !== null,
      migrateMs: m.ms,
    };
  } finally {
    await vm.shutdown();
  }
}

async function waitConsole(
  vm: XenLabVm,
  re: RegExp,
  timeoutMs: number,
): Promise<RegExpMatchArray | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const r = await vm.exec(`cat ${CONSOLE} 2>/dev/null`, 60_000);
    const m = r.out.match(re);
    if (m) return m;
    await new Promise((res) => setTimeout(res, 2000));
  }
  return null;
}
