/**
 * Telling a QEMU/TCG guest fault apart from a migration failure, for the lab
 * tests.
 *
 * QEMU 7.2 under TCG sometimes resumes a destination guest that then crashes
 * (an oops on the serial console), hangs (no serial heartbeat) or runs with
 * its network silent, after a migration whose stream arrived intact: it does
 * this with QEMU's own `tcp:` transport too, about 1 run in 4-6 with three
 * forced live rounds and rarer with one (docs/qemu-lab.md). Once the stream is
 * known to be intact (QEMU said `completed`; through the hakobu tunnel, the
 * receiver also matched the source's length and SHA-256) and the destination
 * QEMU is `running`, such a failure is the emulator's, not the migration's:
 * the lab tests retry the case. Any other failure fails at once.
 *
 * @module
 */

import { HakobuError } from "../../engine/errors.ts";
import type { QmpClient } from "../../engine/qemu/qmp.ts";
import type { Guest } from "./qemu_guest.ts";

/** A destination guest that failed after an intact stream (see module doc). */
export class TcgGuestFault extends HakobuError {}

/** Tries per lab case (`HAKOBU_LAB_ATTEMPTS`, default 3; 1 shows every fault). */
export const LAB_ATTEMPTS: number = Math.max(
  1,
  Number(Deno.env.get("HAKOBU_LAB_ATTEMPTS") ?? 3) || 1,
);

const OOPS = /BUG: |Oops: |general protection fault|Kernel panic/;
const HEARTBEAT = /^hakobu: alive uptime=([\d.]+)/gm;

/** Uptimes of the guest's serial heartbeats (the lab init prints one every 2 s). */
export function heartbeats(log: string): number[] {
  return [...log.matchAll(HEARTBEAT)].map((m) => Number(m[1]));
}

/** What the evidence says about a destination guest whose checker failed. */
export interface GuestFailureOptions {
  /** The checker's answer (not `ok ...`). */
  readonly answer: string;
  /** The destination guest (its serial log). */
  readonly guest: Pick<Guest, "logPath">;
  /** QMP of the destination QEMU (for `query-status`). */
  readonly qmp: Pick<QmpClient, "execute">;
  /** Whether the stream is known intact (see module doc). */
  readonly streamIntact: boolean;
  /** More evidence for the message (e.g. the tunnel receiver's stats). */
  readonly extra?: string;
  /** How long to watch for a heartbeat, ms (default 5000). */
  readonly watchMs?: number;
}

/**
 * Builds the error for a destination guest whose checker did not answer
 * `ok`: a {@linkcode TcgGuestFault} when the stream was intact and the
 * destination QEMU runs (or its guest kernel crashed, which ends it), a plain
 * `Error` otherwise. Both say whether the guest
 * crashed, hangs, or runs with a silent checker.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { guestFailure, TcgGuestFault } from "./guest_fault.ts";
 *
 * // In a lab test the answer comes from `pair.destination.check()`, the guest
 * // and QMP from `startPair()`. Here: a serial log with a kernel oops.
 * const logPath = await Deno.makeTempFile();
 * await Deno.writeTextFile(logPath, "BUG: unable to handle page fault\n");
 * const error = await guestFailure({
 *   answer: "bad keys=0/1000",
 *   guest: { logPath },
 *   qmp: { execute: <T>() => Promise.resolve({ status: "running" } as T) },
 *   streamIntact: true,
 *   watchMs: 0,
 * });
 * await Deno.remove(logPath);
 * assert.ok(error instanceof TcgGuestFault); // the emulator's fault: retry
 * assert.match(error.message, /the guest kernel crashed/);
 * ```
 */
export async function guestFailure(
  options: GuestFailureOptions,
): Promise<Error> {
  const status = await options.qmp.execute("query-status").then(
    (s) => (s as { status?: string }).status ?? JSON.stringify(s),
    (e) => `no answer (${e})`,
  );
  const readLog = () =>
    Deno.readTextFile(options.guest.logPath).catch(() => "");
  const before = heartbeats(await readLog());
  await new Promise((r) => setTimeout(r, options.watchMs ?? 5000));
  const log = await readLog();
  const after = heartbeats(log);
  const oops = log.search(OOPS);
  const state = oops >= 0
    ? "the guest kernel crashed"
    : after.length > before.length
    ? `the guest runs (serial heartbeat at uptime ${
      after.at(-1)
    } s) but its checker is silent`
    : `the guest hangs (no serial heartbeat in ${
      (options.watchMs ?? 5000) / 1000
    } s; the last ${
      after.length ? `at uptime ${after.at(-1)} s` : "before the migration"
    })`;
  const tail = oops >= 0
    ? log.slice(oops, oops + 1200)
    : log.split("\n").filter((l) => !l.startsWith("hakobu: alive")).slice(-30)
      .join("\n");
  const message = `destination checker: "${options.answer}": ${state}; ` +
    `destination QEMU ${status}${
      options.extra ? `; ${options.extra}` : ""
    }\nserial log:\n${tail}`;
  // A crashed guest kernel panics, and the lab's `-no-reboot` then ends its
  // QEMU: after an intact stream that is the emulator's fault too.
  return options.streamIntact && (status === "running" || oops >= 0)
    ? new TcgGuestFault(message)
    : new Error(message);
}

/**
 * Runs one lab case, again on a {@linkcode TcgGuestFault}, up to
 * {@linkcode LAB_ATTEMPTS} tries in all; any other error ends it at once.
 */
export async function retryingTcgFaults<T>(
  run: () => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await run();
    } catch (e) {
      if (!(e instanceof TcgGuestFault) || attempt >= LAB_ATTEMPTS) throw e;
      console.warn(
        `  attempt ${attempt}/${LAB_ATTEMPTS}: the destination guest failed after an intact stream (QEMU/TCG, see scripts/lab/guest_fault.ts); retrying:\n${e.message}`,
      );
    }
  }
}
