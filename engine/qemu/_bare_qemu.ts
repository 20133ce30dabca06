/**
 * A QEMU with no guest code for the tests that drive a real one (QMP, the
 * policy driver, the tunnels, the lab's migration clock): TCG, 64 MiB, no
 * devices, its QMP connected. Tests skip when `qemuBinary()` finds none.
 *
 * @module
 */

import type { Plan } from "../plan.ts";
import { QmpClient } from "./qmp.ts";

/** A running bare QEMU. */
export interface BareQemu {
  /** Its QMP, connected. */
  readonly qmp: QmpClient;
  /** The QEMU process. */
  readonly child: Deno.ChildProcess;
  /** Quits QEMU (by QMP, else SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts a QEMU with its QMP on the unix socket `sock`; `extra` adds
 * arguments, e.g. `["-S"]` (paused) or `["-incoming", "defer"]`.
 */
export async function bareQemu(
  sock: string,
  extra: readonly string[] = [],
): Promise<BareQemu> {
  const child = new Deno.Command("qemu-system-x86_64", {
    args: [
      "-accel",
      "tcg",
      "-m",
      "64",
      "-nodefaults",
      "-display",
      "none",
      "-qmp",
      `unix:${sock},server=on,wait=off`,
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const qmp = await QmpClient.connect(sock, { timeoutMs: 15_000 });
  return {
    qmp,
    child,
    async stop() {
      if (!qmp.isClosed) await qmp.quit().catch(() => {});
      qmp.close();
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    },
  };
}

/** A plan that switches over at the first decision and sends no codec of its own. */
export const SWITCH_AT_ONCE: Plan = {
  name: "now",
  codecsFor: () => [],
  decide: () => "switchover",
  bandwidth: null,
  batchPages: 256,
  maxRounds: 30,
  gpu: { batch: 8192, prefer: "cpu", require: false },
};
