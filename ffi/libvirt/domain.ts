/**
 * {@link LibvirtDomain}: one domain (`virDomainPtr`) on a connection: its
 * info, state, XML and stats, its job's stats, the migration knobs that act
 * while a migration runs (max downtime, max speed, abort), the migration
 * itself ({@link LibvirtDomain.migrate}, on a Worker so the event loop keeps
 * running), and start/stop/define for labs.
 *
 * Progress of a running migration is read by polling
 * `virDomainGetJobStats` (what `virsh migrate --verbose` does too), not
 * from events: libvirt delivers events only from an event loop that some
 * thread must keep running (`virEventRegisterDefaultImpl` before the first
 * connection, then `virEventRunDefaultImpl` forever), and each event would
 * arrive on that thread through a callback into JS. Polling needs neither,
 * gives the same counters (iteration, remaining, dirty rate) at the rate the
 * steerer asks, and is what a policy decides on anyway.
 *
 * No call here falls back to `virsh`: the C API covers everything the
 * binding offers.
 *
 * @module
 */

import { type BlockingRequest, replyValue, runBlocking } from "./_blocking.ts";
import { domainName, domainUuid, takeStatsRecords } from "./_pointers.ts";
import { takeCString } from "./_libc.ts";
import {
  type DomainStateName,
  domainStateName,
  ErrorCode,
  JobStatsFlags,
  MemoryFlags,
  MigrateFlags,
  MigrateMaxSpeedFlags,
} from "./constants.ts";
import { DEFAULT_DOMAIN_STATS, type DomainStats } from "./domain_stats.ts";
import {
  type LibvirtCallContext,
  LibvirtError,
  libvirtError,
  unwrap,
} from "./errors.ts";
import { decodeJobStats, type JobStats } from "./job_stats.ts";
import { libvirt, VIR_DOMAIN_INFO } from "./libvirt.ts";
import { type MigrateParams, migrateTypedParams } from "./migrate_params.ts";
import { decodeTypedParams } from "./typed_params.ts";

/** `virDomainGetInfo`, sizes in bytes. */
export interface DomainInfo {
  /** `virDomainState` (`DomainState`). */
  readonly state: number;
  /** The state's name, e.g. `"running"`. */
  readonly stateName: DomainStateName | "unknown";
  /** Maximum memory (`maxMem` KiB × 1024). */
  readonly maxMemoryBytes: number;
  /** Current memory (`memory` KiB × 1024). */
  readonly memoryBytes: number;
  /** Virtual CPUs. */
  readonly vcpus: number;
  /** CPU time used (ns). */
  readonly cpuTimeNs: bigint;
}

/** `virDomainGetState`. */
export interface DomainStateInfo {
  /** `virDomainState` (`DomainState`). */
  readonly state: number;
  /** The state's name. */
  readonly stateName: DomainStateName | "unknown";
  /** The reason (an enum per state, e.g. `VIR_DOMAIN_RUNNING_MIGRATED` = 2). */
  readonly reason: number;
}

/** Options of {@link LibvirtDomain.jobStats}. */
export interface JobStatsOptions {
  /** The last completed job's stats instead of the running one's (`VIR_DOMAIN_JOB_STATS_COMPLETED`). */
  readonly completed?: boolean;
  /** With `completed`: leave them for a later read (`VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED`). */
  readonly keepCompleted?: boolean;
}

/** Most bytes {@link LibvirtDomain.memoryPeek} reads per call (`REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX` of libvirt's remote protocol). */
export const MEMORY_PEEK_MAX_BYTES = 65536;

/** Options of {@link LibvirtDomain.migrate}. */
export interface MigrateOptions {
  /** `virDomainMigrateFlags` ({@link MigrateFlags}); default `LIVE | PEER2PEER`. */
  readonly flags?: number;
  /** Typed parameters (migrate URI, listen address, bandwidth, ...). */
  readonly params?: MigrateParams;
  /**
   * Poll the job's stats while the migration runs and hand each to
   * `onStats` (on the main thread). A poll that fails (no job yet, or over
   * already) or an `onStats` that throws goes to `onError`; without one,
   * both are skipped and the migration goes on.
   */
  readonly progress?: {
    /** Poll period, ms (default 500). */
    readonly intervalMs?: number;
    /** Called with each poll's stats. */
    readonly onStats: (stats: JobStats) => void;
    /**
     * Called with what a poll (`during: "poll"`, a {@link LibvirtError}) or
     * `onStats` (`during: "callback"`) threw. Whoever steers the migration
     * through `onStats` decides here whether to abort it.
     */
    readonly onError?: (error: unknown, during: "poll" | "callback") => void;
  };
  /** Aborting it aborts the migration's job (`virDomainAbortJob`, retried until the job exists). */
  readonly signal?: AbortSignal;
}

const registry = new FinalizationRegistry<bigint>((addr) => {
  // A domain handle dropped without free(): release libvirt's reference.
  libvirt().virDomainFree(Deno.UnsafePointer.create(addr));
});

/**
 * A domain on an open connection. Free it with {@link free} (or `using`);
 * a handle dropped without it is freed when garbage-collected.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DomainState, LibvirtConnection } from "./mod.ts";
 *
 * using conn = LibvirtConnection.open("test:///default");
 * using dom = conn.lookupDomain("test"); // the test driver's running domain
 * assert.equal(dom.name, "test");
 * assert.equal(dom.state().state, DomainState.running);
 * assert.equal(dom.info().vcpus, 2);
 * assert.match(dom.xml(), /<name>test<\/name>/);
 * ```
 */
export class LibvirtDomain implements Disposable {
  #dom: Deno.PointerObject | null;
  /** The domain's name. */
  readonly name: string;
  /** The domain's UUID, e.g. `"6695eb01-f6a4-8304-79aa-97f2502e193f"`. */
  readonly uuid: string;
  /** The URI of the connection it was found on (for messages). */
  readonly uri: string;

  /** @internal Use `LibvirtConnection.lookupDomain` and co. */
  constructor(dom: Deno.PointerObject, uri: string) {
    this.#dom = dom;
    this.uri = uri;
    this.name = domainName(dom);
    this.uuid = domainUuid(dom);
    registry.register(this, BigInt(Deno.UnsafePointer.value(dom)), this);
  }

  /** The raw `virDomainPtr`. @throws {RangeError} once freed. */
  get handle(): Deno.PointerObject {
    if (!this.#dom) {
      throw new RangeError(
        `The handle of domain "${this.name}" on "${this.uri}" was freed`,
      );
    }
    return this.#dom;
  }

  #ctx(call: string, what: string): LibvirtCallContext {
    return { call, what, uri: this.uri, domainName: this.name };
  }

  /** The hypervisor's id of a running domain; `undefined` when it is not running. */
  id(): number | undefined {
    const id = libvirt().virDomainGetID(this.handle);
    return id === 0xffffffff ? undefined : id;
  }

  /** Whether it runs. @throws {LibvirtError} */
  isActive(): boolean {
    return unwrap(
      libvirt().virDomainIsActive(this.handle),
      this.#ctx(
        "virDomainIsActive",
        `Cannot tell whether domain "${this.name}" runs`,
      ),
    ) === 1;
  }

  /** Whether it has a persistent definition. @throws {LibvirtError} */
  isPersistent(): boolean {
    return unwrap(
      libvirt().virDomainIsPersistent(this.handle),
      this.#ctx(
        "virDomainIsPersistent",
        `Cannot tell whether domain "${this.name}" is persistent`,
      ),
    ) === 1;
  }

  /** `virDomainGetInfo`. @throws {LibvirtError} */
  info(): DomainInfo {
    const buf = new Uint8Array(VIR_DOMAIN_INFO.size);
    unwrap(
      libvirt().virDomainGetInfo(this.handle, buf),
      this.#ctx(
        "virDomainGetInfo",
        `Cannot get information on domain "${this.name}"`,
      ),
    );
    const v = new DataView(buf.buffer);
    const state = v.getUint8(VIR_DOMAIN_INFO.state);
    return {
      state,
      stateName: domainStateName(state),
      maxMemoryBytes: Number(v.getBigUint64(VIR_DOMAIN_INFO.maxMem, true)) *
        1024,
      memoryBytes: Number(v.getBigUint64(VIR_DOMAIN_INFO.memory, true)) * 1024,
      vcpus: v.getUint16(VIR_DOMAIN_INFO.nrVirtCpu, true),
      cpuTimeNs: v.getBigUint64(VIR_DOMAIN_INFO.cpuTime, true),
    };
  }

  /** `virDomainGetState`. @throws {LibvirtError} */
  state(): DomainStateInfo {
    const st = new Int32Array(2);
    const b = new Uint8Array(st.buffer);
    unwrap(
      libvirt().virDomainGetState(
        this.handle,
        b.subarray(0, 4),
        b.subarray(4),
        0,
      ),
      this.#ctx(
        "virDomainGetState",
        `Cannot get the state of domain "${this.name}"`,
      ),
    );
    return { state: st[0], stateName: domainStateName(st[0]), reason: st[1] };
  }

  /** `virDomainGetXMLDesc` (flags: `VIR_DOMAIN_XML_*`). @throws {LibvirtError} */
  xml(flags = 0): string {
    const p = libvirt().virDomainGetXMLDesc(this.handle, flags);
    if (p === null) {
      throw libvirtError(
        this.#ctx(
          "virDomainGetXMLDesc",
          `Cannot get the XML of domain "${this.name}"`,
        ),
      );
    }
    return takeCString(p) ?? "";
  }

  /**
   * This domain's stats (`virDomainListGetStats`); `types` is an OR of
   * `DomainStatsTypes` (groups the driver lacks are left out).
   *
   * @throws {LibvirtError}
   */
  stats(types: number = DEFAULT_DOMAIN_STATS): DomainStats {
    const doms = new BigUint64Array([
      BigInt(Deno.UnsafePointer.value(this.handle)),
      0n,
    ]);
    const ret = new BigUint64Array(1);
    const ctx = this.#ctx(
      "virDomainListGetStats",
      `Cannot get the stats of domain "${this.name}"`,
    );
    unwrap(
      libvirt().virDomainListGetStats(
        new Uint8Array(doms.buffer),
        types,
        new Uint8Array(ret.buffer),
        0,
      ),
      ctx,
    );
    const list = Deno.UnsafePointer.create(ret[0]);
    const all = list === null ? [] : takeStatsRecords(list);
    if (all.length !== 1) {
      throw new LibvirtError(ctx, {
        code: 0,
        errorDomain: 0,
        level: 2,
        message: `expected one stats record, got ${all.length}`,
      });
    }
    return all[0];
  }

  /**
   * `virDomainGetJobStats`: the running job's (or, with `completed`, the
   * last finished job's) stats. With no job, `typeName` is `"none"`.
   *
   * @throws {LibvirtError} e.g. `NO_SUPPORT` on drivers without job stats
   *   (the test driver).
   */
  jobStats(options: JobStatsOptions = {}): JobStats {
    const type = new Int32Array(1);
    const params = new BigUint64Array(1);
    const n = new Int32Array(1);
    const flags = (options.completed ? JobStatsFlags.completed : 0) |
      (options.keepCompleted ? JobStatsFlags.keepCompleted : 0);
    unwrap(
      libvirt().virDomainGetJobStats(
        this.handle,
        new Uint8Array(type.buffer),
        new Uint8Array(params.buffer),
        new Uint8Array(n.buffer),
        flags,
      ),
      this.#ctx(
        "virDomainGetJobStats",
        `Cannot get the job stats of domain "${this.name}"`,
      ),
    );
    const p = Deno.UnsafePointer.create(params[0]);
    try {
      return decodeJobStats(type[0], decodeTypedParams(p, n[0]));
    } finally {
      if (p !== null) libvirt().virTypedParamsFree(p, n[0]);
    }
  }

  /**
   * The longest pause the migration may take at switchover
   * (`virDomainMigrateSetMaxDowntime`, ms); raising it while the migration
   * runs lets QEMU switch over sooner. @throws {LibvirtError}
   */
  setMaxDowntime(ms: number): void {
    unwrap(
      libvirt().virDomainMigrateSetMaxDowntime(this.handle, BigInt(ms), 0),
      this.#ctx(
        "virDomainMigrateSetMaxDowntime",
        `Cannot set the max downtime of domain "${this.name}" to ${ms} ms`,
      ),
    );
  }

  /** `virDomainMigrateGetMaxDowntime` (ms). @throws {LibvirtError} */
  maxDowntime(): number {
    const out = new BigUint64Array(1);
    unwrap(
      libvirt().virDomainMigrateGetMaxDowntime(
        this.handle,
        new Uint8Array(out.buffer),
        0,
      ),
      this.#ctx(
        "virDomainMigrateGetMaxDowntime",
        `Cannot get the max downtime of domain "${this.name}"`,
      ),
    );
    return Number(out[0]);
  }

  /**
   * The migration's bandwidth cap (`virDomainMigrateSetMaxSpeed`, MiB/s),
   * also while it runs. @throws {LibvirtError}
   */
  setMaxSpeed(
    mibPerSecond: number,
    options: { postcopy?: boolean } = {},
  ): void {
    unwrap(
      libvirt().virDomainMigrateSetMaxSpeed(
        this.handle,
        BigInt(mibPerSecond),
        options.postcopy ? MigrateMaxSpeedFlags.POSTCOPY : 0,
      ),
      this.#ctx(
        "virDomainMigrateSetMaxSpeed",
        `Cannot set the migration speed of domain "${this.name}" to ${mibPerSecond} MiB/s`,
      ),
    );
  }

  /**
   * `virDomainMigrateGetMaxSpeed` (MiB/s); QEMU 7.2 reports 8796093022207
   * (2^43 - 1: no limit) until one is set. @throws {LibvirtError}
   */
  maxSpeed(options: { postcopy?: boolean } = {}): number {
    const out = new BigUint64Array(1);
    unwrap(
      libvirt().virDomainMigrateGetMaxSpeed(
        this.handle,
        new Uint8Array(out.buffer),
        options.postcopy ? MigrateMaxSpeedFlags.POSTCOPY : 0,
      ),
      this.#ctx(
        "virDomainMigrateGetMaxSpeed",
        `Cannot get the migration speed of domain "${this.name}"`,
      ),
    );
    return Number(out[0]);
  }

  /**
   * Aborts the domain's running job (`virDomainAbortJob`): a migration
   * stops, the domain keeps running on the source, and {@link migrate}
   * rejects with `OPERATION_ABORTED`. @throws {LibvirtError}
   */
  abortJob(): void {
    unwrap(
      libvirt().virDomainAbortJob(this.handle),
      this.#ctx(
        "virDomainAbortJob",
        `Cannot abort the job of domain "${this.name}"`,
      ),
    );
  }

  /**
   * Reads `size` bytes of the guest's memory at guest-physical address
   * `start` (`virDomainMemoryPeek` with `VIR_MEMORY_PHYSICAL`; QEMU saves
   * them with `pmemsave` into a file libvirt reads back). The guest keeps
   * running; what it writes meanwhile may or may not show. libvirt's remote
   * protocol carries at most {@link MEMORY_PEEK_MAX_BYTES} per call.
   *
   * @throws {RangeError} for a size that is not a whole number from 1 to
   *   {@link MEMORY_PEEK_MAX_BYTES}, or a negative start.
   * @throws {LibvirtError} e.g. `OPERATION_INVALID` (the domain is not
   *   running), `NO_SUPPORT` (a driver that cannot read guest memory; the
   *   test driver can: it answers each address's low byte).
   */
  memoryPeek(start: number, size: number): Uint8Array<ArrayBuffer> {
    if (!Number.isInteger(size) || size < 1 || size > MEMORY_PEEK_MAX_BYTES) {
      throw new RangeError(
        `Cannot read ${size} bytes of domain "${this.name}"'s memory at once: libvirt's remote protocol carries 1 to ${MEMORY_PEEK_MAX_BYTES} bytes per call`,
      );
    }
    if (!Number.isSafeInteger(start) || start < 0) {
      throw new RangeError(
        `Cannot read domain "${this.name}"'s memory at ${start}: expected a guest-physical address ≥ 0`,
      );
    }
    const out = new Uint8Array(size);
    unwrap(
      libvirt().virDomainMemoryPeek(
        this.handle,
        BigInt(start),
        BigInt(size),
        out,
        MemoryFlags.PHYSICAL,
      ),
      this.#ctx(
        "virDomainMemoryPeek",
        `Cannot read ${size} bytes of domain "${this.name}"'s memory at 0x${
          start.toString(16)
        }`,
      ),
    );
    return out;
  }

  /**
   * {@link abortJob} on a Worker's thread: libvirt can hold an abort back
   * until a nested job of the migration ends (seconds), and a call that
   * waits on the main thread stops every timer, the job-stats polls
   * included. Resolves once libvirt has taken the abort.
   *
   * @throws {LibvirtError} (as a rejection) e.g. `OPERATION_INVALID` when
   *   no job runs.
   */
  abortJobAsync(): Promise<void> {
    return this.#onWorker(
      (dom) => ({ kind: "abortJob", dom }),
      this.#ctx(
        "virDomainAbortJob",
        `Cannot abort the job of domain "${this.name}"`,
      ),
    );
  }

  /**
   * {@link setMaxDowntime} on a Worker's thread, so a migration's job lock
   * held by libvirt never blocks the event loop (see {@link abortJobAsync}).
   *
   * @throws {LibvirtError} (as a rejection)
   */
  setMaxDowntimeAsync(ms: number): Promise<void> {
    return this.#onWorker(
      (dom) => ({ kind: "setMaxDowntime", dom, ms }),
      this.#ctx(
        "virDomainMigrateSetMaxDowntime",
        `Cannot set the max downtime of domain "${this.name}" to ${ms} ms`,
      ),
    );
  }

  /** Runs one domain call on a Worker, holding a reference on the domain meanwhile. */
  async #onWorker(
    request: (dom: bigint) => BlockingRequest,
    ctx: LibvirtCallContext,
  ): Promise<void> {
    const dom = this.handle;
    unwrap(libvirt().virDomainRef(dom), { ...ctx, call: "virDomainRef" });
    try {
      const reply = await runBlocking(
        request(BigInt(Deno.UnsafePointer.value(dom))),
      );
      replyValue(reply, ctx);
    } finally {
      libvirt().virDomainFree(dom);
    }
  }

  /**
   * Starts measuring how fast the guest dirties its memory
   * (`virDomainStartDirtyRateCalc`, what `virsh domdirtyrate-calc` runs):
   * QEMU samples for `seconds`, in the background; the result then shows in
   * the domain's stats (`DomainStatsTypes.dirtyrate`:
   * `dirtyRateStatus === DirtyRateStatus.measured`,
   * `dirtyRateBytesPerSecond`). `flags` from `DirtyRateCalcFlags` (default
   * page sampling).
   *
   * @throws {LibvirtError} e.g. `NO_SUPPORT` on drivers that cannot measure
   *   (the test driver), `OPERATION_INVALID` when the domain is not running.
   */
  startDirtyRateCalc(seconds: number, flags = 0): void {
    unwrap(
      libvirt().virDomainStartDirtyRateCalc(this.handle, seconds, flags),
      this.#ctx(
        "virDomainStartDirtyRateCalc",
        `Cannot start measuring the dirty rate of domain "${this.name}" over ${seconds} s`,
      ),
    );
  }

  /**
   * Migrates the domain (`virDomainMigrateToURI3`) from a Worker thread, so
   * the event loop keeps running: meanwhile {@link jobStats},
   * {@link setMaxDowntime}, {@link setMaxSpeed} and {@link abortJob} work
   * on this handle (prefer {@link setMaxDowntimeAsync} and
   * {@link abortJobAsync}: libvirt can hold those back behind the
   * migration's nested jobs, for seconds, and a call that waits on the
   * event loop's thread stops every timer). With `PEER2PEER` (the default) `dconnuri` is the
   * destination's libvirt URI as the source daemon sees it, e.g.
   * `qemu+tcp://10.0.0.2/system`; without it, pass `null` and a
   * `params.migrateUri` (drivers with direct migration only).
   *
   * @example
   * ```ts
   * import { LibvirtConnection, MigrateFlags } from "./mod.ts";
   *
   * // Needs two libvirt daemons (see scripts/lab): defined, not run here.
   * async function move(): Promise<void> {
   *   using src = LibvirtConnection.open("qemu+tcp://127.0.0.1:16501/system");
   *   using dom = src.lookupDomain("guest");
   *   const migration = dom.migrate("qemu+tcp://127.0.0.1:16502/system", {
   *     flags: MigrateFlags.LIVE | MigrateFlags.PEER2PEER | MigrateFlags.PERSIST_DEST,
   *     params: { bandwidthMiBs: 200 },
   *     progress: { intervalMs: 250, onStats: (s) => console.log(s.memoryRemaining) },
   *   });
   *   await dom.setMaxDowntimeAsync(300); // while it runs, off the event loop
   *   await migration;
   * }
   * void move;
   * ```
   * @throws {LibvirtError} (as a rejection) with libvirt's message when the
   *   migration fails or is aborted.
   */
  async migrate(
    dconnuri: string | null,
    options: MigrateOptions = {},
  ): Promise<void> {
    const dom = this.handle;
    const ctx = this.#ctx(
      "virDomainMigrateToURI3",
      `Cannot migrate domain "${this.name}" to ${
        dconnuri === null ? "its migrate URI" : `"${dconnuri}"`
      }`,
    );
    // Hold a reference while the Worker uses the pointer, whatever happens to this handle.
    unwrap(libvirt().virDomainRef(dom), {
      ...ctx,
      call: "virDomainRef",
    });
    let done = false;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const onAbort = () => {
      const tryAbort = () => {
        if (done) return;
        this.abortJobAsync().catch((e) => {
          // No job yet (the migration is still starting): try again shortly.
          if (
            !done && e instanceof LibvirtError &&
            e.code === ErrorCode.OPERATION_INVALID
          ) {
            timers.push(setTimeout(tryAbort, 100));
          }
        });
      };
      tryAbort();
    };
    if (options.signal?.aborted) {
      libvirt().virDomainFree(dom);
      throw new LibvirtError(ctx, {
        code: ErrorCode.OPERATION_ABORTED,
        errorDomain: 0,
        level: 2,
        message: "aborted before it started",
      });
    }
    options.signal?.addEventListener("abort", onAbort, { once: true });
    if (options.progress) {
      const { onStats, onError, intervalMs = 500 } = options.progress;
      // An onError that throws itself is ignored: a poll must never stop
      // the timer that makes the next one.
      const report = (e: unknown, during: "poll" | "callback") => {
        try {
          onError?.(e, during);
        } catch { /* see above */ }
      };
      timers.push(setInterval(() => {
        if (done) return;
        let stats: JobStats;
        try {
          stats = this.jobStats();
        } catch (e) {
          report(e, "poll");
          return;
        }
        try {
          onStats(stats);
        } catch (e) {
          report(e, "callback");
        }
      }, intervalMs));
    }
    try {
      const reply = await runBlocking({
        kind: "migrate",
        dom: BigInt(Deno.UnsafePointer.value(dom)),
        dconnuri,
        params: migrateTypedParams(options.params ?? {}),
        flags: options.flags ?? (MigrateFlags.LIVE | MigrateFlags.PEER2PEER),
      });
      replyValue(reply, ctx);
    } finally {
      done = true;
      for (const t of timers) clearTimeout(t);
      options.signal?.removeEventListener("abort", onAbort);
      libvirt().virDomainFree(dom);
    }
  }

  /** Starts a defined domain (`virDomainCreate`). @throws {LibvirtError} */
  create(): void {
    unwrap(
      libvirt().virDomainCreate(this.handle),
      this.#ctx("virDomainCreate", `Cannot start domain "${this.name}"`),
    );
  }

  /** Stops it at once, like pulling the plug (`virDomainDestroy`). @throws {LibvirtError} */
  destroy(): void {
    unwrap(
      libvirt().virDomainDestroy(this.handle),
      this.#ctx("virDomainDestroy", `Cannot destroy domain "${this.name}"`),
    );
  }

  /** Removes its persistent definition (`virDomainUndefine`). @throws {LibvirtError} */
  undefine(): void {
    unwrap(
      libvirt().virDomainUndefine(this.handle),
      this.#ctx("virDomainUndefine", `Cannot undefine domain "${this.name}"`),
    );
  }

  /** Releases the handle (`virDomainFree`; the domain itself is untouched); idempotent. */
  free(): void {
    if (!this.#dom) return;
    const dom = this.#dom;
    this.#dom = null;
    registry.unregister(this);
    libvirt().virDomainFree(dom);
  }

  /** {@link free}. */
  [Symbol.dispose](): void {
    this.free();
  }
}
