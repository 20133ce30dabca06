/**
 * The default policy (the demo embeds it): zero pages cost nothing, every
 * other page goes raw; switch over once little is left, the estimated
 * downtime is short, the guest dirties memory nearly as fast as the link
 * sends it, or after 30 rounds; give up after 10 minutes; pace at 1 Gbit/s.
 *
 * @module
 */

import { codec, Gbit, MiB, minutes, ms, policy, when } from "../../mod.ts";

export default policy("default")
  .codec([codec.zero(), codec.raw()])
  .switchover(
    when.any(
      when.remainingBelow(MiB(64)),
      when.downtimeBelow(ms(300)),
      when.dirtyRateAbove((s) => 0.8 * s.sendRate, "80% of the send rate"),
      when.rounds(30),
    ),
  )
  .abortIf(when.elapsedAbove(minutes(10)))
  .bandwidth(Gbit(1))
  .batchPages(256);
