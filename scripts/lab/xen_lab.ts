/**
 * The Xen lab: Xen 4.17 + a Debian PV dom0 inside QEMU (TCG), built from
 * Debian packages only, with a busybox domU whose memory workload proves it
 * survives `xl migrate`.
 *
 * ```sh
 * deno run -A scripts/lab/xen_lab.ts build [--deno] [--force]
 * deno run -A scripts/lab/xen_lab.ts boot [--deno]
 * deno run -A scripts/lab/xen_lab.ts migrate [--type pvh|pv] [--via plain,wrapper,saverestore,tunnel,policy,policy-tunnel] [--policy three_rounds.ts,...] [--probe] [--ssh-command CMD] [--codecs zero,lz4] [--deno]
 * deno run -A scripts/lab/xen_lab.ts dirty-rate [--interval 2s]   # implies --deno
 * deno run -A scripts/lab/xen_lab.ts test   # xl migrate, hakobu xen migrate, one that must fail and resume
 * deno run -A scripts/lab/xen_lab.ts capture --out FILE.xl.zst [--mem 16]   # a real xl stream (_xen_capture.ts)
 * ```
 *
 * See docs/xen-lab.md for what each step does and the timings measured.
 *
 * @module
 */

import type { DirtyRate } from "../../engine/xen/dirty_rate.ts";
import {
  buildXenLab,
  xenLabDir,
  type XenLabImages,
  xenLabUnavailable,
} from "./_xen_build.ts";
import { XenLabVm } from "./_xen_vm.ts";
import { captureXenStream } from "./_xen_capture.ts";
import { type Command, Option } from "@commander-js/extra-typings";
import { codecChain, integer, nameList } from "../_cli/options.ts";
import { cliProgram, runCli } from "../_cli/program.ts";

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
   * Through hakobu's tunnel (needs `--deno`): `tunnel.ts xen receive` in the
   * background in front of `xl migrate-receive`, and
   * `xl migrate -s "deno run ... tunnel.ts xen send --to 127.0.0.1:4445 --codecs C --"`.
   */
  | "tunnel"
  /**
   * hakobu in xl's place (needs `--deno`): `hakobu xen migrate hakobu-domu
   * --policy P --json`, libxenguest's save loop under the policy, to
   * `xl migrate-receive`; once per policy given.
   */
  | "policy"
  /** As `policy`, its stream through hakobu's tunnel (codecs as `tunnel`). */
  | "policy-tunnel"
  /**
   * A migration that must fail after the guest was suspended: the receiver
   * sends xl's banner, then garbage where "ready" belongs, and drains the
   * stream. hakobu must rename the domain back and resume it in place.
   */
  | "policy-resume";

/**
 * How dom0 runs the stream tunnel, `scripts/tunnel.ts xen`: like
 * {@link DOM0_HAKOBU}, its flags are parsed with commander, resolved
 * offline from the archive's `node_modules`.
 */
export const DOM0_DENO =
  "deno run -A --config /hakobu/dom0.deno.json --no-lock --cached-only /hakobu/scripts/tunnel.ts xen";

/**
 * The Xen lab's tunnels authenticate, as users run them: dom0 makes fresh
 * credentials (`hakobu tls init`: a CA, the receiving tunnel's certificate
 * for 127.0.0.1, the sender's client certificate) before the receiver
 * starts, and the receiver admits only that sender.
 */
const DOM0_TUNNEL_PKI =
  "rm -rf /tmp/pki && deno run -A --config /hakobu/dom0.deno.json --no-lock --cached-only /hakobu/scripts/hakobu.ts tls init /tmp/pki --name 127.0.0.1 --identity xen-lab-source > /dev/null";
/** The tunnels' TLS flags in the Xen lab (see {@link DOM0_TUNNEL_PKI}). */
const DOM0_TUNNEL_TLS = "--tls-dir /tmp/pki";
/** Starts the receiving tunnel in dom0's background, in front of xl migrate-receive. */
const DOM0_TUNNEL_RECEIVE =
  `(${DOM0_TUNNEL_PKI}; ${DOM0_DENO} receive --listen 127.0.0.1:4445 ${DOM0_TUNNEL_TLS} --tls-authz xen-lab-source -- xl migrate-receive > /tmp/tunnel-recv.log 2>&1 &)`;
/** The sending tunnel as xl's ssh command, for `codecs`. */
const dom0TunnelSend = (codecs: string): string =>
  `${DOM0_DENO} send --to 127.0.0.1:4445 ${DOM0_TUNNEL_TLS} --codecs ${codecs} --`;

/**
 * The tunnel receiver's log, once it holds the statistics line: xl returns
 * after its own handshake, and the tunnel's digest comparison ends after
 * that (up to 2 minutes under TCG), so the log is polled, not read once.
 */
const AWAIT_TUNNEL_STATS =
  `i=0; while [ $i -lt 120 ] && ! grep -q '"ok":' /tmp/tunnel-recv.log; do sleep 1; i=$((i+1)); done; cat /tmp/tunnel-recv.log`;

/**
 * How dom0 runs `scripts/hakobu.ts` (needs `--deno`): the archive carries
 * `node_modules` (without deno itself) and `dom0.deno.json`, deno.json's
 * import map with `nodeModulesDir: manual`, so the npm imports resolve
 * offline.
 */
export const DOM0_HAKOBU =
  "deno run -A --config /hakobu/dom0.deno.json --no-lock --cached-only /hakobu/scripts/hakobu.ts";

/** What {@link dirtyRateCheck} observed. */
export interface XenDirtyRateCheck {
  readonly domid: number;
  /** `--interval` given to the CLI. */
  readonly interval: string;
  /** While the workload runs; null when the CLI failed. */
  readonly running: DirtyRate | null;
  /** Wall time of the running measurement's command (deno start included). */
  readonly runningMs: number;
  /** After `xl pause`; null when the CLI failed. */
  readonly paused: DirtyRate | null;
  readonly pausedMs: number;
  /** Workload n before the measurements and after `xl unpause`. */
  readonly nBefore: number;
  readonly nAfter: number;
  /**
   * running: > 0 pages and under 64 MiB/s; paused: at most
   * {@link PAUSED_MAX_PAGES} pages; the workload runs on after unpause.
   */
  readonly ok: boolean;
  readonly output: string;
}

/**
 * Pages a paused domain may still show dirty: Xen and dom0's backends write
 * a few pages (shared info, console/xenstore ring indexes) on its behalf.
 */
export const PAUSED_MAX_PAGES = 64;

function parseDirtyRate(out: string): DirtyRate | null {
  const j = jsonLines(out, '{"domid"')[0];
  return j && !("unparsed" in j) ? j as unknown as DirtyRate : null;
}

/**
 * Runs `hakobu xen dirty-rate DOMID --interval I --json` in dom0 against the
 * running `hakobu-domu`, then again after `xl pause`, then `xl unpause`s it
 * and waits for the workload to make progress. Needs a `--deno` boot.
 */
export async function dirtyRateCheck(
  vm: XenLabVm,
  options: { interval?: string; log?: (s: string) => void } = {},
): Promise<XenDirtyRateCheck> {
  const log = options.log ?? (() => {});
  const interval = options.interval ?? "2s";
  const dom = (await domains(vm)).find((d) => d.name === "hakobu-domu");
  if (!dom) throw new Error("hakobu-domu is not running");
  const w0 = await workState(vm);
  const cmd =
    `${DOM0_HAKOBU} xen dirty-rate ${dom.id} --interval ${interval} --json`;
  log(`dom0# ${cmd}`);
  const r1 = await vm.exec(cmd, 300_000);
  const running = parseDirtyRate(r1.out);
  log(`running: rc=${r1.rc} ${r1.ms} ms ${JSON.stringify(running)}`);
  await vm.ok("xl pause hakobu-domu");
  log(`dom0# xl pause hakobu-domu; ${cmd}`);
  const r2 = await vm.exec(cmd, 300_000);
  const paused = parseDirtyRate(r2.out);
  log(`paused: rc=${r2.rc} ${r2.ms} ms ${JSON.stringify(paused)}`);
  await vm.ok("xl unpause hakobu-domu");
  const w1 = await waitWork(
    vm,
    (s) => s.bootId === w0.bootId && s.n > w0.n,
    120_000,
  );
  log(`unpaused: workload n ${w0.n} -> ${w1.n}, fails ${w1.fails}`);
  const ok = r1.rc === 0 && running !== null && running.domid === dom.id &&
    running.dirtyPages > 0 && running.bytesPerSecond < 64 * 2 ** 20 &&
    r2.rc === 0 && paused !== null && paused.dirtyPages <= PAUSED_MAX_PAGES &&
    w1.fails === 0 && w1.bootId === w0.bootId && w1.n > w0.n;
  return {
    domid: dom.id,
    interval,
    running,
    runningMs: r1.ms,
    paused,
    pausedMs: r2.ms,
    nBefore: w0.n,
    nAfter: w1.n,
    ok,
    output: `--- running ---\n${r1.out}\n--- paused ---\n${r2.out}`,
  };
}

/** The ssh-shaped `-s` command: drops the host argument, runs the rest. */
export const LOCAL_SSH = `sh -c 'shift; exec "$@"' ssh`;

/** One migration's observed facts. */
export interface XenMigration {
  readonly via: XenMigrateVia;
  readonly sshCommand?: string;
  /**
   * The command did what it should: migrated (exit 0), or for
   * `policy-resume` failed with "resumed at the source" and left the same
   * domain, under its name, with no leftovers.
   */
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
  /** `policy*` only: the policy file and `hakobu xen migrate --json`'s result. */
  readonly policy?: string;
  readonly policyResult?: Record<string, unknown> | null;
  /**
   * Downtime as `engine/xen/downtime_probe.ts` saw it from dom0 (source
   * suspended → the incoming domain runs), the same yardstick for every
   * path; null without a `--deno` boot or when the probe saw no switch.
   */
  readonly downtimeMs: number | null;
  /** The probe's whole result. */
  readonly probe?: Record<string, unknown> | null;
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
  /** With `dirtyRate`: the dirty-rate check, run before the migrations. */
  readonly dirtyRate?: XenDirtyRateCheck;
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

/**
 * How dom0 runs the downtime probe (`scripts/lab/downtime_probe.ts`, its
 * flags parsed with commander from the archive's `node_modules`, as
 * {@link DOM0_HAKOBU}).
 */
const DOM0_PROBE =
  "deno run -A --config /hakobu/dom0.deno.json --no-lock --cached-only /hakobu/scripts/lab/downtime_probe.ts";

/**
 * Starts the downtime probe on `domid` in dom0's background and waits until
 * it polls; returns false when it did not start (then no downtime is
 * measured, the migration still runs).
 */
async function startProbe(
  vm: XenLabVm,
  domid: number,
  log: (s: string) => void,
): Promise<boolean> {
  await vm.ok(
    `rm -f /tmp/probe.out; (${DOM0_PROBE} ${domid} --interval-ms 20 > /tmp/probe.out 2>&1 &)`,
  );
  const deadline = performance.now() + 120_000;
  while (performance.now() < deadline) {
    const r = await vm.exec("grep -q ready /tmp/probe.out", 30_000);
    if (r.rc === 0) return true;
    await new Promise((res) => setTimeout(res, 1000));
  }
  log("downtime probe did not start within 120 s");
  return false;
}

/** The probe's result, waiting up to 20 s for it; null if none. */
async function probeResult(
  vm: XenLabVm,
): Promise<Record<string, unknown> | null> {
  for (let i = 0; i < 20; i++) {
    const r = await vm.exec("cat /tmp/probe.out", 30_000);
    const j = jsonLines(r.out, '{"domid"')[0];
    if (j) return j;
    await new Promise((res) => setTimeout(res, 1000));
  }
  await vm.exec("pkill -f downtime_probe.ts", 30_000);
  return null;
}

/**
 * The JSON lines of dom0's console output that start with `prefix`. The
 * console merges stdout and stderr, so a progress bar's clear-line escape
 * can lead a line: escapes are dropped first.
 */
function jsonLines(out: string, prefix: string): Record<string, unknown>[] {
  return out.split("\n").map((l) =>
    // deno-lint-ignore no-control-regex
    l.replace(/\r/g, "").replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").trim()
  ).filter((l) => l.startsWith(prefix)).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return { unparsed: l };
    }
  });
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
    /** For `policy*`: the file, relative to examples/policies/ unless absolute. */
    policy?: string;
    /** Run the downtime probe alongside (needs deno in dom0). */
    probe?: boolean;
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
  const policy = options.policy ?? "three_rounds.ts";
  const policyPath = policy.startsWith("/")
    ? policy
    : `/hakobu/examples/policies/${policy}`;
  if (via === "policy-resume") {
    const refuse =
      `printf 'xl migration receiver ready, send binary domain data.\\nNOPE'; exec cat > /dev/null`;
    cmd =
      `${DOM0_HAKOBU} xen migrate hakobu-domu --policy ${policyPath} --receiver ${
        shq(refuse)
      }`;
  } else if (via === "policy" || via === "policy-tunnel") {
    let receiver = "";
    if (via === "policy-tunnel") {
      await vm.ok(
        DOM0_TUNNEL_RECEIVE,
      );
      receiver = ` --receiver ${
        shq(
          dom0TunnelSend(options.codecs ?? "zero"),
        )
      }`;
    }
    cmd =
      `${DOM0_HAKOBU} xen migrate hakobu-domu --policy ${policyPath}${receiver} --json` +
      (via === "policy-tunnel"
        ? `; rc=$?; ${AWAIT_TUNNEL_STATS}; (exit $rc)`
        : "");
  } else if (via === "plain") {
    cmd = `xl migrate -s "" hakobu-domu "xl migrate-receive"`;
  } else if (via === "wrapper") {
    sshCommand = options.sshCommand ?? LOCAL_SSH;
    cmd = `xl migrate -s ${shq(sshCommand)} hakobu-domu localhost`;
  } else if (via === "tunnel") {
    const codecs = options.codecs ?? "zero";
    await vm.ok(
      DOM0_TUNNEL_RECEIVE,
    );
    sshCommand = dom0TunnelSend(codecs);
    cmd = `xl migrate -s ${
      shq(sshCommand)
    } hakobu-domu localhost; rc=$?; ${AWAIT_TUNNEL_STATS}; (exit $rc)`;
  } else {
    cmd =
      "xl save hakobu-domu /tmp/domu.save && xl restore /tmp/domu.save && rm -f /tmp/domu.save";
  }
  const probing = options.probe ? await startProbe(vm, dom.id, log) : false;
  log(`dom0# ${cmd}`);
  const r = await vm.exec(cmd, 600_000);
  const probe = probing ? await probeResult(vm) : null;
  const after = await domains(vm);
  const mine = after.filter((d) => d.name === "hakobu-domu");
  const newDomid = mine.length === 1 ? mine[0].id : null;
  // policy-resume: the migration must fail (exit 1, "resumed at the source")
  // and leave the same domain running under its name
  const expectFail = via === "policy-resume";
  const failedCleanly = expectFail && r.rc === 1 &&
    /resumed at the source/.test(r.out) && newDomid === dom.id &&
    after.every((d) => !/--(incoming|migratedaway)$/.test(d.name));
  const oldGone = !after.some((d) => d.id === dom.id) &&
    after.every((d) => !/--(incoming|migratedaway)$/.test(d.name)) &&
    mine.length === 1;
  const ran = expectFail ? failedCleanly : r.rc === 0;
  const w1 = ran
    ? await waitWork(
      vm,
      (s) => s.bootId === w0.bootId && s.n > w0.n,
      180_000,
    )
    : w0;
  const memoryIntact = ran && w1.fails === 0 &&
    w1.bootId === w0.bootId && w1.n > w0.n;
  let output = r.out;
  if (!memoryIntact) {
    const d = await vm.exec(
      `xl list; ls -l /var/log/xen/console; tail -5 ${CONSOLE_LOG}; xl dmesg | tail -20; tail -20 /var/log/xen/xl-hakobu-domu.log`,
      60_000,
    );
    output += `\n--- diagnostics ---\n${d.out}`;
  }
  const m: XenMigration = {
    via,
    sshCommand,
    ok: ran,
    ms: r.ms,
    oldDomid: dom.id,
    newDomid,
    oldGone,
    nBefore: w0.n,
    nAfter: w1.bootId === w0.bootId && w1.n > w0.n ? w1.n : null,
    memoryIntact,
    bootId: w0.bootId ?? "",
    tunnelStats: via === "tunnel" || via === "policy-tunnel"
      ? jsonLines(r.out, '{"ok"')
      : undefined,
    ...(via === "policy" || via === "policy-tunnel"
      ? { policy, policyResult: jsonLines(r.out, '{"verified"')[0] ?? null }
      : {}),
    downtimeMs: typeof probe?.downtimeMs === "number" ? probe.downtimeMs : null,
    probe,
    output,
  };
  const pr = m.policyResult;
  log(
    `${via}${
      m.policy ? ` (${m.policy})` : ""
    }: rc=${r.rc} ${r.ms} ms, domid ${dom.id} -> ${newDomid}, old gone=${oldGone}, ` +
      `workload n ${w0.n} -> ${m.nAfter} (boot ${m.bootId}) intact=${memoryIntact}` +
      (probing ? `, downtime ${m.downtimeMs ?? "?"} ms (probe)` : "") +
      (pr
        ? `; hakobu: ${
          Array.isArray(pr.rounds) ? pr.rounds.length : "?"
        } rounds, ${pr.imageBytes} B image, ${pr.totalTimeMs} ms, downtime ${pr.downtimeMs} ms`
        : ""),
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
    /** Policies for `policy*` migrations, one migration each (default three_rounds.ts). */
    policies?: readonly string[];
    /** Measure each migration's downtime with the dom0 probe (implies `withDeno`). */
    probe?: boolean;
    withDeno?: boolean;
    /** Run {@link dirtyRateCheck} first (implies `withDeno`); "" = no. */
    dirtyRate?: string;
    runDir?: string;
    log?: (s: string) => void;
  } = {},
): Promise<XenLabRun> {
  const log = options.log ?? (() => {});
  const type = options.type ?? "pvh";
  const withDeno = options.withDeno || !!options.dirtyRate || !!options.probe ||
    (options.via ?? []).some((v) => v.startsWith("policy"));
  const images = await buildXenLab({ withDeno, log });
  if (images.built) log(`built in ${images.buildMs} ms`);
  const runDir = options.runDir ?? `${xenLabDir()}/run-${Deno.pid}`;
  // dom0's rootfs (tmpfs, half its RAM) must hold deno, the tree and
  // node_modules: with 512 MiB an archive of 135 MB failed to unpack
  // ("Initramfs unpacking failed: write error"), so --deno boots give dom0
  // 768 MiB.
  const vm = await XenLabVm.boot(images, {
    runDir,
    log,
    dom0MiB: withDeno ? 768 : undefined,
  });
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
    const dirtyRate = options.dirtyRate
      ? await dirtyRateCheck(vm, { interval: options.dirtyRate, log })
      : undefined;
    const migrations: XenMigration[] = [];
    const runs = (options.via ?? ["plain", "wrapper"]).flatMap((
      via,
    ): { via: XenMigrateVia; policy?: string }[] =>
      via.startsWith("policy")
        ? (options.policies ?? ["three_rounds.ts"]).map((policy) => ({
          via,
          policy,
        }))
        : [{ via, policy: undefined }]
    );
    for (const { via, policy } of runs) {
      const m = await migrateOnce(vm, via, {
        sshCommand: options.sshCommand,
        codecs: options.codecs,
        policy,
        probe: options.probe ?? false,
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
      dirtyRate,
      serialLog: vm.serialLog,
    };
  } finally {
    await vm.shutdown();
  }
}

/** Every {@link XenMigrateVia}, for `--via`. */
const VIAS: readonly XenMigrateVia[] = [
  "plain",
  "wrapper",
  "saverestore",
  "tunnel",
  "policy",
  "policy-tunnel",
  "policy-resume",
];

/** Exit code when the lab cannot run here or a flag is wrong. */
const UNAVAILABLE = 2;

/** The command line: one subcommand per step; `--help` lists the flags. */
function command(setExit: (code: number) => void): Command {
  const log = (s: string) => console.error(`[xen-lab] ${s}`);
  const program = cliProgram("xen_lab.ts", { usageExitCode: UNAVAILABLE })
    .description(
      "The Xen lab: Xen 4.17 and a Debian PV dom0 inside QEMU (TCG), with a busybox domU (docs/xen-lab.md).",
    );
  /** Runs `step` unless the lab cannot run here; its result is the exit code. */
  const unlessUnavailable = async (step: () => Promise<number>) => {
    const why = await xenLabUnavailable();
    if (why) {
      console.error(`Xen lab unavailable: ${why}`);
      setExit(UNAVAILABLE);
      return;
    }
    setExit(await step());
  };
  const deno = () =>
    new Option("--deno", "put deno and the hakobu tree into dom0");
  const force = () => new Option("--force", "rebuild even when cached");

  program.command("build")
    .description("build the lab's images (cached)")
    .addOption(deno())
    .addOption(force())
    .option("--json", "print the images as JSON")
    .action((o) =>
      unlessUnavailable(async () => {
        const img = await buildXenLab({
          force: o.force,
          withDeno: o.deno,
          log,
        });
        console.log(
          o.json
            ? JSON.stringify(img, null, 2)
            : `${img.dir} (${
              img.built ? `built in ${img.buildMs} ms` : "cached"
            })`,
        );
        return 0;
      })
    );

  program.command("boot")
    .description("boot dom0, print xl info, shut down")
    .addOption(deno())
    .addOption(force())
    .action((o) =>
      unlessUnavailable(async () => {
        const img = await buildXenLab({
          force: o.force,
          withDeno: o.deno,
          log,
        });
        const vm = await XenLabVm.boot(img, {
          runDir: `${xenLabDir()}/run-${Deno.pid}`,
          log,
        });
        try {
          const info = await vm.ok(
            "xl info | grep -E 'xen_version|virt_caps|total_memory|free_memory'; xl list",
          );
          console.log(info.out.trim());
          if (o.deno) {
            const d = await vm.exec("time deno --version", 120_000);
            console.log(d.out.trim());
          }
          console.log(`boot: ${vm.bootMs} ms; serial log ${vm.serialLog}`);
        } finally {
          await vm.shutdown();
        }
        return 0;
      })
    );

  program.command("dirty-rate")
    .description(
      "hakobu xen dirty-rate on the domU, running and paused (implies --deno)",
    )
    .option("--interval <duration>", "how long each measurement lasts", "2s")
    .action((o) =>
      unlessUnavailable(async () => {
        const r = await runXenLab({ via: [], dirtyRate: o.interval, log });
        const d = r.dirtyRate!;
        const { output: _o, ...summary } = d;
        console.log(JSON.stringify(
          {
            buildMs: r.images.buildMs,
            bootMs: r.bootMs,
            createMs: r.createMs,
            firstOkMs: r.firstOkMs,
            ...summary,
          },
          null,
          2,
        ));
        if (!d.ok) console.error(d.output);
        console.error(
          d.ok ? "xen lab dirty-rate: PASS" : "xen lab dirty-rate: FAIL",
        );
        return d.ok ? 0 : 1;
      })
    );

  program.command("capture")
    .description(
      "xl's stream of a live migration of a mini PVH guest, to a file (_xen_capture.ts)",
    )
    .requiredOption(
      "--out <file>",
      "where the stream goes, e.g. engine/xen/stream/testdata/pvh-mini-live.xl.zst",
    )
    .option("--mem <MiB>", "the guest's memory in MiB", integer({ min: 8 }))
    .action((o) =>
      unlessUnavailable(async () => {
        const r = await captureXenStream({ out: o.out, memMiB: o.mem, log });
        console.log(JSON.stringify(r, null, 2));
        console.error(
          r.guestRanOn
            ? "xen lab capture: PASS"
            : "xen lab capture: FAIL (the guest did not run on after migrating)",
        );
        return r.guestRanOn ? 0 : 1;
      })
    );

  for (
    const [name, description] of [
      ["migrate", "migrate the domU the ways --via names, checking each"],
      [
        "test",
        "what the CI test runs: xl migrate, hakobu xen migrate, one that must fail and resume",
      ],
    ] as const
  ) {
    program.command(name)
      .description(description)
      .addOption(
        new Option("--type <type>", "the domU's type").choices(
          ["pvh", "pv"] as const,
        ).default("pvh" as const),
      )
      .option(
        "--via <list>",
        `how each migration goes, comma-separated: ${VIAS.join(", ")}`,
        nameList({ known: VIAS, what: "via" }),
      )
      .option(
        "--ssh-command <cmd>",
        "the wrapper's command in place of the ssh-like one",
      )
      .option(
        "--codecs <list>",
        "the tunnel's codec chain, e.g. zero,lz4",
        codecChain(),
      )
      .option(
        "--policy <list>",
        "examples/policies/ files for the policy vias, comma-separated",
        nameList({ what: "policy" }),
      )
      .option(
        "--probe",
        "measure each downtime from dom0 (scripts/lab/downtime_probe.ts; implies --deno)",
      )
      .addOption(deno())
      .action((o) =>
        unlessUnavailable(async () => {
          const r = await runXenLab({
            via: o.via as XenMigrateVia[] | undefined ??
              (o.type === "pv"
                ? ["saverestore"]
                : name === "test"
                ? ["plain", "policy", "policy-resume"] // what the CI test runs
                : ["plain", "wrapper"]),
            type: o.type,
            sshCommand: o.sshCommand,
            codecs: o.codecs?.join(","),
            policies: o.policy,
            probe: o.probe,
            withDeno: o.deno || o.probe,
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
            r.migrations.every((m) =>
              m.ok && m.memoryIntact &&
              (m.via === "policy-resume"
                ? m.newDomid === m.oldDomid
                : m.oldGone)
            );
          if (!good) {
            for (
              const m of r.migrations.filter((m) => !m.ok || !m.memoryIntact)
            ) {
              console.error(`--- ${m.via} output ---\n${m.output}`);
            }
          }
          console.error(good ? "xen lab: PASS" : "xen lab: FAIL");
          return good ? 0 : 1;
        })
      );
  }
  return program;
}

if (import.meta.main) Deno.exit(await runCli(command, Deno.args));
