/**
 * Pre-copy for as long as it pays: continue while each round's dirty set is
 * at least 10% smaller than the one before, switch over once under 1 MiB
 * remains or the dirty set stops shrinking; at most 8 rounds. Trades total
 * time and bytes for the shortest downtime.
 *
 * The round before is read from the stats' own `history` (the steering
 * fills it per migration), not kept in this module: one plan serves several
 * migrations at once.
 *
 * @module
 */

import { codec, MiB, policy, type RoundStats } from "../../mod.ts";

export default policy("converge")
  .codec([codec.zero(), codec.raw()])
  .decide((s: RoundStats) => {
    // Without history (a caller that keeps none) nothing counts as a stall.
    const previousRemaining = s.history?.at(-1)?.remainingBytes ?? Infinity;
    const shrinking = s.remainingBytes < 0.9 * previousRemaining;
    if (s.remainingBytes < MiB(1)) return "switchover";
    if (s.round >= 1 && !shrinking) return "switchover";
    return "continue";
  })
  .maxRounds(8)
  .bandwidth("unlimited");
