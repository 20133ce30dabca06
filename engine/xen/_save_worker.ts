/**
 * The Worker behind `save.ts`: runs `xc_domain_save` (or, for tests, a fake
 * C caller) on its own thread. `precopy_policy` is a `Deno.UnsafeCallback`
 * that libxc calls synchronously on this thread while it is blocked in C;
 * the callback writes the stats into shared memory, tells the main thread,
 * and waits (`Atomics.wait`) for the plan's answer.
 *
 * Messages in: `{kind: "save", sab, domid, flags, fifoPath | ioFd,
 * suspendTimeoutMs?}` or `{kind: "simulate", sab, stats: PrecopyStats[]}`.
 * Messages out: `{kind: "policy"}` (an answer is wanted), `{kind: "event",
 * name: "opened" | "suspend-requested" | "suspended" | "suspend-failed", at,
 * why?}` (`at` in ms since the epoch, on `performance`'s clock), `{kind:
 * "done", rc, answers?, writtenBytes?}`, `{kind: "error", message}`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { closeFd, openForWriting } from "../../ffi/xen/_libc.ts";
import {
  openXenctrl,
  ShutdownReason,
  type XenCtrl,
} from "../../ffi/xen/xenctrl.ts";
import {
  decodePrecopyStats,
  encodePrecopyStats,
  encodeSaveCallbacks,
  PRECOPY_POLICY_DEF,
  type PrecopyStats,
  SUSPEND_DEF,
  SWITCH_QEMU_LOGDIRTY_DEF,
  XcStreamType,
  xenguest,
  XgsPolicy,
} from "../../ffi/xen/xenguest.ts";
import { openXenstore, type XenStore } from "../../ffi/xen/xenstore.ts";
import { awaitAnswer, Ctl, POLICY_WAIT_MS } from "./_save_shared.ts";

/** Milliseconds on a clock both threads share. */
function now(): number {
  return performance.timeOrigin + performance.now();
}

const nap = new Int32Array(new SharedArrayBuffer(4));

/** After a suspend request times out, how long a late suspend still counts. */
const SUSPEND_GRACE_MS = 2000;

/**
 * Polls the domain every millisecond for up to `ms`: "" once Xen reports
 * it shut down for suspend, else why not ("timeout" when time ran out).
 */
function pollSuspended(xc: XenCtrl, domid: number, ms: number): string {
  const until = now() + ms;
  while (now() < until) {
    const info = xc.domainInfo(domid);
    if (info.shutdown) {
      return info.shutdownReason === ShutdownReason.suspend
        ? ""
        : `the domain shut down with reason ${info.shutdownReason}, not suspend`;
    }
    if (info.dying) return "the domain is dying";
    Atomics.wait(nap, 0, 0, 1);
  }
  return "timeout";
}

/**
 * libxc's `suspend` callback, the way libxl does it for a PV or PVH guest
 * with Linux's xenbus driver: write "suspend" to the guest's
 * control/shutdown node and wait (this thread sits inside
 * `xc_domain_save`, so it polls) until Xen reports it shut down for
 * suspend. Returns 1 on success, 0 on failure or after `timeoutMs` (then
 * the request is withdrawn).
 */
function suspendCallback(
  xc: XenCtrl,
  xs: XenStore,
  domid: number,
  timeoutMs: number,
): Deno.UnsafeCallback<typeof SUSPEND_DEF> {
  const node = `/local/domain/${domid}/control/shutdown`;
  return new Deno.UnsafeCallback(SUSPEND_DEF, () => {
    self.postMessage({ kind: "event", name: "suspend-requested", at: now() });
    let why: string;
    try {
      xs.write(node, "suspend");
      why = pollSuspended(xc, domid, timeoutMs);
      if (why === "timeout") {
        // Withdraw the request, but a guest that already took it may still
        // suspend: give it a moment, so that it is not left suspended with
        // nobody to resume it.
        xs.write(node, "");
        why = pollSuspended(xc, domid, SUSPEND_GRACE_MS);
        if (why === "timeout") {
          why =
            `the guest did not suspend within ${timeoutMs} ms (does it run xenbus' control/shutdown watch?)`;
        }
      }
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
    self.postMessage({
      kind: "event",
      name: why ? "suspend-failed" : "suspended",
      at: now(),
      why,
    });
    return why ? 0 : 1;
  });
}

function policyCallback(sab: SharedArrayBuffer): Deno.UnsafeCallback<
  typeof PRECOPY_POLICY_DEF
> {
  const ctl = new Int32Array(sab, 0, 4);
  const f = new Float64Array(sab, 16, 3);
  return new Deno.UnsafeCallback(PRECOPY_POLICY_DEF, (statsBytes) => {
    const s = decodePrecopyStats(statsBytes);
    f[0] = s.iteration;
    f[1] = s.totalWritten;
    f[2] = s.dirtyCount;
    Atomics.store(ctl, Ctl.STATE, Ctl.REQUEST);
    self.postMessage({ kind: "policy" });
    const answer = awaitAnswer(ctl, POLICY_WAIT_MS) ?? XgsPolicy.ABORT;
    Atomics.store(ctl, Ctl.STATE, Ctl.IDLE);
    return answer;
  });
}

self.onmessage = (e: MessageEvent) => {
  const msg = e.data;
  try {
    const cb = policyCallback(msg.sab);
    try {
      if (msg.kind === "simulate") {
        // A fake C caller: call the callback's function pointer as libxc
        // would, with struct precopy_stats by value.
        const fn = new Deno.UnsafeFnPointer(cb.pointer, PRECOPY_POLICY_DEF);
        const answers = (msg.stats as PrecopyStats[]).map((s) =>
          fn.call(encodePrecopyStats(s), null)
        );
        self.postMessage({ kind: "done", rc: 0, answers });
      } else {
        const before = threadWrittenBytes();
        const rc = save(msg, cb);
        const after = threadWrittenBytes();
        self.postMessage({
          kind: "done",
          rc,
          writtenBytes: before === null || after === null
            ? null
            : after - before,
        });
      }
    } finally {
      cb.close();
    }
  } catch (err) {
    self.postMessage({
      kind: "error",
      message: err instanceof Error ? err.message : String(err),
      name: err instanceof Error ? err.name : "Error",
    });
  }
};

/**
 * Bytes this thread has passed to write(2) so far (`wchar` of
 * /proc/thread-self/io): around `xc_domain_save` that is the image libxc
 * wrote, plus its few log lines. Null where the kernel does not say.
 */
function threadWrittenBytes(): number | null {
  try {
    const m = /^wchar:\s*(\d+)/m.exec(
      Deno.readTextFileSync("/proc/thread-self/io"),
    );
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Runs `xc_domain_save` with all three callbacks; returns its rc. */
function save(
  msg: {
    domid: number;
    flags: number;
    ioFd?: number;
    fifoPath?: string;
    suspendTimeoutMs?: number;
  },
  policy: Deno.UnsafeCallback<typeof PRECOPY_POLICY_DEF>,
): number {
  const xc = openXenctrl();
  let xs: XenStore | null = null;
  let fd = -1;
  const callbacks: { close(): void }[] = [];
  try {
    xs = openXenstore();
    fd = msg.fifoPath ? openForWriting(msg.fifoPath) : msg.ioFd ?? -1;
    self.postMessage({ kind: "event", name: "opened", at: now() });
    const suspend = suspendCallback(
      xc,
      xs,
      msg.domid,
      msg.suspendTimeoutMs ?? 60_000,
    );
    // No device model to switch for PV and PVH guests (callers refuse HVM).
    const logdirty = new Deno.UnsafeCallback(SWITCH_QEMU_LOGDIRTY_DEF, () => 0);
    callbacks.push(suspend, logdirty);
    return xenguest().xc_domain_save(
      xc.handle,
      fd,
      msg.domid,
      msg.flags,
      encodeSaveCallbacks({
        precopyPolicy: policy.pointer,
        suspend: suspend.pointer,
        switchQemuLogdirty: logdirty.pointer,
      }),
      XcStreamType.PLAIN,
      -1,
    );
  } finally {
    // Closing the write end is what ends the reader's stream.
    if (msg.fifoPath && fd >= 0) closeFd(fd);
    for (const c of callbacks) c.close();
    xs?.close();
    xc.close();
  }
}
