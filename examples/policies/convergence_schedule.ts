/**
 * A convergence schedule, as users of oVirt, KubeVirt and Nova ask for.
 * Switch over once under 1 MiB remains, or once the estimated downtime fits
 * an allowance that starts at 100 ms and grows by 100 ms with each round that
 * did not shrink the remaining bytes by 5% (a stall), up to 500 ms. Give up,
 * leaving the VM on the source, after 6 stalled rounds in a row (by then the
 * allowance has been at 500 ms for two of them), or once the migration has
 * taken 150 s per GiB of memory (KubeVirt's default completionTimeoutPerGiB).
 * Every condition is derived from the round's stats and history, so one plan
 * serves several migrations at once.
 *
 * @module
 */

import { codec, Gbit, MiB, ms, policy, seconds, when } from "../../mod.ts";

export default policy("convergence-schedule")
  .codec([codec.zero(), codec.raw()])
  .switchover(
    when.any(
      when.remainingBelow(MiB(1)),
      when.downtimeRamp({
        startMs: ms(100),
        stepMs: ms(100),
        maxMs: ms(500),
        every: { stalls: 1, minProgress: 0.05 },
      }),
    ),
  )
  .abortIf(
    when.any(
      when.stalled({ rounds: 6, minProgress: 0.05 }),
      when.elapsedAbovePerGiB(seconds(150)),
    ),
  )
  .maxRounds(30)
  .bandwidth(Gbit(1));
