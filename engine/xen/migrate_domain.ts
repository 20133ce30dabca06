/**
 * Live-migrates a Xen domain with hakobu in `xl migrate`'s place: libxenguest's
 * save loop (`xc_domain_save`, through FFI in a Worker, `save.ts`) runs under
 * a TS plan that answers every `precopy_policy` call, so the policy
 * decides when Xen stops and copies; the stream goes to a stock
 * `xl migrate-receive` wrapped the way xl wraps it (`xl_protocol.ts`).
 *
 * ```text
 * this thread: xl header, libxl header ─┐
 * xc_domain_save (worker): libxc image ──┼─FIFO─▶ sh -c RECEIVER  (xl migrate-receive,
 * this thread: libxl END, "go" ──────────┘   ◀─stdout─            ssh HOST xl migrate-receive,
 *                                                                 or hakobu's Xen tunnel)
 * ```
 *
 * Deno has no raw fds, so the receiver's stdin is a FIFO: the worker opens
 * it with libc for libxc, this thread writes xl's framing before and after.
 * The handshake follows xl_migrate.c: banner, header + config, libxl
 * stream, "ready", rename ourselves away, "go", the receiver's report; then
 * the old domain is destroyed. (xl renames in-process after "ready"; here
 * `xl rename` is a subprocess, so it starts when the guest is suspended and
 * overlaps the stop-and-copy instead of adding to the downtime.) Before "go" every failure resumes the domain
 * at the source; a failure the receiver reports after "go" renames it back
 * and resumes it, as xl does.
 *
 * PV and PVH guests only: an HVM guest's device model state would need
 * libxl's EMULATOR records, which this sender does not write.
 *
 * @module
 */

import process from "node:process";
import { makeFifo } from "../../ffi/xen/_libc.ts";
import { HakobuError } from "../errors.ts";
import { PAGE_SIZE } from "../plan.ts";
import type { MigrationProgress } from "../precopy.ts";
import type { MigrationReport, RoundReport, StreamVerdict } from "../report.ts";
import { writeAll } from "../transport/write_all.ts";
import { resumeSuspendedDomain } from "./resume.ts";
import { xenRoundReports } from "./save_rounds.ts";
import {
  type PolicyCall,
  type SaveEvent,
  type SaveOptions,
  type SavePlan,
  type SaveResult,
  XenSaveWorker,
} from "./save.ts";
import { XlMessage, xlStreamPrefix, xlStreamSuffix } from "./xl_protocol.ts";

/** Something that runs the save loop into a FIFO (tests replace libxenguest). */
export interface DomainSaver {
  /** Saves `options.domid` into `options.fifoPath` (opened for writing, closed at the end). */
  save(
    options: SaveOptions & { readonly fifoPath: string },
  ): Promise<Pick<SaveResult, "rc" | "calls" | "events" | "writtenBytes">>;
}

/** Options of {@link migrateXenDomain}. */
export interface XenMigrateOptions {
  /** The domain: its name or id. */
  readonly domain: string | number;
  /** The plan whose `decide` answers libxc's `precopy_policy`. */
  readonly plan: SavePlan;
  /**
   * The receiver, a shell command that speaks `xl migrate-receive` on
   * stdin/stdout (default `"xl migrate-receive"`: this host, as
   * `xl migrate DOMU localhost`); e.g. `"ssh HOST xl migrate-receive"`.
   */
  readonly receiver?: string;
  /** Live pre-copy (default true); false suspends first and copies once. */
  readonly live?: boolean;
  /** The `xl` binary (default `"xl"`). */
  readonly xl?: string;
  /** How long the guest gets to suspend (default 60 s). */
  readonly suspendTimeoutMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
  /** Called with each answered policy call. */
  readonly onCall?: (call: PolicyCall) => void;
  /** Called with each live round once libxc has sent it, then with the stop-and-copy round. */
  readonly onRound?: (round: RoundReport) => void;
  /** Called at each policy call: the round libxc is about to send, then that it sent it. */
  readonly onProgress?: (progress: MigrationProgress) => void;
  /**
   * Aborting answers libxc's next policy call with ABORT: the migration
   * fails and the domain runs on at the source (a stop-and-copy under way
   * runs to its end).
   */
  readonly signal?: AbortSignal;
  /**
   * Checks what the destination got, once the receiver reports the domain
   * running (e.g. `ExecTunnel.verdict` when the receiver is hakobu's Xen
   * tunnel). Without it the report's `verification` is `"none"`: xl's own
   * stream went to the receiver and hakobu compared nothing.
   */
  readonly verify?: () => Promise<StreamVerdict>;
  /** @internal Replaces libxenguest (tests). */
  readonly saver?: DomainSaver;
  /** @internal Replaces {@link resumeSuspendedDomain} (tests). */
  readonly resume?: (domid: number) => boolean | Promise<boolean>;
}

/**
 * What {@link migrateXenDomain} measured: a {@link MigrationReport} (rounds
 * from libxc's policy calls, `save_rounds.ts`) with what only Xen knows.
 */
export interface XenMigrationReport extends MigrationReport {
  /** The domain id at the source (gone now). */
  readonly domid: number;
  /** The domain's name (the same at the destination). */
  readonly name: string;
  /** `c_info.type` of its config: "pv" or "pvh". */
  readonly type: string;
  /** The receiver command the stream went to. */
  readonly receiver: string;
  /** Every policy call, in order. */
  readonly calls: readonly PolicyCall[];
  /** Bytes of the libxc image (what the save loop's thread wrote, per the kernel's I/O accounting; null where `/proc/thread-self/io` is missing). */
  readonly imageBytes: number | null;
  /** All bytes sent to the receiver (xl and libxl framing included). */
  readonly streamBytes: number;
  /** Suspend request until Xen reported the guest suspended, in ms. */
  readonly suspendMs: number;
  /** ms from the start to each step (`banner`, `suspend-requested`, `suspended`, `saved`, `ready`, `go`, `report`, `destroyed`). */
  readonly timeline: Readonly<Record<string, number>>;
}

/** A migration failed; {@link resumed} says whether the domain runs on at the source. */
export class XenMigrateError extends HakobuError {
  /** Whether the domain was resumed (or never stopped) at the source. */
  readonly resumed: boolean;
  /**
   * Creates the error, saying whether the source domain runs on.
   *
   * @param message What failed and why.
   * @param resumed Whether the source domain runs on.
   * @param options Passed on to `Error` (e.g. `cause`).
   */
  constructor(message: string, resumed: boolean, options?: ErrorOptions) {
    super(message, options);
    this.resumed = resumed;
  }
}

function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** Reads exact byte counts from the receiver's stdout. */
class BackChannel {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf = new Uint8Array(0);

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** The next `n` bytes; `check` may reject a partial answer early. */
  async read(
    n: number,
    what: string,
    check: (partial: Uint8Array) => void = () => {},
  ): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      check(this.#buf);
      const { value, done } = await this.#reader.read();
      if (done) {
        throw new Error(
          `The receiver closed its output before ${what} (${this.#buf.length} of ${n} bytes came${
            this.#buf.length ? `: ${JSON.stringify(text(this.#buf))}` : ""
          })`,
        );
      }
      const next = new Uint8Array(this.#buf.length + value.length);
      next.set(this.#buf);
      next.set(value, this.#buf.length);
      this.#buf = next;
    }
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    check(out);
    return out;
  }

  /** Reads `message`, failing as soon as a byte differs (a receiver that prints something else may then wait forever). */
  async expect(message: Uint8Array, what: string): Promise<void> {
    await this.read(message.length, what, (got) => {
      const n = Math.min(got.length, message.length);
      for (let i = 0; i < n; i++) {
        if (got[i] !== message[i]) {
          throw new Error(
            `The receiver sent ${
              JSON.stringify(text(got.subarray(0, n)))
            } instead of ${what} (${
              JSON.stringify(text(message))
            }): is the receiver command an xl migrate-receive?`,
          );
        }
      }
    });
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

async function xlRun(xl: string, args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(xl, { args, stdin: "null" }).output();
  } catch (e) {
    throw new Error(
      `Cannot run "${xl} ${args.join(" ")}": ${
        e instanceof Error ? e.message : e
      } (hakobu xen migrate runs on a Xen dom0 with xl installed)`,
    );
  }
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `"${xl} ${args.join(" ")}" failed (exit ${out.code}): ${
        new TextDecoder().decode(out.stderr).trim() || stdout.trim()
      }`,
    );
  }
  return stdout;
}

/** The domain id of `domain` (a name or an id), through `xl domid`. */
async function resolveDomid(
  xl: string,
  domain: string | number,
): Promise<number> {
  const s = String(domain).trim();
  if (/^\d+$/.test(s)) return Number(s);
  const out = (await xlRun(xl, ["domid", s])).trim();
  if (!/^\d+$/.test(out)) {
    throw new Error(`"${xl} domid ${s}" printed "${out}", not a domain id`);
  }
  return Number(out);
}

/** The domain's libxl config, as `xl list -l` prints it (the JSON xl sends). */
async function domainConfig(
  xl: string,
  domid: number,
): Promise<Record<string, unknown>> {
  const out = await xlRun(xl, ["list", "-l", String(domid)]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch {
    throw new Error(
      `"${xl} list -l ${domid}" did not print JSON (got ${
        JSON.stringify(out.slice(0, 80))
      }): set output_format="json" in /etc/xen/xl.conf`,
    );
  }
  const entries = Array.isArray(parsed) ? parsed : [parsed];
  const mine = entries.find((e) =>
    e && typeof e === "object" && (e as { domid?: unknown }).domid === domid
  ) as { config?: unknown } | undefined;
  if (!mine || typeof mine.config !== "object" || mine.config === null) {
    throw new Error(
      `"${xl} list -l ${domid}" has no config for domain ${domid}`,
    );
  }
  return mine.config as Record<string, unknown>;
}

/**
 * Opens the FIFO for writing once the receiver's shell opened it for
 * reading; fails (and unblocks the pending open) if the receiver exits first.
 */
async function openSink(
  fifo: string,
  child: Deno.ChildProcess,
  receiver: string,
): Promise<Deno.FsFile> {
  const opening = Deno.open(fifo, { write: true });
  const first = await Promise.race([
    opening.then((file) => ({ file, status: null })),
    child.status.then((status) => ({ file: null, status })),
  ]);
  if (first.file) return first.file;
  // Nobody will read: be the reader so our open returns, then close both.
  const reader = await Deno.open(fifo, { read: true });
  (await opening).close();
  reader.close();
  throw new Error(
    `The receiver "${receiver}" exited (code ${first.status?.code}) before it read anything`,
  );
}

/**
 * Migrates one PV or PVH domain with libxenguest's save loop under `plan`.
 *
 * @example
 * ```ts
 * import { loadPolicy, migrateXenDomain } from "@hakobu/hakobu";
 *
 * // Needs a Xen dom0 (root, xl) and would migrate a real domain: the doc
 * // tests type-check this function and do not call it.
 * async function migrateVm1() {
 *   const plan = await loadPolicy("examples/policies/default.ts");
 *   const r = await migrateXenDomain({
 *     domain: "vm1",
 *     plan,
 *     receiver: "ssh host2 xl migrate-receive",
 *   });
 *   console.log(r.rounds.length, r.downtimeMs, r.outcome);
 * }
 * ```
 * @throws {XenMigrateError} with `resumed` saying whether the domain runs
 *   on at the source.
 */
export async function migrateXenDomain(
  options: XenMigrateOptions,
): Promise<XenMigrationReport> {
  const xl = options.xl ?? "xl";
  const log = options.log ?? (() => {});
  const startedAt = new Date().toISOString();
  const cpu0 = process.cpuUsage();
  const t0 = clock();
  /** When each step happened (ms on {@link clock}). */
  const at: Record<string, number> = {};
  const mark = (what: string, when = clock()) => {
    at[what] = when;
  };

  // 1. What to send, before anything is touched.
  let domid: number;
  let config: Record<string, unknown>;
  try {
    domid = await resolveDomid(xl, options.domain);
    config = await domainConfig(xl, domid);
  } catch (e) {
    throw new XenMigrateError(
      `Cannot migrate domain "${options.domain}": ${
        e instanceof Error ? e.message : e
      }`,
      true,
      { cause: e },
    );
  }
  const cInfo = (config.c_info ?? {}) as { name?: string; type?: string };
  const bInfo = (config.b_info ?? {}) as { max_memkb?: number };
  const name = cInfo.name ?? "";
  const type = cInfo.type ?? "pv";
  if (!name) {
    throw new XenMigrateError(
      `Cannot migrate domain ${domid}: its config has no c_info.name`,
      true,
    );
  }
  if (type === "hvm") {
    throw new XenMigrateError(
      `Cannot migrate domain ${domid} ("${name}"): it is HVM, and its device model's state needs libxl's EMULATOR records, which hakobu's Xen sender does not write; migrate PV or PVH guests, or use xl migrate (with hakobu's tunnel for the codecs)`,
      true,
    );
  }
  const receiver = options.receiver ?? "xl migrate-receive";
  log(
    `domain ${domid} ("${name}", ${type}, ${
      ((bInfo.max_memkb ?? 0) / 1024).toFixed(0)
    } MiB) → ${receiver}; policy "${options.plan.name}"`,
  );

  // 2. The receiver reads a FIFO as its stdin: libxc writes the image into
  // it directly (no copy through JS, which under load cost as much downtime
  // again as xl's own), and this thread writes xl's framing around it.
  const dir = await Deno.makeTempDir({ prefix: "hakobu-xen-" });
  const fifo = `${dir}/stream.fifo`;
  makeFifo(fifo);
  const child = new Deno.Command("sh", {
    args: ["-c", `exec 0<'${fifo}'\n${receiver}`],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const back = new BackChannel(child.stdout);
  let sink: Deno.FsFile | null = null;
  let streamBytes = 0;
  let imageBytes: number | null = null;
  const send = async (bytes: Uint8Array, what: string): Promise<void> => {
    try {
      await writeAll(sink!, bytes);
    } catch (e) {
      throw new Error(
        `Cannot send ${what} to the receiver: ${
          e instanceof Error ? e.message : e
        } (did it exit? its messages are above)`,
        { cause: e },
      );
    }
    streamBytes += bytes.length;
  };

  // Progress and finished live rounds as libxc's policy calls come.
  const seen: PolicyCall[] = [];
  let roundsOut = 0;
  const onCall = (call: PolicyCall): void => {
    seen.push(call);
    const ps = PAGE_SIZE;
    const after = call.stats.dirtyCount < 0;
    const round = after ? call.stats.iteration - 1 : call.stats.iteration;
    const pages = after
      ? seen.findLast((c) =>
        c.stats.dirtyCount >= 0 && c.stats.iteration === round
      )?.stats.dirtyCount ?? 0
      : call.stats.dirtyCount;
    if (call.decision !== "abort") {
      options.onProgress?.({
        round,
        final: false,
        pagesDone: after ? pages : 0,
        pagesTotal: pages,
        wireBytes: call.stats.totalWritten * ps,
        elapsedMs: call.at - t0,
        pageSize: ps,
        sendRate: call.roundStats?.sendRate ?? 0,
      });
    }
    if (after && options.onRound) {
      // A live round is complete once its after-send call came.
      const done = xenRoundReports(seen).filter((r) => !r.final);
      for (; roundsOut < done.length && roundsOut <= round; roundsOut++) {
        options.onRound(done[roundsOut]);
      }
    }
  };

  let renamed = false;
  // The rename away runs while libxc copies the last pages (the guest is
  // stopped then anyway), so its subprocess stays out of the downtime.
  let renaming: Promise<void> | null = null;
  const renameAway = (): Promise<void> =>
    renaming ??= xlRun(xl, ["rename", String(domid), `${name}--migratedaway`])
      .then(() => {
        renamed = true;
      });
  let wentGo = false;
  let reportStatus: number | null = null;
  let calls: readonly PolicyCall[] = [];
  let verdict: StreamVerdict | null = null;
  try {
    sink = await openSink(fifo, child, receiver);
    await back.expect(XlMessage.banner, "xl's banner");
    mark("banner");
    await send(xlStreamPrefix(JSON.stringify(config)), "xl's header");

    // 3. The save loop, writing into the receiver's stdin.
    const saver: DomainSaver = options.saver ?? new XenSaveWorker({
      plan: options.plan,
      memoryBytes: (bInfo.max_memkb ?? 0) * 1024,
      onCall: (call) => {
        onCall(call);
        options.onCall?.(call);
      },
      signal: options.signal,
    });
    // The saver opens the FIFO by its path. If the receiver has exited by
    // then, that open waits for a reader for ever (the header may still have
    // fitted the pipe, so no write failed yet): while the save runs after the
    // receiver's exit, briefly be the reader again and again, as openSink
    // does once, so the open returns and the saver's writes meet EPIPE.
    let saving = true;
    let unblocking: Promise<void> | null = null;
    child.status.then(() => {
      if (!saving) return;
      unblocking = (async () => {
        while (saving) {
          // Our own sink is a writer, so this open never waits.
          await Deno.open(fifo, { read: true }).then(
            (f) => f.close(),
            () => {},
          );
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
    });
    const saved = await saver.save({
      domid,
      fifoPath: fifo,
      live: options.live ?? true,
      suspendTimeoutMs: options.suspendTimeoutMs,
      onEvent: (e: SaveEvent) => {
        if (e.name !== "opened") mark(e.name, e.at);
        if (e.name === "suspend-requested") {
          log("suspending the guest");
          renameAway().catch(() => {}); // awaited (and its error seen) before "go"
        }
        if (e.name === "suspended") {
          const asked = at["suspend-requested"] ?? e.at;
          log(
            `guest suspended in ${Math.round(e.at - asked)} ms; stop-and-copy`,
          );
        }
      },
    }).finally(async () => {
      saving = false;
      await unblocking;
    });
    mark("saved");
    calls = saved.calls;
    imageBytes = saved.writtenBytes ?? null;
    if (imageBytes !== null) streamBytes += imageBytes;
    await send(xlStreamSuffix(), "libxl's END record");
    log(
      `stream sent: ${
        imageBytes ?? "?"
      } bytes of libxc image, ${streamBytes} in all`,
    );

    // 4. xl's closing handshake.
    await back.expect(XlMessage.ready, "the ready message");
    mark("ready");
    await renameAway();
    await send(XlMessage.go, "the go message");
    wentGo = true;
    mark("go");
    await back.expect(XlMessage.report, "the unpause report");
    const [status] = await back.read(1, "the unpause status");
    reportStatus = status;
    mark("report");
    if (status !== 0) {
      // The receiver destroyed its copy and gives us permission to resume.
      await back.expect(XlMessage.go, "permission to resume").catch(() => {});
      throw new Error(
        `The receiver reports that starting the domain failed (status ${status})`,
      );
    }
    await xlRun(xl, ["destroy", String(domid)]);
    mark("destroyed");
    sink.close();
    sink = null;
    await child.status;
    if (options.verify) {
      verdict = await options.verify().catch((e): StreamVerdict => ({
        verified: false,
        sourceDigest: "",
        destinationDigest: "",
        detail: `the stream check failed: ${
          e instanceof Error ? e.message : String(e)
        }`,
      }));
      mark("verified");
    }
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    try {
      sink?.close();
    } catch {
      // already closed
    }
    back.cancel();
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status.catch(() => {});
    let resumed = false;
    let resumeNote = "";
    if (wentGo && reportStatus === null) {
      // After "go" without a report, both copies may exist: say so, touch nothing.
      throw new XenMigrateError(
        `Migration of domain ${domid} ("${name}") failed during the final handshake: ${why}. ` +
          `Check both ends for running instances before resuming at most one (the source copy is named "${name}--migratedaway")`,
        false,
        { cause: e },
      );
    }
    try {
      await (renaming as Promise<void> | null)?.catch(() => {});
      if (renamed) await xlRun(xl, ["rename", String(domid), name]);
      const wasSuspended = await (options.resume ?? resumeSuspendedDomain)(
        domid,
      );
      resumed = true;
      resumeNote = wasSuspended
        ? "resumed at the source"
        : "it was not suspended and runs on at the source";
    } catch (r) {
      resumeNote = `resuming it failed too: ${
        r instanceof Error ? r.message : r
      }`;
    }
    throw new XenMigrateError(
      `Migration of domain ${domid} ("${name}") failed: ${why}; ${resumeNote}`,
      resumed,
      { cause: e },
    );
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const requested = at["suspend-requested"];
  const suspended = at["suspended"];
  const reportAt = at.report ?? clock();
  const timeline = Object.fromEntries(
    Object.entries(at).map(([k, v]) => [k, Math.round(v - t0)]),
  );
  const downtimeMs = requested === undefined ? 0 : reportAt - requested;
  const suspendMs = requested === undefined || suspended === undefined
    ? 0
    : suspended - requested;
  const ps = PAGE_SIZE;
  const rounds = xenRoundReports(calls, {
    pageSize: ps,
    imageBytes,
    suspendRequestedAt: requested,
    downtimeMs,
  });
  // What onRound has not had yet: live rounds the calls did not close, and
  // the stop-and-copy round.
  for (const r of rounds.slice(roundsOut)) options.onRound?.(r);
  const rawBytes = rounds.reduce((n, r) => n + r.rawBytes, 0);
  const pagesSent = rounds.reduce((n, r) => n + r.pagesSent, 0);
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const memoryBytes = (bInfo.max_memkb ?? 0) * 1024;
  const verified = verdict?.verified === true;
  const running = `the receiver reports domain "${name}" running`;
  return {
    verified,
    verification: verdict ? "stream-digest" : "none",
    aborted: false,
    outcome: verdict === null
      ? `completed: ${running}; not verified: xl's stream went to the receiver as it is, hakobu compared nothing`
      : verified
      ? `completed and verified: ${verdict.detail}; ${running}`
      : `completed but NOT verified: ${verdict.detail}; ${running}`,
    policy: options.plan.name,
    vm: `xen:${name} (domain ${domid}, ${type}, ${
      (memoryBytes / 2 ** 20).toFixed(0)
    } MiB)`,
    memoryBytes,
    pageSize: ps,
    bandwidth: null,
    startedAt,
    totalTimeMs: (at.verified ?? reportAt) - t0,
    downtimeMs,
    verifyMs: at.verified === undefined ? 0 : at.verified - reportAt,
    wireBytes: streamBytes,
    rawBytes,
    compressionRatio: streamBytes > 0 ? rawBytes / streamBytes : 0,
    pagesSent,
    sourceCpuSeconds: cpuSeconds,
    sourceCpuSecondsPerGiB: rawBytes > 0
      ? cpuSeconds / (rawBytes / 2 ** 30)
      : 0,
    digest: verdict?.sourceDigest ?? "",
    channels: 1,
    gpu: {
      used: false,
      adapter: null,
      pagesEncoded: 0,
      note: "libxc wrote the stream itself; no hakobu codec ran on the source",
    },
    rounds,
    backend: "xen",
    notes: {
      xen: `domain ${domid} ("${name}", ${type}) suspended in ${
        Math.round(suspendMs)
      } ms; ${
        imageBytes === null ? "an unmeasured" : `a ${imageBytes}-byte`
      } libxc image, ${streamBytes} bytes to the receiver`,
    },
    domid,
    name,
    type,
    receiver,
    calls,
    imageBytes,
    streamBytes,
    suspendMs: Math.round(suspendMs),
    timeline,
  };
}
