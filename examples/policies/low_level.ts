/**
 * The low-level form, like libxenguest's precopy_policy: one function
 * answers after each round, and a codec chain chosen per round. Here: switch over when under 16 MiB remain or
 * the dirty set stopped shrinking after round 5; abort past 20 minutes.
 *
 * The function keeps no state of its own: the round before comes from the
 * stats' `history`, which the steering keeps per migration, so one plan
 * serves several migrations at once.
 *
 * @module
 */

import { codec, MiB, minutes, policy, type RoundStats } from "../../mod.ts";

export default policy("low-level")
  // Round 0 sends every page, many of them never touched (zero); later rounds send
  // pages the guest just wrote, rarely zero, so they skip the zero check.
  .codec((s: RoundStats) =>
    s.round === 0 ? [codec.zero(), codec.raw()] : [codec.raw()]
  )
  .decide((s: RoundStats) => {
    // Without history (a caller that keeps none) nothing counts as a stall.
    const previousRemaining = s.history?.at(-1)?.remainingBytes ?? Infinity;
    const shrinking = s.remainingBytes < previousRemaining;
    if (s.elapsedMs > minutes(20)) return "abort";
    if (s.remainingBytes < MiB(16)) return "switchover";
    if (s.round >= 5 && !shrinking) return "switchover";
    return "continue";
  })
  .maxRounds(50);
