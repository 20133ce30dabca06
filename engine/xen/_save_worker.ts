/**
 * The Worker behind `save.ts`: runs `xc_domain_save` (or, for tests, a fake
 * C caller) on its own thread. `precopy_policy` is a `Deno.UnsafeCallback`
 * that libxc calls synchronously on this thread while it is blocked in C;
 * the callback writes the stats into shared memory, tells the main thread,
 * and waits (`Atomics.wait`) for the plan's answer.
 *
 * Messages in: `{kind: "save", sab, domid, ioFd, flags}` or
 * `{kind: "simulate", sab, stats: PrecopyStats[]}`. Messages out:
 * `{kind: "policy"}` (an answer is wanted), `{kind: "done", rc, answers?}`,
 * `{kind: "error", message}`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { openXenctrl } from "../../ffi/xen/xenctrl.ts";
import {
  decodePrecopyStats,
  encodePrecopyStats,
  encodeSaveCallbacks,
  PRECOPY_POLICY_DEF,
  type PrecopyStats,
  XcStreamType,
  xenguest,
  XgsPolicy,
} from "../../ffi/xen/xenguest.ts";
import { Ctl, POLICY_WAIT_MS } from "./_save_shared.ts";

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
    const r = Atomics.wait(ctl, Ctl.STATE, Ctl.REQUEST, POLICY_WAIT_MS);
    const answer = r === "timed-out" ? XgsPolicy.ABORT : ctl[Ctl.ANSWER];
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
        const xc = openXenctrl();
        try {
          const rc = xenguest().xc_domain_save(
            xc.handle,
            msg.ioFd,
            msg.domid,
            msg.flags,
            encodeSaveCallbacks({ precopyPolicy: cb.pointer }),
            XcStreamType.PLAIN,
            -1,
          );
          self.postMessage({ kind: "done", rc });
        } finally {
          xc.close();
        }
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
