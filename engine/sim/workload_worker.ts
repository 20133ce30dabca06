/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
/**
 * The workload worker: fills guest memory with the workload's initial content,
 * then runs its writer over shared memory at the configured dirty rate until
 * told to stop. Controlled only through the shared control block, because the
 * run loop never returns to the event loop.
 *
 * Dirty tracking order: a page's bytes are written first, then its dirty bit
 * is set with `Atomics.or`, so a sync that fetches-and-clears the bit before
 * the engine reads the page can never lose a write.
 *
 * @module
 */

import {
  C64_PAGES_WRITTEN,
  C_FAILED,
  C_PARKED,
  C_RATE,
  C_STATE,
  PAUSE,
  RUN,
  STOP,
  type WorkerReport,
  type WorkerStart,
} from "./_control.ts";
import { workloadByName } from "./workloads/registry.ts";

/** Longest burst after falling behind (e.g. descheduled): 100 ms worth of writes. */
const CATCH_UP_SECONDS = 0.1;

function report(r: WorkerReport): void {
  self.postMessage(r);
}

function run(start: WorkerStart): void {
  const memory = new Uint8Array(start.memory);
  const bitmap = new Int32Array(start.bitmap);
  const control = new Int32Array(start.control);
  const counters = new BigInt64Array(start.control);
  const workload = workloadByName(start.workload);

  const t0 = performance.now();
  workload.init(memory, start.seed);
  report({ type: "ready", initMillis: performance.now() - t0 });

  const writer = workload.writer(memory, start.seed);
  let written = 0;
  const mark = (pfn: number): void => {
    Atomics.or(bitmap, pfn >>> 5, 1 << (pfn & 31));
    written++;
  };

  let rate = Atomics.load(control, C_RATE);
  let since = performance.now();
  let done = 0;
  for (;;) {
    const state = Atomics.load(control, C_STATE);
    if (state === STOP) return;
    if (state === PAUSE) {
      Atomics.store(control, C_PARKED, 1);
      Atomics.notify(control, C_PARKED);
      while (Atomics.load(control, C_STATE) === PAUSE) {
        Atomics.wait(control, C_STATE, PAUSE);
      }
      Atomics.store(control, C_PARKED, 0);
      Atomics.notify(control, C_PARKED);
      since = performance.now();
      done = 0;
      continue;
    }
    const r = Atomics.load(control, C_RATE);
    if (r !== rate) {
      rate = r;
      since = performance.now();
      done = 0;
    }
    if (rate === 0) {
      Atomics.wait(control, C_STATE, RUN, 100);
      continue;
    }
    const due = ((performance.now() - since) / 1000) * rate;
    if (done < due) {
      if (due - done > rate * CATCH_UP_SECONDS) {
        done = due - rate * CATCH_UP_SECONDS;
      }
      const before = written;
      writer.step(mark);
      done += Math.max(1, written - before);
      Atomics.store(counters, C64_PAGES_WRITTEN, BigInt(written));
    } else {
      // Sleep until the next page is due, at least 1 ms so writes come in small bursts.
      const ms = Math.max(1, Math.min(50, ((done + 1 - due) * 1000) / rate));
      Atomics.wait(control, C_STATE, RUN, ms);
    }
  }
}

self.onmessage = (e: MessageEvent<WorkerStart>) => {
  const control = new Int32Array(e.data.control);
  try {
    run(e.data);
  } catch (err) {
    Atomics.store(control, C_FAILED, 1);
    Atomics.store(control, C_PARKED, 1);
    Atomics.notify(control, C_PARKED);
    report({
      type: "error",
      message: err instanceof Error ? err.message : String(err),
    });
  }
};
