/**
 * The Xen lab: Xen 4.17 + a Debian PV dom0 inside QEMU (TCG), built from
 * Debian packages only, with a busybox domU whose memory workload proves it
 * survives `xl migrate`.
 *
 * ```sh
 * deno run -A scripts/lab/xen_lab.ts build [--deno] [--force]
 * deno run -A scripts/lab/xen_lab.ts boot [--deno]
 * deno run -A scripts/lab/xen_lab.ts migrate [--type pvh|pv] [--via plain,wrapper,saverestore,tunnel] [--ssh-command CMD] [--codecs zero,lz4] [--deno]
 * deno run -A scripts/lab/xen_lab.ts test
 * ```
 *
 * See docs/xen-lab.md for what each step does and the timings measured.
 *
 * @module
 */

import {
  buildXenLab,
  xenLabDir,
  type XenLabImages,
  xenLabUnavailable,
} from "./_xen_build.ts";
import { XenLabVm } from "./_xen_vm.ts";

export { buildXenLab, xenLabUnavailable, XenLabVm };

/** How a migration is carried out inside dom0. */
export type XenMigrateVia =
  /** `xl migrate -s "" dom "xl migrate-receive"`: xl runs the receiver itself. */
  | "plain"
  /**
   * `xl migrate -s WRAPPER dom localhost`: xl runs
   * `exec WRAPPER localhost xl migrate-receive`, the shape ssh has; the
   * wrapper drops the host and execs the rest (or `--ssh-command`).
   */
  | "wrapper"
  /** Non-live: `xl save dom FILE` then `xl restore FILE` (works for PV). */
  | "saverestore"
  /**
   * Through hakobu's tunnel (needs `--deno`): `tunnel_main.ts receive` in the
   * background in front of `xl migrate-receive`, and
   * `xl migrate -s "deno run ... tunnel_main.ts send --to 127.0.0.1:4445 --codecs C --"`.
   */
  | "tunnel";

/** How deno runs the hakobu tree inside dom0 (no network, no npm). */
export const DOM0_DENO =
  "deno run -A --no-config --no-lock /hakobu/engine/xen/tunnel_main.ts";

/** The ssh-shaped `-s` command: drops the host argument, runs the rest. */
export const LOCAL_SSH = `sh -c 'shift; exec "$@"' ssh`;

/** One migration's observed facts. */
export interface XenMigration {
  readonly via: XenMigrateVia;
  readonly sshCommand?: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly oldDomid: number;
  readonly newDomid: number | null;
  /** The old domid is no longer listed and no `--incoming`/`--migratedaway` domain is left. */
  readonly oldGone: boolean;
  /** Workload line count (`n`) last seen before the migration. */
  readonly nBefore: number;
  /** First workload `n` seen after the migration with the same boot id. */
  readonly nAfter: number | null;
  /** The workload reported OK after migration, same boot id, and no FAIL ever. */
  readonly memoryIntact: boolean;
  readonly bootId: string;
  /** `tunnel` only: the JSON stats lines of the sender and the receiver. */
  readonly tunnelStats?: readonly Record<string, unknown>[];
  readonly output: string;
}

/** Result of {@link runXenLab}. */
export interface XenLabRun {
  readonly images: XenLabImages;
  readonly bootMs: number;
  readonly domuType: "pv" | "pvh";
  readonly createMs: number;
  /** From `xl create` until the workload's first OK line. */
  readonly firstOkMs: number;
  readonly migrations: readonly XenMigration[];
  readonly serialLog: string;
}

// xenconsoled names the log after the domain's name when it first sees it;
// an incoming domain is briefly "hakobu-domu--incoming", so its console may
// land in guest-hakobu-domu--incoming.log: read them all.
const CONSOLE_LOG = "/var/log/xen/console/guest-hakobu-domu*.log";
const WORK_RE = /HAKOBU-WORK (OK|FAIL) boot=(\w+) n=(\d+)/g;

interface WorkState {
  readonly bootId: string | null;
  readonly n: number;
  readonly fails: number;
}

async function workState(vm: XenLabVm): Promise<WorkState> {
  const r = await vm.exec(`cat ${CONSOLE_LOG} 2>/dev/null`, 60_000);
  let bootId: string | null = null;
  let n = 0;
  let fails = 0;
  for (const m of r.out.matchAll(WORK_RE)) {
    if (m[1] === "FAIL") fails++;
    if (bootId !== null && m[2] !== bootId) fails++; // rebooted: not the same guest
    bootId = m[2];
    n = Math.max(n, Number(m[3]));
  }
  return { bootId, n, fails };
}

async function waitWork(
  vm: XenLabVm,
  pred: (s: WorkState) => boolean,
  timeoutMs: number,
): Promise<WorkState> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const s = await workState(vm);
    if (pred(s) || s.fails > 0) return s;
    if (performance.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function domains(vm: XenLabVm): Promise<{ name: string; id: number }[]> {
  const r = await vm.ok("xl list", 60_000);
  const out: { name: string; id: number }[] = [];
  for (const line of r.out.split("\n")) {
    const m = line.match(/^(\S+)\s+(\d+)\s+\d+\s+\d+\s/);
    if (m && m[1] !== "Domain-0") out.push({ name: m[1], id: Number(m[2]) });
  }
  return out;
}

/** Runs one migration of `hakobu-domu` inside dom0 and checks the three facts. */
export async function migrateOnce(
  vm: XenLabVm,
  via: XenMigrateVia,
  options: {
    sshCommand?: string;
    codecs?: string;
    log?: (s: string) => void;
  } = {},
): Promise<XenMigration> {
  const log = options.log ?? (() => {});
  const before = await domains(vm);
  const dom = before.find((d) => d.name === "hakobu-domu");
  if (!dom) {
    throw new Error(`hakobu-domu is not running: ${JSON.stringify(before)}`);
  }
  const w0 = await workState(vm);
  let cmd: string;
  let sshCommand: string | undefined;
  if (via === "plain") {
    cmd = `xl migrate -s "" hakobu-domu "xl migrate-receive"`;
  } else if (via === "wrapper") {
    sshCommand = options.sshCommand ?? LOCAL_SSH;
    cmd = `xl migrate -s ${shq(sshCommand)} hakobu-domu localhost`;
  } else if (via === "tunnel") {
    const codecs = options.codecs ?? "zero";
    await vm.ok(
      `(${DOM0_DENO} receive --listen 127.0.0.1:4445 -- xl migrate-receive > /tmp/tunnel-recv.log 2>&1 &)`,
    );
    sshCommand = `${DOM0_DENO} send --to 127.0.0.1:4445 --codecs ${codecs} --`;
    cmd = `xl migrate -s ${
      shq(sshCommand)
    } hakobu-domu localhost; rc=$?; sleep 1; cat /tmp/tunnel-recv.log; (exit $rc)`;
  } else {
    cmd =
      "xl save hakobu-domu /tmp/domu.save && xl restore /tmp/domu.save && rm -f /tmp/domu.save";
  }
  log(`dom0# ${cmd}`);
  const r = await vm.exec(cmd, 600_000);
  const after = await domains(vm);
  const mine = after.filter((d) => d.name === "hakobu-domu");
  const newDomid = mine.length === 1 ? mine[0].id : null;
  const oldGone = !after.some((d) => d.id === dom.id) &&
    after.every((d) => !/--(incoming|migratedaway)$/.test(d.name)) &&
    mine.length === 1;
  const w1 = r.rc === 0
    ? await waitWork(
      vm,
      (s) => s.bootId === w0.bootId && s.n > w0.n,
      180_000,
    )
    : w0;
  const memoryIntact = r.rc === 0 && w1.fails === 0 &&
    w1.bootId === w0.bootId && w1.n > w0.n;
  let output = r.out;
  if (
    !(r.rc === 0 && w1.fails === 0 && w1.bootId === w0.bootId && w1.n > w0.n)
  ) {
    const d = await vm.exec(
      `xl list; ls -l /var/log/xen/console; tail -5 ${CONSOLE_LOG}; xl dmesg | tail -20; tail -20 /var/log/xen/xl-hakobu-domu.log`,
      60_000,
    );
    output += `\n--- diagnostics ---\n${d.out}`;
  }
  const m: XenMigration = {
    via,
    sshCommand,
    ok: r.rc === 0,
    ms: r.ms,
    oldDomid: dom.id,
    newDomid,
    oldGone,
    nBefore: w0.n,
    nAfter: w1.bootId === w0.bootId && w1.n > w0.n ? w1.n : null,
    memoryIntact,
    bootId: w0.bootId ?? "",
    tunnelStats: via === "tunnel"
      ? r.out.split("\n").filter((l) => l.startsWith('{"ok"')).map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return { unparsed: l };
        }
      })
      : undefined,
    output,
  };
  log(
    `${via}: rc=${r.rc} ${r.ms} ms, domid ${dom.id} -> ${newDomid}, old gone=${oldGone}, ` +
      `workload n ${w0.n} -> ${m.nAfter} (boot ${m.bootId}) intact=${memoryIntact}`,
  );
  return m;
}

function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Builds (cached), boots, creates the domU, waits for its workload and runs
 * the given migrations in order; always shuts the VM down.
 */
export async function runXenLab(
  options: {
    via?: readonly XenMigrateVia[];
    type?: "pv" | "pvh";
    sshCommand?: string;
    codecs?: string;
    withDeno?: boolean;
    runDir?: string;
    log?: (s: string) => void;
  } = {},
): Promise<XenLabRun> {
  const log = options.log ?? (() => {});
  const type = options.type ?? "pvh";
  const images = await buildXenLab({ withDeno: options.withDeno, log });
  if (images.built) log(`built in ${images.buildMs} ms`);
  const runDir = options.runDir ?? `${xenLabDir()}/run-${Deno.pid}`;
  const vm = await XenLabVm.boot(images, { runDir, log });
  try {
    log(`dom0# xl create /domu/${type}.cfg`);
    const c = await vm.ok(`xl create /domu/${type}.cfg`, 300_000);
    const t0 = performance.now();
    const w = await waitWork(vm, (s) => s.n >= 1, 300_000);
    if (w.n < 1 || w.fails > 0) {
      const tail = await vm.exec(`tail -20 ${CONSOLE_LOG}`);
      throw new Error(`domU workload never reported OK:\n${tail.out}`);
    }
    const firstOkMs = Math.round(performance.now() - t0) + c.ms;
    log(`domU (${type}) created in ${c.ms} ms, first OK after ${firstOkMs} ms`);
    const migrations: XenMigration[] = [];
    for (const via of options.via ?? ["plain", "wrapper"]) {
      const m = await migrateOnce(vm, via, {
        sshCommand: options.sshCommand,
        codecs: options.codecs,
        log,
      });
      migrations.push(m);
      if (!m.ok) break;
    }
    return {
      images,
      bootMs: vm.bootMs,
      domuType: type,
      createMs: c.ms,
      firstOkMs,
      migrations,
      serialLog: vm.serialLog,
    };
  } finally {
    await vm.shutdown();
  }
}

function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

function opt(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const cmd = args.shift() ?? "help";
  const log = (s: string) => console.error(`[xen-lab] ${s}`);
  const withDeno = flag(args, "--deno");
  const force = flag(args, "--force");
  const json = flag(args, "--json");
  const type = (opt(args, "--type") ?? "pvh") as "pv" | "pvh";
  const via = opt(args, "--via")?.split(",") as XenMigrateVia[] | undefined;
  const sshCommand = opt(args, "--ssh-command");
  const codecs = opt(args, "--codecs");
  if (cmd === "help" || cmd === "--help") {
    console.log(
      "usage: xen_lab.ts <build|boot|migrate|test> [--deno] [--force] [--json]\n" +
        "       migrate: [--type pvh|pv] [--via plain,wrapper,saverestore,tunnel] [--ssh-command CMD] [--codecs zero,lz4]",
    );
    return 0;
  }
  const why = await xenLabUnavailable();
  if (why) {
    console.error(`Xen lab unavailable: ${why}`);
    return 2;
  }
  if (cmd === "build") {
    const img = await buildXenLab({ force, withDeno, log });
    console.log(
      json
        ? JSON.stringify(img, null, 2)
        : `${img.dir} (${img.built ? `built in ${img.buildMs} ms` : "cached"})`,
    );
    return 0;
  }
  if (cmd === "boot") {
    const img = await buildXenLab({ force, withDeno, log });
    const vm = await XenLabVm.boot(img, {
      runDir: `${xenLabDir()}/run-${Deno.pid}`,
      log,
    });
    try {
      const info = await vm.ok(
        "xl info | grep -E 'xen_version|virt_caps|total_memory|free_memory'; xl list",
      );
      console.log(info.out.trim());
      if (withDeno) {
        const d = await vm.exec("time deno --version", 120_000);
        console.log(d.out.trim());
      }
      console.log(`boot: ${vm.bootMs} ms; serial log ${vm.serialLog}`);
    } finally {
      await vm.shutdown();
    }
    return 0;
  }
  if (cmd === "migrate" || cmd === "test") {
    const r = await runXenLab({
      via: via ?? (type === "pv" ? ["saverestore"] : ["plain", "wrapper"]),
      type,
      sshCommand,
      codecs,
      withDeno,
      log,
    });
    const summary = {
      buildMs: r.images.buildMs,
      bootMs: r.bootMs,
      domuType: r.domuType,
      createMs: r.createMs,
      firstOkMs: r.firstOkMs,
      migrations: r.migrations.map(({ output: _o, ...m }) => m),
    };
    console.log(JSON.stringify(summary, null, 2));
    const good = r.migrations.length > 0 &&
      r.migrations.every((m) => m.ok && m.oldGone && m.memoryIntact);
    if (!good) {
      for (const m of r.migrations.filter((m) => !m.ok || !m.memoryIntact)) {
        console.error(`--- ${m.via} output ---\n${m.output}`);
      }
    }
    console.error(good ? "xen lab: PASS" : "xen lab: FAIL");
    return good ? 0 : 1;
  }
  console.error(`unknown command "${cmd}" (build|boot|migrate|test)`);
  return 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
