/**
 * A/B check of QEMU 7.2's lost guest writes under TCG migration (see
 * `TCG_RAM_PAD_KIB` in qemu_guest.ts and docs/qemu-lab.md): migrates fresh
 * memcached pairs over QEMU's own `tcp:` with several forced live rounds,
 * alternating the RAM pad, and says for each whether the destination guest
 * survived (checker `ok` twice, uptime advancing) or crashed, hung or went
 * silent.
 *
 * ```sh
 * deno run -A scripts/lab/tcg_lost_writes.ts [--pairs 10] [--rounds 5] [--pads 0,8] [--mem 256]
 * ```
 * About 30 s a pair on 2 cores. Exits 0 after printing the tally; it is a
 * measurement, not a test.
 *
 * @module
 */

import { Option } from "@commander-js/extra-typings";
import { policy } from "../../dsl/policy.ts";
import { when } from "../../dsl/conditions.ts";
import { migrateQemu } from "../../engine/qemu/policy_driver.ts";
import { guestFailure } from "./guest_fault.ts";
import { checkerUptime, labUnavailable } from "./qemu_guest.ts";
import { startPair } from "./qemu_pair.ts";
import { integer } from "../_cli/options.ts";
import { cliProgram, parseOrExit } from "../_cli/program.ts";

/** What became of one pair's destination. */
interface Outcome {
  readonly pad: number;
  readonly survived: boolean;
  readonly detail: string;
}

async function onePair(
  pad: number,
  rounds: number,
  memMiB: number,
): Promise<Outcome> {
  const pair = await startPair({ app: "memcached", memMiB, ramPadKiB: pad });
  try {
    const plan = policy(`tcg-ab-${rounds}`)
      .switchover(when.rounds(rounds))
      .maxRounds(rounds + 2)
      .compile();
    const report = await migrateQemu({
      plan,
      source: pair.src,
      destination: pair.dst,
      uri: pair.uri,
      vm: `memcached ${memMiB} MiB, pad ${pad} KiB`,
      timeoutMs: 120_000,
    });
    if (report.status !== "completed") {
      return { pad, survived: false, detail: `migration ${report.outcome}` };
    }
    const first = await pair.destination.check(20_000);
    await new Promise((r) => setTimeout(r, 2000));
    const later = await pair.destination.check(10_000);
    if (
      first.startsWith("ok") && later.startsWith("ok") &&
      checkerUptime(later) > checkerUptime(first)
    ) {
      return {
        pad,
        survived: true,
        detail: `${report.rounds.length} rounds, ${first}`,
      };
    }
    const bad = first.startsWith("ok") ? later : first;
    const e = await guestFailure({
      answer: bad,
      guest: pair.destination,
      qmp: pair.dst,
      streamIntact: true,
      watchMs: 3000,
    });
    return {
      pad,
      survived: false,
      detail: `${report.rounds.length} rounds, ${e.message.split("\n")[0]}`,
    };
  } finally {
    await pair.close();
  }
}

if (import.meta.main) {
  const kib = integer();
  const o = parseOrExit(
    cliProgram("tcg_lost_writes.ts", { usageExitCode: 2 })
      .description(
        "A/B check of QEMU 7.2's lost guest writes under TCG migration, alternating the RAM pad.",
      )
      .option("--pairs <n>", "pairs per pad", integer({ min: 1 }), 10)
      .option(
        "--rounds <n>",
        "forced live rounds per migration",
        integer({ min: 1 }),
        5,
      )
      .addOption(
        new Option("--pads <list>", "RAM pads in KiB, comma-separated")
          .argParser((text) => text.split(",").map((k) => kib(k)))
          .default([0, 8], "0,8"),
      )
      .option("--mem <MiB>", "guest memory in MiB", integer({ min: 1 }), 256),
    Deno.args,
  );
  const why = await labUnavailable();
  if (why) {
    console.error(`Cannot run the QEMU lab: ${why}`);
    Deno.exit(1);
  }
  const { pairs, rounds, pads } = o;
  const memMiB = o.mem;
  const outcomes: Outcome[] = [];
  for (let i = 0; i < pairs; i++) {
    for (const pad of pads) {
      const o = await onePair(pad, rounds, memMiB);
      outcomes.push(o);
      console.log(
        `pair ${i + 1}/${pairs}, pad ${pad} KiB: ${
          o.survived ? "survived" : "FAILED"
        } (${o.detail})`,
      );
    }
  }
  for (const pad of pads) {
    const mine = outcomes.filter((o) => o.pad === pad);
    console.log(
      `pad ${pad} KiB (-m ${memMiB * 1024 + pad}k): ${
        mine.filter((o) => !o.survived).length
      } of ${mine.length} destinations failed`,
    );
  }
}
