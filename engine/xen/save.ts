/**
 * Drives libxenguest's save loop (`xc_domain_save`) with a TS {@link Plan}
 * deciding each pre-copy round, through `struct save_callbacks`'
 * `precopy_policy`.
 *
 * `xc_domain_save` blocks until the migration ends and calls the policy on
 * its own thread, so it runs in a Worker (`_save_worker.ts`): the worker's
 * thread sits in C, the `Deno.UnsafeCallback` runs re-entrantly on it and
 * waits on shared memory while this (main) thread asks the plan. The main
 * thread stays free for the tunnel, reports and the UI.
 *
 * Mapping: libxc calls the policy twice per iteration: once with the
 * dirty count from the last CLEAN (`dirty_count >= 0`): the steering helper
 * (`../steering.ts`) builds the round's stats, asks the plan and applies
 * `maxRounds` (continue → CONTINUE_PRECOPY, switchover → STOP_AND_COPY,
 * abort → ABORT); and once after sending with `dirty_count = -1`
 * (answered CONTINUE_PRECOPY, or STOP_AND_COPY once the steering says
 * `iteration` rounds reached `maxRounds`).
 *
 * @module
 */

import { type Decision, PAGE_SIZE, type RoundStats } from "../plan.ts";
import { Steering, type SteeringPlan } from "../steering.ts";
import type { PrecopyStats } from "../../ffi/xen/xenguest.ts";
import { XcFlags, XgsPolicy } from "../../ffi/xen/xenguest.ts";
import { XenError } from "../../ffi/xen/errors.ts";
import { Ctl, SAB_BYTES } from "./_save_shared.ts";

/** The part of a plan the save loop consults (`decide`, `maxRounds`, `name`, `reason`). */
export type SavePlan = SteeringPlan;

/** Options of {@link XenSaveWorker}. */
export interface XenSaveWorkerOptions {
  /** The plan that decides each round. */
  readonly plan: SavePlan;
  /** Guest memory in bytes, for {@link RoundStats.memoryBytes} (default 0: unknown). */
  readonly memoryBytes?: number;
  /** Page size (default 4096). */
  readonly pageSize?: number;
  /** Called with each answered policy call, as it happens (progress). */
  readonly onCall?: (call: PolicyCall) => void;
  /**
   * Aborting answers libxc's next policy call with ABORT (the save fails
   * and the domain runs on); a stop-and-copy under way runs to its end.
   */
  readonly signal?: AbortSignal;
}

/** One answer the policy gave, for reports and tests. */
export interface PolicyCall {
  /** What libxc passed. */
  readonly stats: PrecopyStats;
  /** What the plan said (`null` for the `dirty_count = -1` calls). */
  readonly decision: Decision | null;
  /** The `XGS_POLICY_*` returned to libxc. */
  readonly answer: number;
  /** When libxc asked, in ms since the epoch (`performance.timeOrigin + performance.now()`). */
  readonly at: number;
  /** Why: the steering's reason (an after-send call has one only when it stops the rounds). */
  readonly reason?: string;
  /** The statistics the plan was asked with (calls with a dirty count). */
  readonly roundStats?: RoundStats;
}

/**
 * Maps one `precopy_policy` call to an `XGS_POLICY_*` answer with the plan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { policy, PrecopyPolicy, when } from "@hakobu/hakobu";
 *
 * const plan = policy("p").switchover(when.rounds(2)).compile();
 * const p = new PrecopyPolicy({ plan, pageSize: 4096 });
 * // libxc asks with each CLEAN's dirty count: 0 is XGS_POLICY_CONTINUE_PRECOPY,
 * // 1 XGS_POLICY_STOP_AND_COPY.
 * assert.equal(
 *   p.answer({ iteration: 0, totalWritten: 0, dirtyCount: 262144 }),
 *   0,
 * );
 * assert.equal(
 *   p.answer({ iteration: 1, totalWritten: 262144, dirtyCount: 100 }),
 *   1, // two rounds have finished: switch over
 * );
 * ```
 */
export class PrecopyPolicy {
  readonly #steering: Steering;
  readonly #pageSize: number;
  readonly #onCall: (call: PolicyCall) => void;
  readonly #signal: AbortSignal | undefined;
  /** Every call so far. */
  readonly calls: PolicyCall[] = [];

  /**
   * Creates a policy that has answered no call yet.
   *
   * @param options The plan and geometry.
   */
  constructor(options: XenSaveWorkerOptions) {
    this.#pageSize = options.pageSize ?? PAGE_SIZE;
    this.#steering = new Steering(options.plan, {
      memoryBytes: options.memoryBytes ?? 0,
      pageSize: this.#pageSize,
    });
    this.#onCall = options.onCall ?? (() => {});
    this.#signal = options.signal;
  }

  /** The `XGS_POLICY_*` answer for `stats`. */
  answer(stats: PrecopyStats): number {
    const ps = this.#pageSize;
    const at = performance.timeOrigin + performance.now();
    if (this.#signal?.aborted) {
      this.#record({
        stats,
        decision: stats.dirtyCount < 0 ? null : "abort",
        answer: XgsPolicy.ABORT,
        at,
        reason: `abort: cancelled: ${
          String(this.#signal.reason ?? "by the user")
        }`,
      });
      return XgsPolicy.ABORT;
    }
    if (stats.dirtyCount < 0) {
      // After a send, before the CLEAN: stop only at the round limit (the
      // decision before this round already applied it; this is libxc's own
      // second chance to ask).
      const limit = this.#steering.roundLimit(stats.iteration);
      const answer = limit === null
        ? XgsPolicy.CONTINUE_PRECOPY
        : XgsPolicy.STOP_AND_COPY;
      this.#record({
        stats,
        decision: null,
        answer,
        at,
        ...(limit === null ? {} : { reason: limit }),
      });
      return answer;
    }
    // The pages dirtied since the previous CLEAN (none measured before
    // round 0, whose count is the whole pfn space).
    const step = this.#steering.decide({
      round: stats.iteration,
      dirtyPages: stats.dirtyCount,
      ...(stats.iteration === 0 ? { dirtyRate: 0 } : {}),
      bytesSent: stats.totalWritten * ps,
      rawBytesSent: stats.totalWritten * ps,
    });
    const answer = step.decision === "continue"
      ? XgsPolicy.CONTINUE_PRECOPY
      : step.decision === "switchover"
      ? XgsPolicy.STOP_AND_COPY
      : XgsPolicy.ABORT;
    this.#record({
      stats,
      decision: step.decision,
      answer,
      at,
      reason: step.reason,
      roundStats: step.stats,
    });
    return answer;
  }

  #record(call: PolicyCall): void {
    this.calls.push(call);
    try {
      this.#onCall(call);
    } catch {
      // progress output must not change the answer
    }
  }
}

/** Options of {@link XenSaveWorker.save}. */
export interface SaveOptions {
  /** Domain to save. */
  readonly domid: number;
  /** File descriptor libxc writes the stream to (a socket or pipe)... */
  readonly ioFd?: number;
  /** ...or a FIFO the worker opens for writing and closes when the save ends. */
  readonly fifoPath?: string;
  /** Live (pre-copy) migration; default true. */
  readonly live?: boolean;
  /** How long the guest gets to suspend (default 60 s, as libxl). */
  readonly suspendTimeoutMs?: number;
  /** Called with each worker event (`opened`, `suspend-requested`, `suspended`, `suspend-failed`). */
  readonly onEvent?: (event: SaveEvent) => void;
}

/** Something the save worker reported on the way. */
export interface SaveEvent {
  /** What happened. */
  readonly name:
    | "opened"
    | "suspend-requested"
    | "suspended"
    | "suspend-failed";
  /** When, in ms since the epoch (`performance.timeOrigin + performance.now()`). */
  readonly at: number;
  /** Why the suspend failed. */
  readonly why?: string;
}

/** What {@link XenSaveWorker.save} returns. */
export interface SaveResult {
  /** `xc_domain_save`'s return code (0). */
  readonly rc: number;
  /** Every policy call, in order. */
  readonly calls: readonly PolicyCall[];
  /** Every worker event, in order. */
  readonly events: readonly SaveEvent[];
  /** Bytes the save thread wrote (the stream, plus libxc's log lines); null if unknown. */
  readonly writtenBytes: number | null;
}

/**
 * A Worker running `xc_domain_save` with a {@link Plan} as its
 * `precopy_policy`.
 *
 * @example
 * ```ts
 * import { compile, policy, when, XenSaveWorker } from "@hakobu/hakobu";
 *
 * // Needs a Xen dom0 and would save a real domain: the doc tests type-check
 * // this function and do not call it.
 * async function saveDomain7() {
 *   const plan = compile(policy("p").switchover(when.rounds(30)));
 *   const w = new XenSaveWorker({ plan });
 *   try {
 *     const { rc, calls } = await w.save({
 *       domid: 7,
 *       fifoPath: "/tmp/save.fifo",
 *     });
 *     console.log(rc, calls.length);
 *   } finally {
 *     w.terminate();
 *   }
 * }
 * ```
 */
export class XenSaveWorker {
  readonly #policy: PrecopyPolicy;
  readonly #name: string;
  #worker: Worker | null = null;

  /**
   * Creates the driver; each `save` or `simulate` starts its own Worker.
   *
   * @param options The plan and geometry.
   */
  constructor(options: XenSaveWorkerOptions) {
    this.#policy = new PrecopyPolicy(options);
    this.#name = options.plan.name;
  }

  /** The policy calls answered so far. */
  get calls(): readonly PolicyCall[] {
    return this.#policy.calls;
  }

  /**
   * Runs `xc_domain_save` in the worker until it returns.
   *
   * @throws {XenError} off a dom0 ("Not a Xen dom0: ...") or when the save fails.
   */
  async save(options: SaveOptions): Promise<SaveResult> {
    if ((options.ioFd === undefined) === (options.fifoPath === undefined)) {
      throw new TypeError(
        "XenSaveWorker.save needs exactly one of ioFd and fifoPath",
      );
    }
    const flags = options.live === false ? 0 : XcFlags.LIVE;
    const events: SaveEvent[] = [];
    const done = await this.#run({
      kind: "save",
      domid: options.domid,
      ioFd: options.ioFd,
      fifoPath: options.fifoPath,
      suspendTimeoutMs: options.suspendTimeoutMs,
      flags,
    }, (e) => {
      events.push(e);
      options.onEvent?.(e);
    });
    if (done.rc !== 0) {
      const failed = events.find((e) => e.name === "suspend-failed");
      const last = this.calls.at(-1);
      const aborted = last?.answer === XgsPolicy.ABORT;
      throw new XenError(
        "libxenguest",
        "xc_domain_save",
        `Cannot save domain "${options.domid}": xc_domain_save returned ${done.rc}${
          failed
            ? ` (suspend failed: ${failed.why})`
            : aborted
            ? ` (the policy "${this.#name}" said ${last.reason ?? "abort"})`
            : ""
        }`,
        0,
      );
    }
    return {
      rc: done.rc,
      calls: this.calls,
      events,
      writtenBytes: done.writtenBytes ?? null,
    };
  }

  /**
   * Test hook: the worker calls its `precopy_policy` function pointer
   * through `Deno.UnsafeFnPointer` with each synthetic `struct
   * precopy_stats`, exactly as libxc would, and returns the answers.
   */
  async simulate(stats: readonly PrecopyStats[]): Promise<number[]> {
    const done = await this.#run({ kind: "simulate", stats: [...stats] });
    return done.answers ?? [];
  }

  /** Stops the worker (a running `xc_domain_save` dies with the process only). */
  terminate(): void {
    this.#worker?.terminate();
    this.#worker = null;
  }

  #run(
    msg: Record<string, unknown>,
    onEvent: (e: SaveEvent) => void = () => {},
  ): Promise<{ rc: number; answers?: number[]; writtenBytes?: number | null }> {
    const sab = new SharedArrayBuffer(SAB_BYTES);
    const ctl = new Int32Array(sab, 0, 4);
    const f = new Float64Array(sab, 16, 3);
    const worker = new Worker(
      new URL("./_save_worker.ts", import.meta.url).href,
      { type: "module" },
    );
    this.#worker = worker;
    return new Promise((resolve, reject) => {
      worker.onmessage = (e: MessageEvent) => {
        const m = e.data;
        if (m.kind === "policy") {
          const answer = this.#policy.answer({
            iteration: f[0],
            totalWritten: f[1],
            dirtyCount: f[2],
          });
          Atomics.store(ctl, Ctl.ANSWER, answer);
          Atomics.store(ctl, Ctl.STATE, Ctl.ANSWERED);
          Atomics.notify(ctl, Ctl.STATE);
          return;
        }
        if (m.kind === "event") {
          onEvent({ name: m.name, at: m.at, ...(m.why ? { why: m.why } : {}) });
          return;
        }
        worker.terminate();
        this.#worker = null;
        if (m.kind === "done") resolve(m);
        else {
          reject(
            m.name === "XenError"
              ? new XenError("libxenguest", "xc_domain_save", m.message, 0)
              : new Error(m.message),
          );
        }
      };
      worker.onerror = (e) => {
        e.preventDefault();
        worker.terminate();
        this.#worker = null;
        reject(new Error(`The save worker failed: ${e.message}`));
      };
      worker.postMessage({ ...msg, sab });
    });
  }
}
