/**
 * The downtime probe as a program, for the Xen lab's dom0
 * (`xen_lab.ts migrate --probe`): watches domain DOMID migrate on this host
 * with `probeDowntime` (`engine/xen/downtime_probe.ts`), from the suspend of
 * the source to a newer domain running.
 *
 * ```sh
 * deno run -A scripts/lab/downtime_probe.ts DOMID [--interval-ms 5] [--timeout-ms 600000]
 * ```
 *
 * prints `ready` when polling, then one JSON line (`DowntimeProbeResult`).
 *
 * @module
 */

import type { CommandUnknownOpts } from "@commander-js/extra-typings";
import { probeDowntime } from "../../engine/xen/downtime_probe.ts";
import { openXenctrl } from "../../ffi/xen/xenctrl.ts";
import { integer } from "../_cli/options.ts";
import { cliProgram, runCli } from "../_cli/program.ts";

/** The command line; `--help` lists the flags. */
function command(): CommandUnknownOpts {
  return cliProgram("downtime_probe.ts", { usageExitCode: 2 })
    .description(
      "Measures a migrating domain's downtime from dom0 by polling every domain's state (libxenctrl).",
    )
    .argument(
      "<domid>",
      "the source domain",
      integer({ min: 1, max: 0x7fef }),
    )
    .option("--interval-ms <ms>", "poll interval", integer({ min: 1 }), 5)
    .option(
      "--timeout-ms <ms>",
      "give up after this long",
      integer({ min: 1 }),
      600_000,
    )
    .action(async (domid, o) => {
      const xc = openXenctrl();
      const done = probeDowntime(domid, {
        intervalMs: o.intervalMs,
        timeoutMs: o.timeoutMs,
        list: () => xc.listDomains(64),
      });
      console.log("ready");
      console.log(JSON.stringify(await done));
    });
}

if (import.meta.main) Deno.exit(await runCli(command, Deno.args));
