/**
 * The low-level form, like libxenguest's precopy_policy: one function
 * answers after each round, and a codec chain chosen per round. Here: switch over when under 16 MiB remain or
 * the dirty set stopped shrinking after round 5; abort past 20 minutes.
 *
 * @module
 */

import { codec, MiB, minutes, policy, type RoundStats } from "../../mod.ts";

let previousRemaining = Infinity;

export default policy("low-level")
  // Round 0 sends every page, many of them never touched (zero); later rounds send
  // pages the guest just wrote, rarely zero, so they skip the zero check.
  .codec((s: RoundStats) =>
    s.round === 0 ? [codec.zero(), codec.raw()] : [codec.raw()]
  )
  .decide((s: RoundStats) => {
    if (s.round === 0) previousRemaining = Infinity; // a new migration
    const shrinking = s.remainingBytes < previousRemaining;
    previousRemaining = s.remainingBytes;
    if (s.elapsedMs > minutes(20)) return "abort";
    if (s.remainingBytes < MiB(16)) return "switchover";
    if (s.round >= 5 && !shrinking) return "switchover";
    return "continue";
  })
  .maxRounds(50);
