/**
 * Pre-copy for as long as it pays: continue while each round's dirty set is
 * at least 10% smaller than the one before, switch over once under 1 MiB
 * remains or the dirty set stops shrinking; at most 8 rounds. Trades total
 * time and bytes for the shortest downtime.
 *
 * @module
 */

import { codec, MiB, policy, type RoundStats } from "../../mod.ts";

let previousRemaining = Infinity;

export default policy("converge")
  .codec([codec.zero(), codec.raw()])
  .decide((s: RoundStats) => {
    if (s.round === 0) previousRemaining = Infinity; // a new migration
    const shrinking = s.remainingBytes < 0.9 * previousRemaining;
    previousRemaining = s.remainingBytes;
    if (s.remainingBytes < MiB(1)) return "switchover";
    if (s.round >= 1 && !shrinking) return "switchover";
    return "continue";
  })
  .maxRounds(8)
  .bandwidth("unlimited");
